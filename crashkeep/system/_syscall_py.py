"""Pure twin of _kmod_c: finit_module, init_module, mount, umount2 via ctypes.

CPython has no os.* wrapper for these calls and glibc has none for
finit_module, so it goes through syscall(2) with the machine's number.
Without ctypes (MicroPython, a static build) module loading raises a clear
OSError(ENOSYS); mount/umount fall back to the mount(8)/umount(8) commands.
"""
import os


IMPL = "py"

# (finit_module, init_module) per `uname -m`, from each arch's unistd tables.
_SYSCALLS = {
    "x86_64": (313, 175), "i386": (350, 128), "i686": (350, 128),
    "aarch64": (273, 105), "riscv64": (273, 105),
    "armv7l": (379, 128), "armv6l": (379, 128), "armv5tel": (379, 128),
    "mips": (4348, 4128), "mipsel": (4348, 4128),      # o32
    "mips64": (5307, 5168),                           # n64
    "ppc": (353, 128), "ppc64": (353, 128), "ppc64le": (353, 128),
}

ENOSYS = 38
_libc = []


def _c():
    if not _libc:
        try:
            import ctypes
        except ImportError:
            _libc.append(None)
        else:
            _libc.append((ctypes, ctypes.CDLL(None, use_errno=True)))
    return _libc[0]


def _err(ctypes, path):
    e = ctypes.get_errno()
    raise OSError(e, os.strerror(e), path)


def _numbers():
    try:
        m = os.uname()[4]
    except AttributeError:
        m = ""
    return _SYSCALLS.get(m)


def _need(path):
    c = _c()
    nums = _numbers()
    if c is None or nums is None:
        raise OSError(ENOSYS, "this runtime cannot call finit_module (no ctypes; "
                      "use the compiled build)", path)
    return c, nums


def finit_module(path, params):
    (ctypes, libc), nums = _need(path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        r = libc.syscall(ctypes.c_long(nums[0]), ctypes.c_int(fd),
                         ctypes.c_char_p(params.encode()), ctypes.c_int(0))
        if r != 0:
            _err(ctypes, path)
    finally:
        os.close(fd)


def init_module(image, params, path=""):
    (ctypes, libc), nums = _need(path)
    img = bytes(image)
    r = libc.syscall(ctypes.c_long(nums[1]), ctypes.c_char_p(img), ctypes.c_ulong(len(img)),
                     ctypes.c_char_p(params.encode()))
    if r != 0:
        _err(ctypes, path)


def mount(source, target, fstype, flags=0, data=""):
    c = _c()
    if c is None:
        _mount_cmd(source, target, fstype, flags, data)
        return
    ctypes, libc = c
    r = libc.mount(source.encode(), target.encode(), fstype.encode(), ctypes.c_ulong(flags),
                   data.encode() if data else None)
    if r != 0:
        _err(ctypes, target)


def umount(target, flags=0):
    c = _c()
    if c is None:
        if os.system("umount '%s'" % target) != 0:
            raise OSError(16, "umount failed", target)
        return
    ctypes, libc = c
    if libc.umount2(target.encode(), ctypes.c_int(flags)) != 0:
        _err(ctypes, target)


def _mount_cmd(source, target, fstype, flags, data):
    opts = [o for o in (data or "").split(",") if o]
    if flags & 1:
        opts.insert(0, "ro")
    cmd = "mount -t %s %s'%s' '%s'" % (fstype, "-o '%s' " % ",".join(opts) if opts else "",
                                        source, target)
    if os.system(cmd) != 0:
        raise OSError(5, "mount failed", target)




def mmap_read(path, offset, size):
    """size bytes at offset of path (/dev/mem) through a read-only shared mapping
    (see _syscall_c.mmap_read); OSError(ENOSYS) where the runtime has no mmap."""
    try:
        import mmap
    except ImportError:
        raise OSError(ENOSYS, "this runtime has no mmap (use the compiled build)", path)
    page = mmap.PAGESIZE
    base = offset - offset % page
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        m = mmap.mmap(fd, size + offset - base, mmap.MAP_SHARED, mmap.PROT_READ, offset=base)
    except ValueError as e:
        raise OSError(22, str(e), path)
    finally:
        os.close(fd)
    try:
        return bytes(m[offset - base:offset - base + size])
    finally:
        m.close()
