"""Durable files on the flash target: the one write helper, mounting, space, retention.

Durable write (systemd's copy_file_atomic order, plus a read-back): temp file
in the target directory → write → fsync → rename over the final name → fsync
the directory → read the file back and compare. A power cut at any point
leaves either the old file or the new one, never a torn one, and a caller
may clear the source only after this returned.

Mounting uses mount(2) from the compiled unit (syscall.mount): the static binary
has no ctypes and forking busybox mount costs milliseconds on a slow board;
the pure twin uses ctypes or falls back to mount(8).
"""
from crashkeep.compat import path_join, errno_of, read_text, sysos as os, exists, is_dir
from crashkeep.compat import fsync_file, fsync_dir, makedirs, os_error as _fail
from crashkeep.errors import DeviceError

ENOSPC = 28
EROFS = 30
EACCES = 13
EDQUOT = 122
MS_RDONLY = 1
MS_NOATIME = 1024
MS_SYNCHRONOUS = 16
MS_NODEV = 4
MS_NOSUID = 2
MS_NOEXEC = 8
TMP_PREFIX = ".tmp-"
SLACK_BYTES = 64 << 10     # kept free on the target beyond what a bundle needs

# mount -o words that are flags to mount(2), the rest go to the filesystem
_FLAGS = {"ro": MS_RDONLY, "rw": 0, "noatime": MS_NOATIME, "sync": MS_SYNCHRONOUS,
          "nodev": MS_NODEV, "nosuid": MS_NOSUID, "noexec": MS_NOEXEC, "defaults": 0}


def write_durable(dirpath, name, data, verify=True):
    """Write data as dirpath/name durably; DeviceError/NoSpaceError on any failure."""
    final = dirpath + "/" + name
    tmp = dirpath + "/" + TMP_PREFIX + name
    try:
        with open(tmp, "wb") as f:
            mv = memoryview(data)
            off = 0
            while off < len(mv):
                n = f.write(mv[off:])
                if not n:
                    raise OSError(ENOSPC, "short write")
                off += n
            fsync_file(f)
        os.rename(tmp, final)
        fsync_dir(dirpath)
    except OSError as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise _fail("write", final, e)
    if verify:
        check_file(final, data)
    return len(data)


def check_file(path, data):
    """Read path back and compare with data; DeviceError if they differ."""
    try:
        with open(path, "rb") as f:
            back = f.read(len(data) + 1)
    except OSError as e:
        raise _fail("read back", path, e)
    if back != bytes(data):
        raise DeviceError("Failed to verify '%s': read back %d bytes that differ from the %d written"
                          % (path, len(back), len(data)))


def read_file(path, limit=1 << 30):
    """Whole file, sized by stat: read(n) allocates n bytes up front on both runtimes."""
    size = os.stat(path)[6]
    if size > limit:
        raise DeviceError("'%s' is larger than %d bytes" % (path, limit))
    with open(path, "rb") as f:
        return f.read(size + 1)


def remove_tree(path):
    """rm -r for one bundle directory (flat, or one level of files)."""
    try:
        names = os.listdir(path)
    except OSError:
        return
    for n in names:
        p = path + "/" + n
        if is_dir(p):
            remove_tree(p)
        else:
            try:
                os.remove(p)
            except OSError:
                pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def free_bytes(path):
    """Bytes an unprivileged writer may still use on the filesystem holding path."""
    try:
        st = os.statvfs(path)
    except OSError as e:
        raise _fail("stat filesystem", path, e)
    return st[4] * (st[1] or st[0])       # f_bavail * f_frsize


def tree_bytes(path):
    total = 0
    try:
        names = os.listdir(path)
    except OSError:
        return 0
    for n in names:
        p = path + "/" + n
        if is_dir(p):
            total += tree_bytes(p)
        else:
            try:
                total += os.stat(p)[6]
            except OSError:
                pass
    return total


def parse_options(options):
    """mount -o text -> (flags, data string for the filesystem)."""
    flags = 0
    data = []
    for word in (options or "").split(","):
        word = word.strip()
        if not word:
            continue
        if word in _FLAGS:
            flags |= _FLAGS[word]
        else:
            data.append(word)
    return flags, ",".join(data)


def mounted_at(mountpoint, root="/"):
    """(device, fstype, options) mounted at mountpoint per /proc/mounts, or None."""
    try:
        text = read_text(path_join(root, "proc/mounts"), 1 << 20)
    except OSError:
        return None
    found = None
    for line in text.split("\n"):
        f = line.split()
        if len(f) >= 4 and f[1] == mountpoint:
            found = (f[0], f[2], f[3])    # the last one listed is on top
    return found


class Target:
    """The flash directory bundles go to; unmount() undoes what open_target mounted."""

    def __init__(self, path, mountpoint=None, mounted=False):
        self.path = path
        self.mountpoint = mountpoint
        self.mounted = mounted

    def close(self):
        if self.mounted:
            from crashkeep.system import syscall
            try:
                syscall.umount(self.mountpoint)
            except OSError as e:
                raise _fail("unmount", self.mountpoint, e)
            self.mounted = False


def open_target(board, root="/", create=True):
    """Mount the board's flash (if it names a device) and return its bundle Target.

    flash.device set: mount it (fstype, options) at flash.mountpoint unless it is
    mounted there already. No device: flash.mountpoint is an existing directory
    (e.g. a partition the rootfs mounts). root prefixes every path (tests).
    """
    from crashkeep.system import syscall
    mp_conf = board.get("flash.mountpoint")
    mp = _rooted(root, mp_conf)
    dev = board.get("flash.device")
    mounted = False
    if dev:
        devp = _rooted(root, dev)
        if not exists(devp):
            raise DeviceError("Failed to find flash device '%s': No such file or directory" % devp)
        cur = mounted_at(mp_conf, root)
        if cur is None:
            makedirs(mp)
            flags, data = parse_options(board.get("flash.options"))
            try:
                syscall.mount(devp, mp, board.get("flash.fstype"), flags, data)
            except OSError as e:
                # a write-protected block device: EROFS, or EACCES from the block layer
                if errno_of(e) in (EROFS, EACCES) and not flags & MS_RDONLY:
                    raise DeviceError("Failed to mount '%s' on '%s': read-only device" % (devp, mp))
                raise _fail("mount '%s' on" % devp, mp, e)
            mounted = True
    elif not is_dir(mp):
        raise DeviceError("Failed to find flash directory '%s': not a directory" % mp)
    path = mp + "/" + board.get("flash.dir").strip("/") if board.get("flash.dir") else mp
    t = Target(path, mp, mounted)
    if create:
        try:
            makedirs(path)
        except DeviceError:
            t.close()
            raise
    return t


def _rooted(root, path):
    if root in ("", "/"):
        return path
    return path_join(root, path.lstrip("/"))


def compress(data):
    """gzip bytes (mtime 0, so the same input gives the same file), or None.

    CPython has zlib; MicroPython's deflate module only decompresses, so
    bundles written there stay uncompressed.
    """
    try:
        import zlib
        c = zlib.compressobj(6, zlib.DEFLATED, 31)
    except (ImportError, AttributeError):
        return None
    return c.compress(data) + c.flush()


def decompress(data, limit=64 << 20):
    """Inverse of compress() on either runtime."""
    try:
        import zlib
        d = zlib.decompressobj(31)
        out = d.decompress(data, limit)
        if not d.eof:
            raise ValueError("truncated gzip stream")
        return out
    except ImportError:
        pass
    import io
    import deflate
    with deflate.DeflateIO(io.BytesIO(data), deflate.GZIP) as f:
        return f.read(limit)
