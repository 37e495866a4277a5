"""The few places where CPython and MicroPython differ, kept in one module.

The core (formats, config, salvage logic) imports only from here and from
builtins that both runtimes share (see docs on MicroPython in the dev notes).
"""
import sys

MICROPYTHON = sys.implementation.name == "micropython"

try:
    from micropython import const  # noqa: F401
except ImportError:
    def const(x):
        return x

try:
    from time import monotonic
except ImportError:  # MicroPython: ticks_ms wraps, but not within one run of ours
    import time as _time

    def monotonic():
        return _time.ticks_ms() / 1000.0

try:
    from binascii import crc32
except ImportError:  # pragma: no cover - both runtimes have binascii.crc32
    crc32 = None


def path_join(*parts):
    out = ""
    for p in parts:
        if not p:
            continue
        if p.startswith("/") or not out:
            out = p
        elif out.endswith("/"):
            out += p
        else:
            out += "/" + p
    return out


def basename(path):
    return path.rstrip("/").rsplit("/", 1)[-1]


def dirname(path):
    head = path.rstrip("/").rsplit("/", 1)
    if len(head) == 1:
        return "."
    return head[0] or "/"


def errno_of(exc):
    """errno of an OSError on both runtimes (MicroPython has only args[0])."""
    e = getattr(exc, "errno", None)
    if e is None and exc.args:
        e = exc.args[0]
    return e if isinstance(e, int) else None


def strerror(exc):
    s = getattr(exc, "strerror", None)
    if s:
        return s
    e = errno_of(exc)
    if e is not None:
        try:
            import os
            return os.strerror(e)
        except (ImportError, AttributeError):  # MicroPython: the errors a user meets
            return _MESSAGES.get(e, "errno %d" % e)
    return str(exc)


_MESSAGES = {1: "Operation not permitted", 2: "No such file or directory", 5: "Input/output error",
             13: "Permission denied", 16: "Device or resource busy", 17: "File exists",
             19: "No such device", 20: "Not a directory", 21: "Is a directory",
             22: "Invalid argument", 28: "No space left on device", 30: "Read-only file system"}


def exists(path):
    import os
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def is_dir(path):
    import os
    try:
        return (os.stat(path)[0] & 0o170000) == 0o040000
    except OSError:
        return False


def listdir(path):
    import os
    return sorted(os.listdir(path))


def read_text(path, limit=65536):
    with open(path, "rb") as f:
        return f.read(limit).decode("utf-8", "replace")


def raw_inflate(data, limit, wbits=15):
    """Inflate a raw DEFLATE stream (no zlib header), at most `limit` bytes out.

    Raises ValueError on a broken stream. pstore's deflate records are raw
    (window 11 on 6.1, 15 on 6.6+); a 15-bit window reads both. `wbits`
    sets a smaller window (which then refuses longer distances).
    """
    try:
        import zlib
    except ImportError:
        zlib = None
    if zlib is not None and hasattr(zlib, "decompressobj"):
        d = zlib.decompressobj(-wbits)
        try:
            out = d.decompress(data, limit)
        except zlib.error as e:
            raise ValueError(str(e))
        if not d.eof:
            raise ValueError("truncated deflate stream")
        return out
    import io
    import deflate
    try:
        with deflate.DeflateIO(io.BytesIO(data), deflate.RAW, wbits) as f:
            out = f.read(limit)
    except OSError as e:
        raise ValueError("bad deflate stream: %s" % (e,))
    return out


def fsync_file(f):
    """fsync an open file; MicroPython's unix port has no fsync, so sync(1)."""
    f.flush()
    try:
        import os
        os.fsync(f.fileno())
    except (ImportError, AttributeError):
        _sync_all()


def fsync_dir(path):
    import os
    try:
        fd = os.open(path, os.O_RDONLY)
    except AttributeError:
        _sync_all()
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_all():
    import os
    if hasattr(os, "sync"):
        os.sync()
    else:
        os.system("sync")
