"""Hand salvaged bundles to the transports the box already has: a syslog line, a command.

A spool over the bundle directory, so nothing is lost and nothing is sent for
nothing:

- a bundle is marked for a transport (`.export-<transport>` in the bundle,
  written durably) only after that transport accepted it: the syslog datagram
  was sent, the command exited 0;
- before each delivery the attempt number is written durably
  (`.export-<transport>.try`), so a run cut by a power loss is retried by the
  next one (boot, or the init script later) with CRASHKEEP_EXPORT_ATTEMPT
  one higher;
- a marked bundle is never handed to that transport again. The one window for
  a duplicate is a cut after the transport accepted and before the mark
  reached flash: delivery is at least once, and every delivery names the
  bundle (CRASHKEEP_BUNDLE, `bundle=` in the syslog line) so a receiver can
  drop the repeat;
- export never deletes or changes a bundle's records; a failing transport
  leaves the bundle for the next run.

Board keys: export.syslog (default yes), export.socket (default /dev/log),
export.command (a /bin/sh command run once per bundle: $1 the bundle
directory, $2 its meta.json, CRASHKEEP_* in the environment), export.timeout
(seconds per command, default 30).
"""
import time

from crashkeep.compat import monotonic, strerror
from crashkeep.errors import CrashkeepError, DeviceError
from crashkeep.ops.bundles import META, list_bundles, read_meta
from crashkeep.system import storage

MARK = ".export-"           # + transport: accepted
TRY = ".try"                # suffix of the attempt counter
TRANSPORTS = ("syslog", "command")
LINE_MAX = 1024             # syslog line; BusyBox syslogd keeps the first 256 bytes by default
DETAIL_MAX = 200            # the panic line / crashed process part of it
STDERR_TAIL = 512           # bytes of a failing command's stderr kept for the message
FILE_SCAN_MAX = 1 << 20     # bytes of a record read to find its first panic line
LOG_DAEMON = 3 << 3
SEVERITY = {"panic": 2, "oops": 3}   # crit, err; anything else: warning (4)


class Bundle:
    """One salvaged bundle: name, directory, meta.json path and its parsed content
    (None when unreadable)."""

    def __init__(self, name, bdir, meta_path, meta):
        self.name = name
        self.dir = bdir
        self.meta_path = meta_path
        self.meta = meta


def bundles_in(path):
    """[Bundle] of every bundle in path, oldest first."""
    out = []
    for _seq, name in list_bundles(path):
        bdir = path + "/" + name
        out.append(Bundle(name, bdir, bdir + "/" + META, read_meta(bdir)))
    return out


class Result:
    def __init__(self):
        self.sent = []          # (bundle, transport)
        self.failed = []        # (bundle, transport, reason)
        self.left = 0           # bundles not reached before the deadline


# ---------------------------------------------------------------- spool marks

def marked(bdir, transport):
    return storage.exists(bdir + "/" + MARK + transport)


def attempts(bdir, transport):
    try:
        return int(storage.read_file(bdir + "/" + MARK + transport + TRY, 64).strip() or 0)
    except (OSError, ValueError, DeviceError):
        return 0


def note_attempt(bdir, transport):
    """Durably count one more attempt before delivering; returns its number."""
    n = attempts(bdir, transport) + 1
    storage.write_durable(bdir, MARK + transport + TRY, b"%d\n" % n)
    return n


def mark(bdir, transport, now):
    storage.write_durable(bdir, MARK + transport, b"%d\n" % int(now))


# ---------------------------------------------------------------- the summary line

def _first_line(text, keys):
    for line in text.splitlines():
        s = line.strip()
        if " Part" in s and "#" in s.split(" ", 1)[0]:
            continue            # pstore's own header: "Oops#1 Part1", "Panic#2 Part1"
        # dmesg records carry "<6>[    1.234] " prefixes
        if s.startswith("<") and ">" in s[:5]:
            s = s[s.index(">") + 1:]
        if s.startswith("[") and "]" in s:
            s = s[s.index("]") + 1:].strip()
        for k in keys:
            if k in s:
                return s
    return None


def _record_text(bdir, f):
    try:
        data = storage.read_file(bdir + "/" + f["file"], FILE_SCAN_MAX * 4)
        if f["file"].endswith(".gz") and not f["name"].endswith(".gz"):
            data = storage.decompress(data, FILE_SCAN_MAX)
    except (OSError, CrashkeepError, ValueError):
        return ""
    return bytes(data[:FILE_SCAN_MAX]).decode("utf-8", "replace")


def _core_detail(text):
    """'comm SIGSEGV in f1 < f2 < f3' from a core record's report."""
    comm = sig = None
    frames = []
    crashed = False
    for line in text.splitlines():
        if line.startswith("process: ") and " comm " in line:
            comm = line.split(" comm ", 1)[1].strip()
        elif line.startswith("signal: ") and "(" in line:
            sig = line.split("(", 1)[1].split(")", 1)[0]
        elif line.startswith("backtrace thread "):
            crashed = "(crashed)" in line
        elif crashed and line.startswith("  #") and len(frames) < 3:
            # "  #0  0x... in func (mod+off)": keep the function
            frames.append(line.split(" in ", 1)[1].split(" (", 1)[0] if " in " in line else "?")
    if comm is None:
        return None
    return "%s %s in %s" % (comm, sig or "?", " < ".join(frames) or "?")


def detail(bdir, meta):
    """The first panic/oops line, else the first crashed process and its top frames."""
    files = meta.get("files", [])
    dmesg = [_record_text(bdir, f) for f in files
             if f.get("source") in ("pstore", "raw") and f.get("name", "").startswith("dmesg-")]
    for keys in (("Kernel panic",), ("BUG:", "Oops", "Unable to handle", "general protection")):
        for text in dmesg:
            line = _first_line(text, keys)
            if line:
                return line
    for f in files:
        if f.get("name", "").startswith("phram/core-") or f.get("name", "").startswith("core-"):
            d = _core_detail(_record_text(bdir, f))
            if d:
                return d
    return None


def summary(name, meta, bdir):
    """One line: the id first, so a short syslog buffer still keeps it."""
    c = meta.get("counters", {})
    head = "bundle=%s board=%s reason=%s boot=%s panics=%s files=%d" % (
        name, meta.get("board") or "?", meta.get("reason") or "?", c.get("boot_count", "?"),
        c.get("panic_count", "?"), len(meta.get("files", [])))
    d = detail(bdir, meta)
    if d:
        d = "".join(ch if " " <= ch != "\x7f" else " " for ch in d)[:DETAIL_MAX]
        head += ": " + d
    return head[:LINE_MAX]


# ---------------------------------------------------------------- transports

def rfc3164(msg, severity, now, pid, tag="crashkeep"):
    """<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG -- what syslog(3) sends to /dev/log (the
    local daemon adds the host name)."""
    t = time.localtime(now)
    mon = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
           "Dec")[t[1] - 1]
    return ("<%d>%s %2d %02d:%02d:%02d %s[%d]: %s" % (LOG_DAEMON | severity, mon, t[2], t[3], t[4],
                                                     t[5], tag, pid, msg)).encode("utf-8",
                                                                                  "replace")


def syslog_connect(path):
    """A socket connected to the syslog daemon's socket; DeviceError if there is none."""
    # the C module: socket.py costs start-up time, and the static binary links only
    # the builtins crashkeep imports itself
    import _socket as socket
    last = None
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        try:
            # a kernel without networking (CONFIG_NET=n) has no socket(2): ENOSYS
            s = socket.socket(socket.AF_UNIX, kind)
        except OSError as e:
            last = e
            continue
        try:
            s.settimeout(5)
            s.connect(path)
            return s, kind == socket.SOCK_STREAM
        except OSError as e:
            s.close()
            last = e
    raise DeviceError("Failed to connect to '%s': %s" % (path, strerror(last)))


def syslog_send(conn, data):
    s, stream = conn
    try:
        # a stream socket needs a record end; syslog(3) uses NUL
        n = s.send(data + b"\0") if stream else s.send(data)
    except OSError as e:
        raise DeviceError("Failed to send to syslog: %s" % strerror(e))
    if n < len(data):
        raise DeviceError("Failed to send to syslog: short write (%d of %d bytes)" % (n, len(data)))


def run_command(cmd, bdir, meta_path, env_extra, timeout):
    """Run `sh -c cmd` once; None when it exited 0, else why not. Killed (its whole
    process group) after timeout seconds."""
    import os
    import select
    import signal
    import subprocess
    env = dict(os.environ)
    env.update(env_extra)
    try:
        p = subprocess.Popen(["/bin/sh", "-c", cmd, "crashkeep-export", bdir, meta_path],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=env, cwd=bdir, start_new_session=True)
    except OSError as e:
        return "Failed to run '/bin/sh': %s" % strerror(e)
    tail = b""
    end = monotonic() + timeout
    fd = p.stderr.fileno()
    open_ = True
    try:
        while p.poll() is None:
            left = end - monotonic()
            if left <= 0:
                return "timed out after %ds" % timeout
            if open_:
                r, _, _ = select.select([fd], [], [], min(left, 0.2))
                if r:
                    chunk = os.read(fd, 4096)
                    if not chunk:
                        open_ = False
                    tail = (tail + chunk)[-STDERR_TAIL:]
            else:
                time.sleep(min(left, 0.05))
        if open_:
            # what it wrote before exiting; a child it left behind may hold the pipe
            while select.select([fd], [], [], 0)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                tail = (tail + chunk)[-STDERR_TAIL:]
        if p.returncode == 0:
            return None
        why = ("killed by signal %d" % -p.returncode if p.returncode < 0
               else "exit status %d" % p.returncode)
        last = tail.decode("utf-8", "replace").strip().splitlines()
        return why + (": " + last[-1][:200] if last else "")
    finally:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)   # the command and whatever it started
            except OSError:
                pass
            p.wait()
        p.stderr.close()


def command_env(b, attempt, line):
    meta = b.meta
    c = meta.get("counters", {})
    return {"CRASHKEEP_BUNDLE": b.name, "CRASHKEEP_BUNDLE_DIR": b.dir,
            "CRASHKEEP_META": b.meta_path, "CRASHKEEP_REASON": str(meta.get("reason") or ""),
            "CRASHKEEP_BOARD_NAME": str(meta.get("board") or ""),
            "CRASHKEEP_SEQ": str(meta.get("seq", "")),
            "CRASHKEEP_BOOT_COUNT": str(c.get("boot_count", "")),
            "CRASHKEEP_PANIC_COUNT": str(c.get("panic_count", "")),
            "CRASHKEEP_EXPORT_ATTEMPT": str(attempt), "CRASHKEEP_SUMMARY": line}


# ---------------------------------------------------------------- the spool run

def transports(board):
    out = []
    if board.get("export.syslog"):
        out.append("syslog")
    if board.get("export.command"):
        out.append("command")
    return out


def run(board, bundles, deadline, now=None, cut=None, log=None, root="/"):
    """Hand every bundle (oldest first) not yet accepted by a transport to it, until
    monotonic() passes deadline. Returns a Result; raises nothing a transport did.

    cut(step) is a test hook called with "attempt T" (counter on flash, before
    delivery), "accepted T" (transport T took it, not marked yet) and "marked T"."""
    res = Result()
    want = transports(board)
    if not want:
        return res
    now = time.time() if now is None else now
    conn = None
    conn_err = None
    timeout = board.get("export.timeout")
    todo = []
    for b in bundles:
        need = [t for t in want if not marked(b.dir, t)]
        if need:
            todo.append((b, need))
    try:
        for i, (b, need) in enumerate(todo):
            if monotonic() >= deadline:
                res.left = len(todo) - i
                break
            if b.meta is None:
                for t in need:
                    res.failed.append((b.name, t, "Failed to read '%s'" % b.meta_path))
                continue
            line = summary(b.name, b.meta, b.dir)
            for t in need:
                if t == "syslog":
                    if conn is None and conn_err is None:
                        try:
                            conn = syslog_connect(rooted(root, board.get("export.socket")))
                        except (DeviceError, ImportError, AttributeError) as e:
                            conn_err = str(e)
                    if conn is None:
                        res.failed.append((b.name, t, conn_err))
                        continue
                why = _deliver(t, board, conn, b, line, now, timeout, deadline, cut)
                if why is None:
                    res.sent.append((b.name, t))
                else:
                    res.failed.append((b.name, t, why))
                    if log:
                        log("crashkeep: export: %s via %s: %s; kept for the next run"
                            % (b.name, t, why))
    finally:
        if conn is not None:
            conn[0].close()
    return res


def rooted(root, path):
    if root in ("", "/"):
        return path
    return root.rstrip("/") + "/" + path.lstrip("/")


def _deliver(t, board, conn, b, line, now, timeout, deadline, cut):
    bdir = b.dir
    try:
        attempt = note_attempt(bdir, t)
    except CrashkeepError as e:
        return str(e)          # a flash we cannot write: deliver nothing we cannot mark
    if cut:
        cut("attempt " + t)
    if t == "syslog":
        sev = SEVERITY.get(b.meta.get("reason"), 4)
        import os
        try:
            syslog_send(conn, rfc3164(line, sev, now, os.getpid()))
        except DeviceError as e:
            return str(e)
    else:
        left = int(deadline - monotonic())
        if left < 1:
            return "no time left before the deadline"
        why = run_command(board.get("export.command"), bdir, b.meta_path,
                          command_env(b, attempt, line), min(timeout, left))
        if why is not None:
            return "export.command: " + why
    if cut:
        cut("accepted " + t)
    try:
        mark(bdir, t, now)
    except CrashkeepError as e:
        return "%s (sent; it may be sent again)" % e
    if cut:
        cut("marked " + t)
    return None
