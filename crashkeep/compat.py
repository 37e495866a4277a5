"""The OS layer: where CPython, MicroPython and the static binary differ, and the
small OS helpers everything else uses (environment, files, directories, fsync,
the kernel log, the pure-Python switch), kept in one module.

Formats import only names from here that both runtimes have; system modules
use `sysos` and the helpers below instead of `os`.
"""
import sys

try:
    # CPython: the builtin under `os`, loaded at start-up. Without site (the
    # static binary) `os` itself is not, and importing it costs ~1 ms of a
    # 10 ms save; what we need is all in posix.
    import posix as sysos
except ImportError:
    import os as sysos      # MicroPython

MICROPYTHON = sys.implementation.name == "micropython"

ENOENT = 2
EEXIST = 17
ENOSPC = 28
EDQUOT = 122

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


def getenv(name):
    """$name or None. On CPython a value decodes as os.environ does it (UTF-8,
    surrogateescape), so a path from the environment opens the same file."""
    os = sys.modules.get("os")
    if os is not None and hasattr(os, "environ"):
        return os.environ.get(name)     # follows putenv; posix.environ is a start-up copy
    if hasattr(sysos, "getenv"):
        return sysos.getenv(name)       # MicroPython
    v = sysos.environ.get(name.encode())
    return None if v is None else v.decode("utf-8", "surrogateescape")


# The pure-Python switch: every accelerated unit has a Cython twin (_X_c) and a
# pure one (_X_py) with the same names; MicroPython and CRASHKEEP_PUREPYTHON=1
# take the pure one, and so does a build where the compiled one is missing.
PURE = MICROPYTHON or getenv("CRASHKEEP_PUREPYTHON") == "1"


def import_module(name):
    """The module called `name` (dotted), imported if needed, on both runtimes."""
    mod = __import__(name)
    for part in name.split(".")[1:]:
        mod = getattr(mod, part)
    return mod


def twin(package, unit):
    """<package>._<unit>_c unless PURE or it is not built, else <package>._<unit>_py."""
    if not PURE:
        try:
            return import_module("%s._%s_c" % (package, unit))
        except ImportError:
            pass
    return import_module("%s._%s_py" % (package, unit))


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
            return sysos.strerror(e)
        except AttributeError:  # MicroPython: the errors a user meets
            return _MESSAGES.get(e, "errno %d" % e)
    return str(exc)


_MESSAGES = {1: "Operation not permitted", 2: "No such file or directory", 5: "Input/output error",
             13: "Permission denied", 16: "Device or resource busy", 17: "File exists",
             19: "No such device", 20: "Not a directory", 21: "Is a directory",
             22: "Invalid argument", 28: "No space left on device", 30: "Read-only file system"}


def exists(path):
    try:
        sysos.stat(path)
        return True
    except OSError:
        return False


def is_dir(path):
    try:
        return (sysos.stat(path)[0] & 0o170000) == 0o040000
    except OSError:
        return False


def listdir(path):
    return sorted(sysos.listdir(path))


def os_error(verb, path, e):
    """The one-line error for an OSError: NoSpaceError when the disk is full."""
    from crashkeep.errors import DeviceError, NoSpaceError
    msg = "Failed to %s '%s': %s" % (verb, path, strerror(e))
    if errno_of(e) in (ENOSPC, EDQUOT):
        return NoSpaceError(msg)
    return DeviceError(msg)


def makedirs(path):
    """mkdir -p; DeviceError (NoSpaceError when full) naming the directory that failed."""
    cur = ""
    for p in path.rstrip("/").split("/"):
        cur = cur + "/" + p if cur or path.startswith("/") else p
        if not p or is_dir(cur):
            continue
        try:
            sysos.mkdir(cur)
        except OSError as e:
            if not is_dir(cur):     # another process may have made it meanwhile
                raise os_error("create", cur, e)


def remove_if_present(path):
    """unlink(2); True if it was removed, False if it was not there. Other errors raise."""
    try:
        sysos.remove(path)
    except OSError as e:
        if errno_of(e) == ENOENT:
            return False
        raise
    return True


def kmsg(line, dev="/dev/kmsg", level=None):
    """One line to the kernel log (the console of a board, the only place a pipe
    handler's words are seen); silently nothing where there is no /dev/kmsg."""
    text = ("<%d>" % level if level is not None else "") + line[:900] + "\n"
    try:
        with open(dev, "wb") as f:
            f.write(text.encode())
    except OSError:
        pass


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
    """flush + fsync(2); MicroPython's unix port has no fsync, so sync(1) there."""
    f.flush()
    if not hasattr(sysos, "fsync"):
        _sync_all()
        return
    sysos.fsync(f.fileno())


def fsync_dir(path):
    """fsync(2) of a directory: a rename in it is durable after this."""
    if not hasattr(sysos, "fsync"):
        _sync_all()
        return
    fd = sysos.open(path, sysos.O_RDONLY)
    try:
        sysos.fsync(fd)
    finally:
        sysos.close(fd)


def _sync_all():
    import os
    if hasattr(os, "sync"):
        os.sync()
    else:
        os.system("sync")
