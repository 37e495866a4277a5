"""Block copier: copy a byte range between files and devices, dd-like.

    copy(src, dst, tail=None, skip=0, seek=0, count=None, bs=1 << 20)

means `dd if=src of=dst iflag=skip_bytes,count_bytes oflag=seek_bytes bs=BS
skip=SKIP seek=SEEK count=COUNT` (tail=N: skip to the last N bytes), with dd's
output rules: a regular output file is cut at `seek` first unless notrunc
(conv=notrunc), devices are written in place. `-` is stdin/stdout. An MTD
output is written in erase-block-aligned blocks, and erased first where the
device type needs it (flash; never phram, which is RAM).

The loop itself is an accelerated unit: _blockcopy_c (Cython: pread/pwrite on
fds, one malloc'ed buffer) or _blockcopy_py (same names, pure Python), chosen
once here.
"""
import sys

from crashkeep.compat import MICROPYTHON, strerror, errno_of, sysos, twin
from crashkeep.errors import DeviceError, ConfigError

_impl = twin("crashkeep.system", "blockcopy")

IMPL = _impl.IMPL
copy_range = _impl.copy_range
DEFAULT_BS = 1 << 20
BS_MAX = 4 << 20

_S_IFMT = 0o170000
_S_IFREG = 0o100000
_S_IFCHR = 0o020000


def _mode(path):
    try:
        return sysos.stat(path)[0] & _S_IFMT
    except OSError:
        return None


def _std(which):
    f = getattr(sys, which)
    return getattr(f, "buffer", f)


def _size_of(f, path):
    """Byte size of a seekable source (files and MTD/block devices), else None."""
    try:
        end = f.seek(0, 2)
        f.seek(0)
    except OSError:
        return None
    if end == 0 and _mode(path) == _S_IFCHR and not path.startswith("/dev/mtd"):
        return None       # /dev/zero, ttys: seekable in name only
    return end


def open_src(path, device_only=False):
    """device_only: refuse a FIFO, socket or tty up front (dump --raw of the keep area)."""
    if path == "-":
        return _std("stdin"), False
    try:
        if device_only:
            from crashkeep.system.mtd import open_checked
            return open_checked(path), True
        f = open(path, "rb", buffering=0)
    except OSError as e:
        raise DeviceError("Failed to open '%s': %s" % (path, strerror(e)))
    return f, True


def open_dst(path, seek, notrunc):
    """(file, seekable, mode) for the output, created/truncated like dd does."""
    if path == "-":
        return _std("stdout"), False, None
    mode = _mode(path)
    try:
        if mode is not None and mode != _S_IFREG:
            return open(path, "r+b", buffering=0), True, mode
        if MICROPYTHON:
            f = open(path, "r+b" if (mode is not None and (notrunc or seek)) else "wb")
            return f, True, _S_IFREG
        fd = sysos.open(path, sysos.O_WRONLY | sysos.O_CREAT | sysos.O_CLOEXEC, 0o644)
        try:
            if not notrunc:
                sysos.ftruncate(fd, seek)
        except OSError:
            sysos.close(fd)
            raise
        return open(fd, "wb", buffering=0), True, _S_IFREG
    except OSError as e:
        raise DeviceError("Failed to open '%s' for writing: %s" % (path, strerror(e)))


def tail_stream(src, n, bs=65536):
    """The last n bytes of a non-seekable source, read through an n-byte ring.

    The ring grows with what arrives, so its size is bounded by the source's
    real size as well as by n: `echo hi | ... --tail 1T` holds three bytes.
    """
    ring = bytearray()
    buf = bytearray(min(bs, max(n, 1)))
    mv = memoryview(buf)
    pos = 0          # next ring write position, once the ring is full
    total = 0
    while True:
        k = src.readinto(mv)
        if not k:
            break
        total += k
        data = mv[:k]
        if len(ring) < n:
            take = min(k, n - len(ring))
            ring.extend(data[:take])
            if take == k:
                continue
            data = data[take:]
            k -= take
        if k >= n:
            ring[:] = data[k - n:]
            pos = 0
            continue
        first = min(k, n - pos)
        ring[pos:pos + first] = data[:first]
        if first < k:
            ring[:k - first] = data[first:]
        pos = (pos + k) % n if n else 0
    if total < n:
        return bytes(ring), total
    return bytes(ring[pos:]) + bytes(ring[:pos]), total


def plan(size, tail=None, skip=0, count=None):
    """(skip, count) of the bytes to copy from a source of `size` bytes (None: unknown)."""
    if tail is not None:
        if skip:
            raise ConfigError("--tail and --skip do not go together")
        if size is None:
            raise ConfigError("--tail needs a seekable source here")
        skip = max(0, size - tail)
        n = size - skip
        return skip, n if count is None else min(n, count)
    if count is None:
        return skip, -1 if size is None else max(0, size - skip)
    if size is not None:
        return skip, max(0, min(count, size - skip))
    return skip, count


def copy(src_path, dst_path, tail=None, skip=0, seek=0, count=None, bs=DEFAULT_BS,
         notrunc=False, progress=None, root="", device_only=False):
    """Copy and return the number of bytes written. Paths may be `mtd:NAME`."""
    from crashkeep.system import mtd
    if bs <= 0:
        raise ConfigError("--bs must be at least 1")
    # dd's bs only sizes its buffer (we count bytes, not blocks), so a larger
    # one copies the same bytes; it is not worth the memory of a small board
    bs = min(bs, BS_MAX)
    src_path = mtd.resolve(src_path, root) if src_path != "-" else src_path
    dst_path = mtd.resolve(dst_path, root) if dst_path != "-" else dst_path
    src, src_seekable = open_src(src_path, device_only)
    try:
        size = _size_of(src, src_path) if src_seekable else None
        if size is None:
            src_seekable = False
        if tail is not None and not src_seekable:
            data, _total = tail_stream(src, tail)
            if count is not None:
                data = data[:count]
            return _copy_bytes(data, dst_path, seek, notrunc, bs, root)
        skip, n = plan(size, tail, skip, count)
        dst, dst_seekable, dmode = open_dst(dst_path, seek, notrunc)
        try:
            if not dst_seekable and seek:
                raise ConfigError("--seek needs a seekable output")
            align = _prepare_mtd(dst, dst_path, dmode, seek, n, root)
            if align and bs % align:
                bs += align - bs % align
            if n >= 0 and bs > n:
                bs = max(n, align or 1)   # a small copy needs no big buffer
            return copy_range(src, dst, skip, seek, n, bs, align, src_seekable, dst_seekable,
                              progress)
        finally:
            if dst_path != "-":
                dst.close()
            else:
                dst.flush()
    except OSError as e:
        if errno_of(e) == 32 and dst_path == "-":
            raise       # EPIPE: the reader went away; the entry's broken-pipe policy
        raise DeviceError("Failed to copy '%s' to '%s': %s" % (src_path, dst_path, strerror(e)))
    finally:
        if src_path != "-":
            src.close()


def _prepare_mtd(dst, path, dmode, seek, n, root):
    """Erase-block alignment (and the erase itself on flash) for an MTD output; 0 otherwise."""
    from crashkeep.system import mtd
    if dmode != _S_IFCHR or mtd.mtd_index(path) is None:
        return 0
    info = mtd.device_info(path, dst, root)
    if n < 0:
        n = info.size - seek
    if seek + n > info.size:
        raise DeviceError("Failed to write '%s': %d bytes at 0x%x do not fit in its %d bytes"
                          % (path, n, seek, info.size))
    es = info.erasesize or 0
    if info.needs_erase and n:
        if seek % es:
            raise DeviceError("Failed to write '%s': offset 0x%x is not on an erase block "
                              "(0x%x)" % (path, seek, es))
        mtd.erase(dst, path, seek, (n + es - 1) // es * es)
    return es


def _copy_bytes(data, dst_path, seek, notrunc, bs, root):
    dst, dst_seekable, dmode = open_dst(dst_path, seek, notrunc)
    try:
        if not dst_seekable and seek:
            raise ConfigError("--seek needs a seekable output")
        _prepare_mtd(dst, dst_path, dmode, seek, len(data), root)
        if dst_seekable:
            dst.seek(seek)
        mv = memoryview(data)
        done = 0
        while done < len(mv):
            k = dst.write(mv[done:])
            if not k:
                raise OSError(28, "No space left on device")
            done += k
        return done
    finally:
        if dst_path != "-":
            dst.close()
        else:
            dst.flush()
