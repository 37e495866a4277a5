"""`crashkeep save`: keep a file's tail in the phram keep area.

The save path is what an init script or a log hook runs, so it imports only
the keep area (no block copier, no typer): one read of the tail, one scan of
the area, two writes.
"""
from crashkeep.commands.spec import BOARD, DEVICE, Command, Param
from crashkeep.errors import ConfigError

def _abspath(path):
    if path.startswith("/") or path == "-":
        return path
    from crashkeep.compat import sysos
    return sysos.getcwd().rstrip("/") + "/" + path


def read_tail(path, limit):
    """(last `limit` bytes of path or stdin '-', size of the whole source).

    Regular files are read from `size - limit`; pipes, /proc files (size 0)
    and character devices are read to the end through a `limit`-byte ring.
    """
    from crashkeep.compat import strerror
    from crashkeep.compat import sysos
    import sys
    from crashkeep.errors import DeviceError
    try:
        if path == "-":
            f = getattr(sys.stdin, "buffer", sys.stdin)
            return _stream_tail(f, limit)
        with open(path, "rb", buffering=0) as f:
            size = 0
            if (sysos.stat(path)[0] & 0o170000) == 0o100000:
                try:
                    size = f.seek(0, 2)
                except OSError:
                    size = 0        # procfs: regular, size 0, no SEEK_END
            if size == 0:
                try:
                    f.seek(0)
                except OSError:
                    pass            # a fifo or tty: nothing was read yet anyway
                return _stream_tail(f, limit)
            start = size - limit if size > limit else 0
            f.seek(start)
            buf = bytearray(size - start)
            mv = memoryview(buf)
            got = 0
            while got < len(buf):
                k = f.readinto(mv[got:])
                if not k:
                    break     # the file shrank under us (rotation): keep what we got
                got += k
    except OSError as e:
        raise DeviceError("Failed to read '%s': %s" % (path, strerror(e)))
    return (buf if got == len(buf) else buf[:got]), size


def _stream_tail(f, limit):
    from crashkeep.system.blockcopy import tail_stream
    return tail_stream(f, limit)


def save_once(area, opts, flags=0):
    source = _abspath(opts.file)
    limit = opts.max_bytes
    if limit is None:
        limit = area.max_payload(opts.name, source)
    # bytes past the area's capacity could never be kept: do not read them in
    limit = min(limit, area.capacity())
    payload, size = read_tail(opts.file, limit)
    return area.put(opts.name, payload, source=source, orig_size=size, flags=flags,
                    evict=opts.evict)


def _stamp(path):
    from crashkeep.compat import sysos
    try:
        st = sysos.stat(path)
    except OSError:
        return None
    return (st[1], st[6], st[8])        # inode, size, mtime


def follow(area, opts):
    """Save again whenever the file changes; each save is torn-write safe."""
    import time
    from crashkeep.formats import phramrec
    try:
        import signal

        def _stop(signum, frame):
            raise KeyboardInterrupt()
        signal.signal(signal.SIGTERM, _stop)
    except (ImportError, AttributeError):
        pass
    last = None
    try:
        while True:
            stamp = _stamp(opts.file)
            # a rotated (or truncated) log is empty for a while: the kept tail
            # is the evidence until the new file has something to replace it
            if stamp is not None and stamp != last and not (last is not None and stamp[1] == 0):
                save_once(area, opts, phramrec.FLAG_FOLLOW)
                last = stamp
            time.sleep(opts.interval)
    except KeyboardInterrupt:
        return 0


def run_save(opts):
    from crashkeep.system import keeparea
    if opts.follow and opts.file == "-":
        raise ConfigError("save: --follow needs a file, not -")
    if opts.interval <= 0:
        raise ConfigError("save: --interval must be above 0")
    from crashkeep.formats.phramrec import check_name
    from crashkeep.errors import FormatError
    try:
        check_name(opts.name)
    except FormatError as e:
        raise ConfigError("save: %s" % e)
    area, _board = keeparea.open_configured(opts.board, opts.device)
    try:
        if opts.follow:
            return follow(area, opts)
        save_once(area, opts)
        return 0
    finally:
        area.close()


COMMANDS = [
    Command("save", "Keep the tail of FILE (or - for stdin) in phram as a named record.", [
        Param("file", positional=True, required=True),
        Param("name", required=True, help="record name (letters, digits, -_.+@:)"),
        Param("max-bytes", "size", help="keep at most the last N bytes [default: as much as "
                                        "fits twice]"),
        Param("follow", "flag", False, help="keep mirroring FILE as it grows"),
        Param("interval", "float", 1.0, low=0.01, high=3600.0, help="seconds between checks with --follow"),
        Param("evict", "flag", False, help="drop the oldest records when the area is full"),
        BOARD, DEVICE,
    ], run_save, fast=True),
]
