# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled twin of _drain_py: drop up to `limit` bytes (all when limit < 0) of file f.

On an unbuffered file (io.FileIO, as the core handler opens stdin) it calls
read(2) on the descriptor into the caller's buffer with the GIL released, no
Python object per chunk; on anything else (a buffered reader may hold bytes
the descriptor no longer has) it falls back to readinto.
"""
import io

from libc.errno cimport errno, EINTR
from posix.unistd cimport read

IMPL = "c"


def drain(f, mv, long long limit=-1):
    """Read f into the writable buffer mv until EOF or `limit` bytes; returns bytes read."""
    cdef unsigned char[::1] view = mv
    cdef Py_ssize_t size = view.shape[0]
    cdef long long n = 0
    cdef Py_ssize_t k
    cdef Py_ssize_t want
    cdef int fd
    cdef int err = 0
    if size == 0:
        return 0
    if type(f) is io.FileIO:
        fd = f.fileno()
        with nogil:
            while limit < 0 or n < limit:
                want = size
                if limit >= 0 and limit - n < size:
                    want = <Py_ssize_t>(limit - n)
                k = read(fd, &view[0], want)
                if k < 0:
                    if errno == EINTR:
                        continue
                    err = errno
                    break
                if k == 0:
                    break
                n += k
        if err:
            raise OSError(err, "read")
        return n
    while limit < 0 or n < limit:
        if limit >= 0 and limit - n < size:
            k = f.readinto(mv[:limit - n]) or 0
        else:
            k = f.readinto(mv) or 0
        if k == 0:
            break
        n += k
    return n
