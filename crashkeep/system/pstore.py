"""The pstore filesystem (/sys/fs/pstore): list, read and unlink its records.

Layout source: fs/pstore/inode.c (pstore_mkfile names files
"<type>-<backend>-<id>[.enc.z]", mode 0444; mtime = record time when the
record has one; unlink calls the backend's erase, which for ramoops zaps the
zone). Mounting uses syscall.mount: mount(2) from the compiled unit in the static
binary, ctypes or mount(8) in the pure twin.
"""
from crashkeep.compat import path_join, strerror, errno_of, read_text
from crashkeep.errors import DeviceError
from crashkeep.limits import PSTORE_FILE_MAX

DEFAULT_ROOT = "/sys/fs/pstore"
# pstore_type_names[] (platform.c), in ramoops_pstore_read()'s order first
KIND_ORDER = ("dmesg", "console", "pmsg", "ftrace", "mce", "rtas", "powerpc-ofw",
              "powerpc-common", "powerpc-opal")


class Entry:
    """One file of a pstore mount."""

    def __init__(self, name, path, size, mtime):
        self.name = name
        self.path = path
        self.size = size
        self.mtime = mtime
        self.kind, self.backend, self.id, self.compressed = parse_name(name)

    def __repr__(self):
        return "Entry(%s, %d bytes)" % (self.name, self.size)


def parse_name(name):
    """("dmesg", "ramoops", 3, False) for "dmesg-ramoops-3"; id None if odd."""
    compressed = name.endswith(".enc.z")
    base = name[:-6] if compressed else name
    parts = base.rsplit("-", 2)
    if len(parts) != 3:
        return base, "", None, compressed
    try:
        ident = int(parts[2])
    except ValueError:
        ident = None
    return parts[0], parts[1], ident, compressed


def _sort_key(e):
    k = KIND_ORDER.index(e.kind) if e.kind in KIND_ORDER else len(KIND_ORDER)
    return (k, e.backend, e.id if e.id is not None else -1, e.name)


def list_records(root=DEFAULT_ROOT):
    """Entries of the pstore mount at root, in the kernel's read order."""
    import os
    try:
        names = os.listdir(root)
    except OSError as e:
        raise DeviceError("Failed to list '%s': %s" % (root, strerror(e)))
    out = []
    for n in names:
        p = path_join(root, n)
        try:
            st = os.stat(p)
        except OSError:
            continue                   # unlinked meanwhile
        if (st[0] & 0o170000) != 0o100000:
            continue
        out.append(Entry(n, p, st[6], st[8]))
    out.sort(key=_sort_key)
    return out


def read(rec, limit=PSTORE_FILE_MAX):
    """The bytes of one record (an Entry or a path)."""
    path = rec.path if isinstance(rec, Entry) else rec
    parts = []
    total = 0
    try:
        with open(path, "rb") as f:
            # chunks: MicroPython's read(n) allocates n bytes up front
            while total <= limit:
                chunk = f.read(65536)
                if not chunk:
                    break
                parts.append(chunk)
                total += len(chunk)
    except OSError as e:
        raise DeviceError("Failed to read '%s': %s" % (path, strerror(e)))
    data = b"".join(parts)
    if len(data) > limit:
        raise DeviceError("Failed to read '%s': larger than %d bytes" % (path, limit))
    return data


def unlink(rec):
    """Remove a record: for ramoops this zaps its zone (start = size = 0)."""
    import os
    path = rec.path if isinstance(rec, Entry) else rec
    try:
        os.remove(path)
    except OSError as e:
        if errno_of(e) == 2:           # ENOENT: already gone
            return False
        raise DeviceError("Failed to remove '%s': %s" % (path, strerror(e)))
    return True


def is_mounted(root=DEFAULT_ROOT, proc="/proc"):
    """True when /proc/mounts shows a pstore filesystem at root."""
    try:
        text = read_text(path_join(proc, "mounts"), 65536)
    except OSError:
        return False
    want = root.rstrip("/") or "/"
    for line in text.split("\n"):
        f = line.split()
        if len(f) >= 3 and f[2] == "pstore" and f[1].replace("\\040", " ") == want:
            return True
    return False


def ensure_mounted(root=DEFAULT_ROOT, proc="/proc", mount=None):
    """Mount pstore at root unless it is there already; True if we mounted it.
    mount: function(source, target, fstype) (tests); default syscall.mount."""
    if is_mounted(root, proc):
        return False
    if mount is None:
        from crashkeep.system import syscall
        mount = syscall.mount
    try:
        mount("pstore", root, "pstore")
    except OSError as e:
        if errno_of(e) == 16:          # EBUSY: mounted there meanwhile
            return False
        raise DeviceError("Failed to mount pstore on '%s': %s" % (root, strerror(e)))
    return True
