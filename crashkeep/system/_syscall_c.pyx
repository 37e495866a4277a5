# cython: language_level=3
"""The kernel system calls the boot path needs, compiled: finit_module,
init_module, mount, umount2.

The static binary has no ctypes, so these are called directly; the pure twin
(_kmod_py.py) reaches the same calls through ctypes on a full CPython.
Errors come back as OSError(errno, strerror, path) like os.* functions.
"""
import posix as os    # the builtin module: `os` itself costs ms to import in the static binary

cdef extern from "errno.h":
    int errno

cdef extern from "unistd.h":
    long syscall(long number, ...) nogil

cdef extern from "sys/syscall.h":
    long SYS_finit_module
    long SYS_init_module

cdef extern from "sys/mount.h":
    int c_mount "mount"(const char *source, const char *target, const char *fstype,
                        unsigned long flags, const void *data) nogil
    int c_umount2 "umount2"(const char *target, int flags) nogil

IMPL = "c"


cdef _fail(int err, path):
    raise OSError(err, os.strerror(err), path)


def finit_module(path, params):
    """Load the module file at path with the option string params."""
    cdef bytes p = params.encode()
    cdef const char *cp = p
    cdef long r
    cdef int fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with nogil:
            r = syscall(SYS_finit_module, fd, cp, 0)
        if r != 0:
            _fail(errno, path)
    finally:
        os.close(fd)


def init_module(image, params, path=""):
    """Load a module from its bytes (kernels or seccomp rules without finit_module)."""
    cdef bytes img = bytes(image)
    cdef const char *ci = img
    cdef unsigned long n = len(img)
    cdef bytes p = params.encode()
    cdef const char *cp = p
    cdef long r
    with nogil:
        r = syscall(SYS_init_module, ci, n, cp)
    if r != 0:
        _fail(errno, path)


def mount(source, target, fstype, flags=0, data=""):
    cdef bytes s = source.encode()
    cdef bytes t = target.encode()
    cdef bytes f = fstype.encode()
    cdef bytes d = data.encode()
    cdef int r = c_mount(s, t, f, flags, <const char *>d if d else NULL)
    if r != 0:
        _fail(errno, target)


def umount(target, flags=0):
    cdef bytes t = target.encode()
    if c_umount2(t, flags) != 0:
        _fail(errno, target)


cdef extern from "sys/mman.h":
    void *c_mmap "mmap"(void *addr, size_t length, int prot, int flags, int fd, long offset) nogil
    int c_munmap "munmap"(void *addr, size_t length) nogil
    int PROT_READ
    int MAP_SHARED
    void *MAP_FAILED

cdef extern from "unistd.h":
    long c_sysconf "sysconf"(int name) nogil
    int _SC_PAGESIZE


def mmap_read(path, offset, size):
    """size bytes at offset of path (/dev/mem) through a read-only shared mapping:
    where read() of /dev/mem fails (EFAULT on 32-bit ARM for memory outside the
    kernel's linear map, arm64 for no-map regions) a mapping still works."""
    cdef long page = c_sysconf(_SC_PAGESIZE)
    cdef long base = offset - offset % page
    cdef size_t length = size + (offset - base)
    cdef void *m
    cdef int fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with nogil:
            m = c_mmap(NULL, length, PROT_READ, MAP_SHARED, fd, base)
        if m == MAP_FAILED:
            _fail(errno, path)
        try:
            return (<char *>m)[offset - base:offset - base + size]
        finally:
            c_munmap(m, length)
    finally:
        os.close(fd)
