"""Block copier, pure-Python twin of _blockcopy_c.pyx (same names, same results).

Used on MicroPython, with CRASHKEEP_PUREPYTHON=1, or when the compiled unit is
missing. One buffer for the whole copy; `readinto` fills it, short reads are
topped up until the block is full or the source ends, short writes resumed.
"""
IMPL = "py"


def _fill(src, mv, want):
    got = 0
    while got < want:
        k = src.readinto(mv[got:want])
        if not k:           # 0 = end of file; None = non-blocking source had nothing
            break
        got += k
    return got


def _write_all(dst, mv, n):
    done = 0
    while done < n:
        k = dst.write(mv[done:n])
        if k is None:
            continue
        if k == 0:
            raise OSError(28, "No space left on device")   # ENOSPC, as the MTD driver says
        done += k


def copy_range(src, dst, skip, seek, count, bs, align, src_seekable, dst_seekable,
               progress=None, progress_every=4 << 20):
    """Copy `count` bytes (-1: to the end) from src offset `skip` to dst offset `seek`.

    src, dst: open unbuffered binary files. bs: block size (a multiple of
    align when align > 0). align: after the first block every write starts on
    a multiple of it (MTD erase blocks). A non-seekable source has `skip`
    bytes read and dropped; a non-seekable destination needs seek == 0.
    progress(done) is called about every progress_every bytes. Returns the
    number of bytes copied.
    """
    buf = bytearray(bs)
    mv = memoryview(buf)
    if src_seekable:
        src.seek(skip)
    else:
        left = skip
        while left > 0:
            k = _fill(src, mv, min(bs, left))
            if k == 0:
                return 0
            left -= k
    if dst_seekable:
        dst.seek(seek)
    done = 0
    pos = seek
    next_report = progress_every
    while count < 0 or done < count:
        want = bs
        if align and pos % align:
            want = min(bs, align - pos % align)
        if count >= 0 and count - done < want:
            want = count - done
        n = _fill(src, mv, want)
        if n == 0:
            break
        _write_all(dst, mv, n)
        done += n
        pos += n
        if progress is not None and done >= next_report:
            progress(done)
            next_report = done + progress_every
        if n < want:
            break
    return done
