"""`crashkeep copy`: dd-like byte-range copy with the block copier."""
import sys

from crashkeep.commands.spec import Command, Param

PROGRESS_MIN = 8 << 20       # smaller copies finish before a bar is worth drawing


def tty_progress(total, out=None):
    """A progress(done) callback drawing on stderr if it is a terminal, else None."""
    out = out or sys.stderr
    try:
        if not out.isatty() or total is None or total < PROGRESS_MIN:
            return None
    except (AttributeError, OSError):
        return None

    def progress(done):
        pct = 100 * done // total if total else 100
        bar = "#" * (pct // 4)
        out.write("\r[%-25s] %3d%% %d/%d MiB" % (bar, pct, done >> 20, total >> 20))
        out.flush()
        if done >= total:
            out.write("\n")
    return progress


def run_copy(opts):
    from crashkeep.system import blockcopy
    total = None
    if opts.count is not None:
        total = opts.count
    elif opts.tail is not None:
        total = opts.tail
    else:
        try:
            from crashkeep.compat import sysos
            total = sysos.stat(opts.src)[6] - opts.skip
        except OSError:
            total = None
    progress = tty_progress(total) if opts.dst != "-" else None
    n = blockcopy.copy(opts.src, opts.dst, tail=opts.tail, skip=opts.skip, seek=opts.seek,
                       count=opts.count, bs=opts.bs, notrunc=opts.notrunc, progress=progress)
    if progress is not None and total and n < total:
        sys.stderr.write("\n")
    return 0


COMMANDS = [
    Command("copy", "Copy a byte range between files and devices.", [
        Param("src", positional=True, required=True, help="source file, device, mtd:NAME or -"),
        Param("dst", positional=True, required=True,
              help="destination file, device, mtd:NAME or -"),
        Param("tail", "size", help="copy the last N bytes of SRC"),
        Param("skip", "size", 0, help="start N bytes into SRC"),
        Param("seek", "size", 0, help="write starting N bytes into DST"),
        Param("count", "size", help="copy at most N bytes"),
        Param("bs", "size", 1 << 20, help="block size"),
        Param("notrunc", "flag", False, help="do not cut a DST file after the copied range"),
    ], run_copy, fast=True,
        epilog="Same bytes as: dd if=SRC of=DST bs=BS skip=SKIP seek=SEEK count=COUNT "
               "iflag=skip_bytes,count_bytes oflag=seek_bytes"),
]
