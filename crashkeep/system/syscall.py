"""The system calls Python has no wrapper for: finit_module(2) and init_module(2)
(module loading, see kmod) and mount(2)/umount(2) (the flash target, pstore).

Accelerated unit: _syscall_c (Cython; the static binary has no ctypes) or
_syscall_py (ctypes; without it, a clear ENOSYS or the mount(8) command).
Errors come back as OSError(errno, strerror, path), like os.* functions.
"""
from crashkeep.compat import twin

_impl = twin("crashkeep.system", "syscall")
IMPL = _impl.IMPL


def finit_module(path, params):
    return _impl.finit_module(path, params)


def init_module(image, params, path=""):
    return _impl.init_module(image, params, path)


def mount(source, target, fstype, flags=0, data=""):
    return _impl.mount(source, target, fstype, flags, data)


def umount(target, flags=0):
    return _impl.umount(target, flags)


def mmap_read(path, offset, size):
    """size bytes at offset of path through a read-only shared mapping (for
    /dev/mem where read() is refused; see kmod.read_phys)."""
    return _impl.mmap_read(path, offset, size)
