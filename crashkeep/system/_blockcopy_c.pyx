# cython: language_level=3, boundscheck=False, wraparound=False
"""Block copier, compiled twin of _blockcopy_py.py (same names, same results).

The copy loop works on file descriptors with pread/pwrite (read/write for
pipes), one malloc'ed buffer, and no Python object per block: only errors
and progress reports touch the interpreter. EINTR is retried, short reads are
topped up until the block is full or the source ends, short writes resumed.
"""
from posix import strerror   # not os: the copy path stays off `os` (see mtd.py)

from libc.stdlib cimport malloc, free
from libc.errno cimport errno, EINTR, ENOSPC
from posix.unistd cimport read, write, pread, pwrite
from posix.types cimport off_t

IMPL = "c"


cdef Py_ssize_t _fill(int fd, char *buf, Py_ssize_t want, off_t off, bint seekable) noexcept nogil:
    """Bytes read (< want only at the end of the source), or -errno."""
    cdef Py_ssize_t got = 0
    cdef Py_ssize_t k
    while got < want:
        if seekable:
            k = pread(fd, buf + got, want - got, off + got)
        else:
            k = read(fd, buf + got, want - got)
        if k < 0:
            if errno == EINTR:
                continue
            return -errno
        if k == 0:
            break
        got += k
    return got


cdef int _write_all(int fd, const char *buf, Py_ssize_t n, off_t off, bint seekable) noexcept nogil:
    """0, or errno."""
    cdef Py_ssize_t done = 0
    cdef Py_ssize_t k
    while done < n:
        if seekable:
            k = pwrite(fd, buf + done, n - done, off + done)
        else:
            k = write(fd, buf + done, n - done)
        if k < 0:
            if errno == EINTR:
                continue
            return errno
        if k == 0:
            return ENOSPC
        done += k
    return 0


def copy_range(src, dst, long long skip, long long seek, long long count, Py_ssize_t bs,
               long long align, bint src_seekable, bint dst_seekable, progress=None,
               long long progress_every=4 << 20):
    """Copy `count` bytes (-1: to the end) from src offset `skip` to dst offset `seek`.

    Same contract as _blockcopy_py.copy_range; src and dst need fileno().
    """
    cdef int sfd = src.fileno()
    cdef int dfd = dst.fileno()
    cdef char *buf = <char *>malloc(bs if bs > 0 else 1)
    cdef long long done = 0
    cdef long long pos = seek
    cdef long long inpos = skip
    cdef long long next_report = progress_every
    cdef long long left
    cdef Py_ssize_t want, n
    cdef int err = 0
    cdef bint has_progress = progress is not None
    if buf == NULL:
        raise MemoryError()
    try:
        if not src_seekable:
            left = skip
            while left > 0:
                with nogil:
                    n = _fill(sfd, buf, bs if left > bs else left, 0, False)
                if n < 0:
                    raise OSError(-n, strerror(-n))
                if n == 0:
                    return 0
                left -= n
        while count < 0 or done < count:
            want = bs
            if align and pos % align:
                want = align - pos % align
                if want > bs:
                    want = bs
            if count >= 0 and count - done < want:
                want = count - done
            with nogil:
                n = _fill(sfd, buf, want, inpos, src_seekable)
                if n > 0:
                    err = _write_all(dfd, buf, n, pos, dst_seekable)
            if n < 0:
                raise OSError(-n, strerror(-n))
            if err:
                raise OSError(err, strerror(err))
            if n == 0:
                break
            done += n
            pos += n
            inpos += n
            if has_progress and done >= next_report:
                progress(done)
                next_report = done + progress_every
            if n < want:
                break
        return done
    finally:
        free(buf)
