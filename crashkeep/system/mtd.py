"""MTD devices: find them by name, learn their geometry, erase where needed.

Layout source: include/uapi/mtd/mtd-abi.h (struct mtd_info_user, MEMGETINFO,
MEMERASE), drivers/mtd/mtdcore.c (/proc/mtd, /sys/class/mtd), 6.1:

| off | size | mtd_info_user field |
|-----|------|---------------------|
| 0   | 1    | type (1 = MTD_RAM)  |
| 4   | 4    | flags               |
| 8   | 4    | size                |
| 12  | 4    | erasesize           |
| 16  | 4    | writesize           |
| 20  | 4    | oobsize             |
| 24  | 8    | padding             |

A device is named `/dev/mtdN`, `mtd:NAME` (looked up in /proc/mtd, then
/sys/class/mtd) or is a plain file (an image, or a test's stand-in). Every
root path is a parameter so tests run on a fake tree. CPython asks the device
with MEMGETINFO; MicroPython (no ioctl) reads the same facts from sysfs.
"""
from crashkeep.compat import errno_of, strerror, basename, read_text, sysos
from crashkeep.errors import DeviceError

# mtd-abi.h MTD_* types and the names sysfs prints for them (mtd_type_show)
TYPES = {0: "absent", 1: "ram", 2: "rom", 3: "nor", 4: "nand", 6: "dataflash", 7: "ubi",
         8: "mlc-nand"}
MTD_WRITEABLE = 0x400
MTD_NO_ERASE = 0x1000
MTD_INFO_FMT = "=B3xIIIIIQ"     # 32 bytes on every arch we build for (not m68k)

# ioctl numbers by the arch's _IOC encoding (ramoops-format.md §6.3)
_IOCTLS = {
    "generic": (0x80204D01, 0x40084D02),       # MEMGETINFO, MEMERASE
    "dir3": (0x40204D01, 0x80084D02),          # mips, powerpc, sparc, alpha
    "parisc": (0x40204D01, 0x80084D02),
}


def ioctl_numbers(machine=None):
    """(MEMGETINFO, MEMERASE) for a `uname -m` machine string (default: this one)."""
    if machine is None:
        machine = sysos.uname()[4]
    m = machine.lower()
    for prefix in ("mips", "ppc", "powerpc", "sparc", "alpha"):
        if m.startswith(prefix):
            return _IOCTLS["dir3"]
    if m.startswith("parisc"):
        return _IOCTLS["parisc"]
    return _IOCTLS["generic"]


class Info:
    """Geometry of a keep-area device. kind: a TYPES name, or "file"."""

    def __init__(self, path, kind, size, erasesize, flags=0, writesize=1, name="", index=None):
        self.path = path
        self.kind = kind
        self.size = size
        self.erasesize = erasesize
        self.flags = flags
        self.writesize = writesize
        self.name = name
        self.index = index

    @property
    def is_mtd(self):
        return self.kind != "file"

    @property
    def needs_erase(self):
        """phram (ram) and files are written in place; flash must be erased first."""
        if not self.is_mtd or self.kind == "ram":
            return False
        return not (self.flags & MTD_NO_ERASE)

    def __repr__(self):
        return "Info(%r, %s, size=0x%x, erasesize=0x%x)" % (self.path, self.kind, self.size,
                                                            self.erasesize)


def parse_proc_mtd(text):
    """[(index, size, erasesize, name)] from /proc/mtd text."""
    out = []
    for line in text.split("\n"):
        line = line.strip()
        if not line.startswith("mtd") or ":" not in line:
            continue
        dev, rest = line.split(":", 1)
        parts = rest.split(None, 2)
        if len(parts) < 3:
            continue
        try:
            idx = int(dev[3:])
            size = int(parts[0], 16)
            es = int(parts[1], 16)
        except ValueError:
            continue
        out.append((idx, size, es, parts[2].strip().strip('"')))
    return out


def by_name(name, root="/"):
    """(index, size) of the MTD device called name in <root>/proc/mtd, or None."""
    try:
        text = read_text(root.rstrip("/") + "/proc/mtd")
    except OSError:
        return None
    for idx, size, _es, n in parse_proc_mtd(text):
        if n == name:
            return idx, size
    return None


def _sys_mtd(root, idx, attr):
    return read_text("%s/sys/class/mtd/mtd%d/%s" % (root, idx, attr), 256).strip()


def find_by_name(name, root=""):
    """Index of the MTD device called `name`, or DeviceError."""
    try:
        for idx, _size, _es, n in parse_proc_mtd(read_text(root + "/proc/mtd")):
            if n == name:
                return idx
    except OSError:
        pass
    try:
        entries = sysos.listdir(root + "/sys/class/mtd")
    except OSError:
        entries = []
    for e in entries:
        if not e.startswith("mtd") or e.endswith("ro"):
            continue
        try:
            idx = int(e[3:])
            if _sys_mtd(root, idx, "name") == name:
                return idx
        except (ValueError, OSError):
            continue
    raise DeviceError("Failed to find MTD device '%s': not in %s/proc/mtd (is phram loaded?)"
                      % (name, root))


def resolve(spec, root="", dev="/dev"):
    """`/dev/mtdN`, `mtd:NAME` or a file path -> a path to open."""
    if spec.startswith("mtd:"):
        return "%s/mtd%d" % (dev, find_by_name(spec[4:], root))
    return spec


def mtd_index(path):
    """N for /dev/mtdN or /dev/mtdNro, else None."""
    b = basename(path)
    if not b.startswith("mtd") or b.startswith("mtdblock"):
        return None
    b = b[3:]
    if b.endswith("ro"):
        b = b[:-2]
    try:
        return int(b)
    except ValueError:
        return None


def _is_chardev(path):
    try:
        return (sysos.stat(path)[0] & 0o170000) == 0o020000
    except OSError as e:
        raise DeviceError("Failed to open '%s': %s" % (path, strerror(e)))


def info_from_sysfs(path, idx, root=""):
    try:
        kind = _sys_mtd(root, idx, "type")
        size = int(_sys_mtd(root, idx, "size"))
        es = int(_sys_mtd(root, idx, "erasesize"))
        flags = int(_sys_mtd(root, idx, "flags"), 16)
        try:
            ws = int(_sys_mtd(root, idx, "writesize"))
        except (OSError, ValueError):
            ws = 1
        name = _sys_mtd(root, idx, "name")
    except (OSError, ValueError) as e:
        raise DeviceError("Failed to read the geometry of '%s' from sysfs: %s"
                          % (path, strerror(e) if isinstance(e, OSError) else e))
    return Info(path, kind, size, es, flags, ws, name, idx)


def info_from_ioctl(f, path):
    """MEMGETINFO on an open device (CPython); None where ioctl is missing."""
    try:
        import fcntl
        import struct
    except ImportError:
        return None
    buf = bytearray(32)
    try:
        fcntl.ioctl(f.fileno(), ioctl_numbers()[0], buf, True)
    except OSError as e:
        raise DeviceError("Failed to query '%s' (MEMGETINFO): %s" % (path, strerror(e)))
    typ, flags, size, es, ws, _oob, _pad = struct.unpack(MTD_INFO_FMT, buf)
    return Info(path, TYPES.get(typ, "unknown"), size, es, flags, ws, "", mtd_index(path))


def device_info(path, f=None, root=""):
    """Info for an opened device or file. f: the open file (for ioctl/size)."""
    idx = mtd_index(path)
    if idx is not None and _is_chardev(path):
        info = None
        if f is not None:
            info = info_from_ioctl(f, path)
        if info is None:
            info = info_from_sysfs(path, idx, root)
        return info
    try:
        st = sysos.stat(path)
    except OSError as e:
        raise DeviceError("Failed to open '%s': %s" % (path, strerror(e)))
    size = st[6]
    if (st[0] & 0o170000) != 0o100000 and f is not None:
        # a block device or another node: its size is where SEEK_END lands
        size = f.seek(0, 2)
    return Info(path, "file", size, 0)


_KINDS = {0o010000: "a FIFO", 0o140000: "a socket", 0o040000: "a directory",
          0o020000: "a character device", 0o060000: "a block device", 0o100000: "a file"}


def _refuse(path, fmt, chardev):
    """DeviceError unless fmt is a file, a block device or (if chardev says so) this char device.

    A FIFO or a socket would block a read for ever (boot has a deadline, list
    has none); a tty as well, so only MTD nodes and /dev/mem pass as char devices.
    """
    if fmt in (0o100000, 0o060000):
        return
    if fmt == 0o020000 and (chardev == "any" or (chardev == "mtd" and
                                                 (mtd_index(path) is not None
                                                  or path.endswith("/mem")))):
        return
    raise DeviceError("Failed to open '%s': %s, not a file, MTD or block device"
                      % (path, _KINDS.get(fmt, "not a regular file")))


def open_checked(path, write=False, chardev="mtd"):
    """Open `path` unbuffered after checking what it is, without blocking on a FIFO.

    chardev: "mtd" (MTD nodes and /dev/mem), "any" or "none".
    """
    mode = "r+b" if write else "rb"
    if not hasattr(sysos, "fstat") or not hasattr(sysos, "O_NONBLOCK"):
        # MicroPython: no open flags; stat first (a FIFO's stat does not block)
        try:
            fmt = sysos.stat(path)[0] & 0o170000
        except OSError as e:
            raise DeviceError("Failed to open '%s': %s" % (path, strerror(e)))
        _refuse(path, fmt, chardev)
        return open(path, mode, buffering=0)
    flags = (sysos.O_RDWR if write else sysos.O_RDONLY) | sysos.O_NONBLOCK | \
        getattr(sysos, "O_CLOEXEC", 0) | getattr(sysos, "O_NOCTTY", 0)
    fd = sysos.open(path, flags)
    try:
        _refuse(path, sysos.fstat(fd)[0] & 0o170000, chardev)
        sysos.set_blocking(fd, True)
        return open(fd, mode, buffering=0)
    except BaseException:
        sysos.close(fd)
        raise


def open_device(path, write=True):
    """Open for reading (and writing): DeviceError naming the path and the reason."""
    try:
        return open_checked(path, write)
    except OSError as e:
        err = errno_of(e)
        if write and err in (13, 30, 1):       # EACCES, EROFS, EPERM
            raise DeviceError("Failed to open '%s' for writing: %s (read-only device?)"
                              % (path, strerror(e)))
        raise DeviceError("Failed to open '%s': %s" % (path, strerror(e)))


def erase(f, path, start, length):
    """MEMERASE [start, start+length) (erase-block aligned). Flash only: never on phram."""
    try:
        import fcntl
        import struct
    except ImportError:
        raise DeviceError("Failed to erase '%s': no ioctl on this runtime" % path)
    try:
        fcntl.ioctl(f.fileno(), ioctl_numbers()[1], struct.pack("=II", start, length))
    except OSError as e:
        raise DeviceError("Failed to erase '%s' at 0x%x+0x%x: %s" % (path, start, length,
                                                                     strerror(e)))
