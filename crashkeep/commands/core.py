"""`crashkeep core`: the core_pattern pipe handler, its installer and the offline analyzer.

The kernel runs `crashkeep core [options] -- %P %i %s %t %e %u` with the core on
stdin. The handler reads /proc/<pid> while the process is still there, reads
the core in one pass (notes and stacks only), unwinds every thread, writes a
tombstone-style record `core-<comm>-<pid>` to the phram keep area, then drains
the rest of the core within a time bound so the crashing process can exit.
Imports stay light: this runs on every crash and never imports typer.
"""
import sys
import time

from crashkeep.formats import elfcore, unwind
from crashkeep.ops import corechain
from crashkeep import limits
from crashkeep import compat
from crashkeep.compat import basename, monotonic, path_join, read_text, strerror
from crashkeep.commands.spec import BOARD, DEVICE, Command, Param
from crashkeep.system import locate
from crashkeep.errors import ConfigError, CrashkeepError, DeviceError, FormatError

STATE_FILE = "run/crashkeep/core_pattern.prev"   # under --root: the pattern before install
DRAIN_SECONDS = 30          # after this the handler stops reading; the kernel ends the dump
MAPS_LINES_MAX = 64         # lines of the maps summary in a record
REPORT_BYTES_MAX = 64 << 10  # a record's payload is cut (keeping the head) past this
SAVE_SLACK = 1 << 20        # kept free in core.dir beyond core.max_bytes
PIPE_LIMIT = 16             # kernel.core_pipe_limit set by install when it was 0
CORE_PATTERN_MAX = 127      # CORENAME_MAX_SIZE - 1 (fs/coredump.c)
ARGS = "%P %i %s %t %e %u"

SIGNALS = {1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT",
           7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2",
           13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 24: "SIGXCPU", 25: "SIGXFSZ",
           31: "SIGSYS"}
# include/uapi/asm-generic/siginfo.h
CODES = {("any", 0): "SI_USER", ("any", 0x80): "SI_KERNEL", ("any", -1): "SI_QUEUE",
         ("any", -6): "SI_TKILL", (11, 1): "SEGV_MAPERR", (11, 2): "SEGV_ACCERR",
         (11, 3): "SEGV_BNDERR", (11, 4): "SEGV_PKUERR", (7, 1): "BUS_ADRALN",
         (7, 2): "BUS_ADRERR", (7, 3): "BUS_OBJERR", (4, 1): "ILL_ILLOPC", (4, 2): "ILL_ILLOPN",
         (4, 5): "ILL_PRVOPC", (8, 1): "FPE_INTDIV", (8, 3): "FPE_FLTDIV", (5, 1): "TRAP_BRKPT"}
FAULT_SIGNALS = (4, 5, 7, 8, 11)


def signal_name(sig):
    return SIGNALS.get(sig, "signal %d" % sig)


def code_name(sig, code):
    if code in (0, 0x80, -1, -6):
        return CODES[("any", code)]
    return CODES.get((sig, code), str(code))


def parse_maps(text):
    """[(start, end, offset, perms, path)] from /proc/<pid>/maps text."""
    out = []
    for line in text.split("\n"):
        parts = line.split(None, 5)
        if len(parts) < 5:
            continue
        try:
            a, b = parts[0].split("-")
            out.append((int(a, 16), int(b, 16), int(parts[2], 16), parts[1],
                        parts[5].strip() if len(parts) > 5 else ""))
        except ValueError:
            continue
        if len(out) >= limits.CORE_FILES_MAX:
            break
    return out


def proc_info(proc, pid):
    """What /proc/<pid> tells while the dump runs; missing pieces stay empty."""
    d = path_join(proc, str(pid))
    info = {"cmdline": "", "maps": [], "uid": None, "name": "", "exe": ""}
    try:
        raw = open(d + "/cmdline", "rb").read(4096)
        info["cmdline"] = " ".join(a.decode("utf-8", "replace") for a in raw.split(b"\0") if a)
    except OSError:
        pass
    try:
        for line in read_text(d + "/status", 16384).split("\n"):
            if line.startswith("Uid:"):
                info["uid"] = int(line.split()[1])
            elif line.startswith("Name:"):
                info["name"] = line.split(None, 1)[1].strip() if " " in line or "\t" in line else ""
    except (OSError, ValueError, IndexError):
        pass
    try:
        info["maps"] = parse_maps(read_text(d + "/maps", 4 << 20))
    except OSError:
        pass
    try:
        import os
        info["exe"] = os.readlink(d + "/exe")
    except (OSError, AttributeError, ImportError):
        pass
    return info


def core_maps(core):
    """Maps from the core itself: NT_FILE, plus the vDSO from the aux vector."""
    maps = []
    for m in core.files:
        seg = core.segment_at(m.start)
        perms = "r-xp" if seg is not None and seg.p_flags & elfcore.PF_X else "r--p"
        if seg is not None and seg.p_flags & elfcore.PF_W:
            perms = "rw-p"
        maps.append((m.start, m.end, m.offset, perms, m.name))
    v = core.aux(elfcore.AT_SYSINFO_EHDR)
    if v:
        seg = core.segment_at(v)
        end = seg.p_vaddr + seg.p_memsz if seg is not None else v + limits.PAGE_SIZE
        maps.append((v, end, 0, "r-xp", "[vdso]"))
    return maps


def exec_ranges(maps):
    return [(s, e) for s, e, _o, perms, _p in maps if "x" in perms]


def modules_for(maps, map_files=None):
    return unwind.modules_from_maps([(s, e, o, p) for s, e, o, _perm, p in maps], map_files)


def backtraces(core, maps, search=(), exe_path=None, strict=False, mods=None):
    """[(Thread, [Frame])], crashing thread first.

    A thread whose unwinding fails keeps the frame from its registers: the
    record matters more than the backtrace (strict=True lets errors out: the fuzzer).
    """
    if mods is None:
        mods = modules_for(maps)
    if core.arch is None or not core.threads:
        unwind.close_modules(mods)
        return []
    exe_mod = None
    entry = core.aux(elfcore.AT_ENTRY)
    if entry is not None:
        for m in mods:
            if m.holds(entry):
                exe_mod = m
    try:
        unwind.open_modules(core, mods, search, exe_path, exe_mod)
        ranges = exec_ranges(maps) or None
        u = unwind.Unwinder(core, mods, ranges)
        out = []
        for t in core.threads:
            try:
                frames = u.unwind(t)
            except FormatError:
                frames = [unwind.Frame(t.regs.get(core.arch.pc, 0), "regs")]
            except Exception:
                if strict:
                    raise
                frames = [unwind.Frame(t.regs.get(core.arch.pc, 0), "regs")]
            out.append((t, frames))
        unwind.symbolize([f for _t, f in out], mods)
        return out
    finally:
        unwind.close_modules(mods)


def maps_summary(maps):
    """One line per mapped file (its whole span) and per special mapping, address order."""
    spans = []
    by = {}
    for s, e, _o, perms, p in maps:
        key = p or "[anon]"
        if key == "[anon]":
            continue
        cur = by.get(key)
        if cur is None:
            cur = [s, e, set()]
            by[key] = cur
            spans.append(key)
        cur[0] = min(cur[0], s)
        cur[1] = max(cur[1], e)
        for ch in perms[:3]:
            if ch != "-":
                cur[2].add(ch)
    lines = []
    for key in sorted(spans, key=lambda k: by[k][0]):
        s, e, pset = by[key]
        perms = "".join(ch if ch in pset else "-" for ch in "rwx")
        lines.append("%x-%x %s %s" % (s, e, perms, key))
        if len(lines) >= MAPS_LINES_MAX:
            lines.append("...")
            break
    return lines


def build_report(core, maps, traces, pid=None, tid=None, uid=None, exe=None, cmdline=None,
                 when=None, firmware="", comm=None, sig=None, log=None, error=None):
    r = {"signal": 0, "signal_name": "", "code": None, "code_name": None, "fault_addr": None,
         "pid": pid or 0, "tid": tid or 0, "uid": uid, "comm": comm or "", "exe": exe or "",
         "cmdline": cmdline or "", "time": when, "firmware": firmware, "registers": {},
         "threads": [], "maps": maps_summary(maps), "log": log, "error": error}
    if core is not None:
        r["signal"] = core.signal
        if core.siginfo:
            r["code"] = core.siginfo["code"]
            r["code_name"] = code_name(core.siginfo["signo"], core.siginfo["code"])
            if core.siginfo["signo"] in FAULT_SIGNALS and core.siginfo["addr"] is not None:
                r["fault_addr"] = "0x%x" % core.siginfo["addr"]
        ps = core.psinfo or {}
        r["pid"] = r["pid"] or ps.get("pid") or core.pid
        if r["uid"] is None:
            r["uid"] = ps.get("uid")
        r["comm"] = r["comm"] or ps.get("fname", "")
        r["cmdline"] = r["cmdline"] or ps.get("psargs", "").strip()
        if core.threads:
            r["tid"] = r["tid"] or core.threads[0].tid
            t0 = core.threads[0]
            if core.arch is not None:
                for name in core.arch.reg_names:
                    r["registers"][name] = "0x%x" % t0.regs[name]
    if not r["signal"] and sig:
        r["signal"] = sig
    r["signal_name"] = signal_name(r["signal"])
    crashed_tid = r["tid"]
    if not any(t.tid == crashed_tid for t, _f in traces):
        # %i is the tid in the initial pid namespace, the notes hold the process's own
        # (a container): the kernel writes the crashing thread first either way
        crashed_tid = traces[0][0].tid if traces else None
    ordered = sorted(traces, key=lambda tf: 0 if tf[0].tid == crashed_tid else 1)
    for t, frames in ordered:
        r["threads"].append({"tid": t.tid, "crashed": t.tid == crashed_tid,
                             "frames": [f.as_dict() for f in frames]})
    return r


def _frame_text(i, f):
    mod = basename(f["module"]) if f["module"] else None
    if f["how"] == "signal":
        where = "<signal handler called>"
    elif f["function"]:
        where = f["function"]
    else:
        where = "??"
    loc = ""
    if mod:
        loc = " (%s+%s)" % (mod, f["offset"]) if f["offset"] else " (%s)" % mod
    mark = "" if f["how"] in ("regs", "cfi", "signal") else " [%s]" % f["how"]
    return "  #%-2d %s in %s%s%s" % (i, f["pc"], where, loc, mark)


def render_text(r):
    lines = ["crashkeep core report"]
    if r.get("time"):
        t = time.gmtime(r["time"])
        lines.append("time: %04d-%02d-%02d %02d:%02d:%02d UTC (%d)" % (t[0], t[1], t[2], t[3], t[4],
                                                                     t[5], r["time"]))
    if r.get("firmware"):
        lines.append("firmware: %s" % r["firmware"])
    lines.append("process: pid %s tid %s uid %s comm %s" % (r["pid"], r["tid"], r["uid"], r["comm"]))
    lines.append("exe: %s" % r["exe"])
    lines.append("cmdline: %s" % r["cmdline"])
    sig = "signal: %d (%s)" % (r["signal"], r["signal_name"])
    if r["code"] is not None:
        sig += " code %d (%s)" % (r["code"], r["code_name"])
    if r["fault_addr"]:
        sig += " fault addr %s" % r["fault_addr"]
    lines.append(sig)
    if r.get("error"):
        lines.append("error: %s" % r["error"])
    if r["registers"]:
        lines.append("registers (thread %s):" % r["tid"])
        row = []
        for k in r["registers"]:
            # padded by hand, not "%8s": Cython's % formatting of str left-justified
            # it in the static binary (and MicroPython's str has no rjust)
            v = r["registers"][k]
            row.append(" " * (8 - len(k)) + k + " " + " " * (18 - len(v)) + v)
            if len(row) == 3:
                lines.append(" ".join(row))
                row = []
        if row:
            lines.append(" ".join(row))
    for t in r["threads"]:
        lines.append("backtrace thread %d%s:" % (t["tid"], " (crashed)" if t["crashed"] else ""))
        for i, f in enumerate(t["frames"]):
            lines.append(_frame_text(i, f))
    if r["maps"]:
        lines.append("maps:")
        lines += ["  " + m for m in r["maps"]]
    if r.get("log"):
        lines.append("log %s (last %d bytes):" % (r["log"]["path"], len(r["log"]["tail"])))
        lines.append(r["log"]["tail"].rstrip("\n"))
    return "\n".join(lines) + "\n"


def log_tail(board):
    if board is None or not board.get("core.log"):
        return None
    path = board.get("core.log")
    n = board.get("core.log_bytes")
    try:
        with open(path, "rb") as f:
            try:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(0, size - n))
            except OSError:
                pass
            data = f.read(n)
    except OSError as e:
        return {"path": path, "tail": "(Failed to read '%s': %s)" % (path, strerror(e))}
    return {"path": path, "tail": data.decode("utf-8", "replace")}


def record_name(comm, pid):
    safe = "".join(ch if (ch.isalpha() or ch.isdigit() or ch in "-_.+@") and ord(ch) < 128
                   else "_" for ch in comm)[:40] or "unknown"
    return "core-%s-%d" % (safe, pid)


def kmsg(text):
    """A line for the kernel log: the only place a pipe handler's words are seen."""
    compat.kmsg("crashkeep: " + text)


class RateLimited(CrashkeepError):
    pass


def store(area_path, name, payload, source, rate=0, now=None):
    """Put the record; on no space, drop the oldest core-* records, then cut the payload.

    rate > 0: at most that many core records per hour. The keep area itself is
    the persistent memory of the limit (its records carry their wall time), so
    a crash loop cannot wear the flash it is salvaged to, nor push out the
    first crash, which is usually the one that explains the rest.
    """
    from crashkeep.system import keeparea
    from crashkeep.formats.phramrec import FLAG_CORE
    from crashkeep.errors import NoSpaceError
    area = keeparea.open_area(area_path)
    try:
        if rate > 0:
            now = int(time.time()) if now is None else now
            recent = [i for i in area.list() if i.name.startswith("core-")
                      and 0 <= now - i.wall_time < 3600]
            if len(recent) >= rate:
                raise RateLimited("%d core records in the last hour (core.rate = %d)"
                                  % (len(recent), rate))
        try:
            return area.put(name, payload, source=source, flags=FLAG_CORE)
        except NoSpaceError:
            pass
        olds = sorted((i for i in area.list() if i.name.startswith("core-") and i.name != name),
                      key=lambda i: i.seq)
        for old in olds:
            area.remove(old.name)
            try:
                return area.put(name, payload, source=source, flags=FLAG_CORE)
            except NoSpaceError:
                continue
        room = area.max_payload(name, source, rewrite=False)   # written once, never rewritten
        if room <= 0:
            raise NoSpaceError("Failed to save '%s' to '%s': the keep area is full"
                               % (name, area_path))
        return area.put(name, payload[:room], source=source, orig_size=len(payload),
                        flags=FLAG_CORE)
    finally:
        area.close()


class CoreSaver:
    """The core itself, gzip-compressed as it streams by, into core.dir.

    Written to a temp name and renamed (after fsync) only once the whole core
    went through; dropped when it grows past core.max_bytes compressed, when
    the directory has less than that free, or on MicroPython (no zlib).
    """

    def __init__(self, d, name, max_bytes, max_files=None):
        import os
        import zlib
        self.dir = d.rstrip("/") or "/"
        self.max_files = max_files
        self.pruned = []
        self.path = "%s/%s.gz" % (d.rstrip("/"), name)
        self.tmp = "%s/.tmp-%s.gz" % (d.rstrip("/"), name)
        self.max = max_bytes
        self.size = 0
        self.dead = None
        st = os.statvfs(d)
        free = st[4] * st[1]
        if free < max_bytes + SAVE_SLACK:
            raise DeviceError("Failed to save the core to '%s': %d bytes free, core.max_bytes "
                              "is %d" % (d, free, max_bytes))
        self.z = zlib.compressobj(1, zlib.DEFLATED, 31)
        self.f = open(self.tmp, "wb")

    def __call__(self, chunk):
        if self.dead:
            return
        out = self.z.compress(chunk)
        self._out(out)

    def _out(self, out):
        if self.size + len(out) > self.max:
            self.abandon("larger than core.max_bytes (%d) compressed" % self.max)
            return
        self.f.write(out)
        self.size += len(out)

    def abandon(self, why):
        import os
        self.dead = why
        try:
            self.f.close()
            os.remove(self.tmp)
        except OSError:
            pass

    def finish(self, complete):
        import os
        from crashkeep.compat import fsync_file, fsync_dir
        if self.dead:
            return None
        if not complete:
            self.abandon("the core was not read to its end")
            return None
        self._out(self.z.flush())
        if self.dead:
            return None
        try:
            fsync_file(self.f)
            self.f.close()
            os.rename(self.tmp, self.path)
            fsync_dir(self.path.rsplit("/", 1)[0])
        except OSError as e:
            self.abandon(strerror(e))
            return None
        self.prune()
        return self.path

    def prune(self):
        """Keep the newest core.max_files cores: only after this one is committed,
        oldest first (by mtime, then name), never the one just written."""
        import os
        if not self.max_files:
            return
        cores = []
        try:
            names = os.listdir(self.dir)
        except OSError:
            return
        for n in names:
            if not n.endswith(".gz") or n.startswith("."):
                continue
            p = self.dir + "/" + n
            try:
                cores.append((os.stat(p)[8], n, p))
            except OSError:
                continue
        cores.sort()
        extra = len(cores) - self.max_files
        for _mtime, _n, p in cores:
            if extra <= 0:
                break
            if p == self.path:
                continue
            try:
                os.remove(p)
                self.pruned.append(p)
            except OSError:
                pass
            extra -= 1


def core_saver(board, name):
    """A CoreSaver when the board asks for saved cores and it can be done, else None."""
    if board is None or not board.get("core.dir"):
        return None
    d = board.get("core.dir")
    try:
        compat.makedirs(d)
        return CoreSaver(d, name, board.get("core.max_bytes"), board.get("core.max_files"))
    except ImportError:
        kmsg("not saving the core: no zlib here, ignoring")
    except (CrashkeepError, OSError) as e:
        kmsg("%s, ignoring" % (e,))
    return None


class MoreMemory:
    """While the core streams by: after the crashing thread's stack is in, unwind it
    once; if that stops on memory still ahead in the stream (the interrupted stack
    behind a signal frame on an alternate stack), ask for a window there."""

    def __init__(self, maps, mods):
        self.maps = maps
        self.mods = mods
        self.asked = []

    def __call__(self, core, va, size):
        a = core.arch
        if a is None or not core.threads:
            return ()
        sp = core.threads[0].regs.get(a.sp, 0)
        # only when the range just read is the crashing stack or one asked for:
        # an unwind per header page would cost more than it could find
        if not (va <= sp < va + size or any(va <= x < va + size for x in self.asked)):
            return ()
        maps = self.maps or core_maps(core)
        if self.mods is None:
            self.mods = modules_for(maps)
        try:
            unwind.open_modules(core, self.mods)
            u = unwind.Unwinder(core, self.mods, exec_ranges(maps) or None)
            u.unwind(core.threads[0])
        except Exception:  # only a hint: the real unwind comes later
            return ()
        if u.missing is None or u.missing in self.asked:
            return ()
        self.asked.append(u.missing)
        want = []
        elfcore._range(core, u.missing - a.red_zone, limits.CORE_STACK_THREAD, want)
        return want


def _stdin():
    try:
        return open(0, "rb", buffering=0, closefd=False)
    except (TypeError, ValueError, OSError):
        return sys.stdin.buffer


def drain_bounded(stream, seconds=DRAIN_SECONDS):
    """Drain the rest of the core, giving up after `seconds` (the kernel then ends the dump)."""
    t0 = monotonic()
    total = 0
    while True:
        n = stream.drain(64 << 20)
        total += n
        if stream.eof or monotonic() - t0 > seconds:
            return total


def handle(opts):
    args = opts.args
    if len(args) < 5:
        raise ConfigError("core: expected %s from core_pattern, got %d argument(s)"
                          % (ARGS, len(args)))
    try:
        pid = int(args[0])
        tid = int(args[1])
        sig = int(args[2])
        when = int(args[3])
    except ValueError:
        raise ConfigError("core: %%P %%i %%s %%t must be numbers, got %r" % (args[:4],))
    comm = args[4]
    uid = None
    if len(args) > 5:
        try:
            uid = int(args[5])
        except ValueError:
            pass
    info = proc_info(opts.proc, pid)
    board = None
    berr = None
    try:
        board = locate.find_board(opts.board, required=False)
    except CrashkeepError as e:
        berr = str(e)
    from crashkeep.system import keeparea
    firmware = keeparea.firmware_version(board)
    inp = _stdin()
    core = None
    error = berr
    traces = []
    maps = info["maps"]
    name = record_name(comm, pid)
    saver = core_saver(board, name)
    chain = _chain(opts, pid, tid, sig, when, comm, uid, board)
    sink = corechain.Tee([saver, chain]) if chain is not None else saver
    mods = None
    if maps:
        # before the core: once it is read the kernel may reap the process, and
        # /proc/<pid>/map_files (files deleted since they were mapped) goes with it
        mods = modules_for(maps, path_join(opts.proc, "%d/map_files" % pid))
        unwind.preopen(mods)
    more = MoreMemory(maps, mods)
    try:
        core = elfcore.read_core(inp, sink=sink, more=more)
        mods = more.mods
        if not maps:
            maps = core_maps(core)
        traces = backtraces(core, maps, mods=mods)
    except FormatError as e:
        error = "Failed to read the core: %s" % (e,)
    except Exception as e:  # a bug here must not cost the record: keep what /proc told
        error = "Failed to read the core: %s: %s" % (type(e).__name__, e)
    if more.mods is not None:
        unwind.close_modules(more.mods)
    r = build_report(core, maps, traces, pid=pid, tid=tid, uid=info["uid"] if uid is None else uid,
                     exe=info["exe"], cmdline=info["cmdline"], when=when, firmware=firmware,
                     comm=comm, sig=sig, log=log_tail(board), error=error)
    payload = render_text(r).encode("utf-8", "replace")
    if len(payload) > REPORT_BYTES_MAX:
        payload = payload[:REPORT_BYTES_MAX]
    rc = 0
    kept = False
    try:
        dev = locate.device(board, opts.device)
        store(dev, name, payload, info["exe"] or comm,
              rate=board.get("core.rate") if board is not None else 0)
        kept = True
        kmsg("%s: %s in %s, record %s" % (comm, r["signal_name"], _top(r), name))
    except RateLimited as e:
        kmsg("Not keeping the crash of %s[%d]: %s, ignoring" % (comm, pid, e))
    except (CrashkeepError, OSError) as e:
        kmsg("Failed to keep the crash of %s[%d]: %s" % (comm, pid, e))
        rc = 1
    stream = core.stream if core is not None else elfcore.Stream(inp)
    if core is None:
        stream.sink = sink
    drain_bounded(stream)
    if chain is not None:
        kmsg("%s[%d]: %s" % (comm, pid, chain.finish()))
    if saver is not None:
        path = saver.finish(stream.eof)
        if path:
            kmsg("%s[%d]: core saved to %s (%d bytes%s)"
                 % (comm, pid, path, saver.size,
                    "; removed %d old core(s), core.max_files" % len(saver.pruned)
                    if saver.pruned else ""))
        else:
            kmsg("%s[%d]: core not saved: %s, ignoring" % (comm, pid, saver.dead))
    if board is not None and wants_reboot(board, comm, info["exe"]):
        reboot(comm, pid, kept)
    return rc


def _chain(opts, pid, tid, sig, when, comm, uid, board):
    """The handler core_pattern named before ours, when install chained to it."""
    max_bytes = board.get("core.max_bytes") if board is not None else 16 << 20
    chain, err = corechain.start(path_join(opts.root, STATE_FILE), opts.proc, pid, tid, sig,
                                 when, comm, uid, max_bytes)
    if err:
        kmsg("%s[%d]: %s, ignoring" % (comm, pid, err))
    return chain


def wants_reboot(board, comm, exe):
    names = [n.strip() for n in (board.get("core.reboot_on") or "").split(",") if n.strip()]
    return comm in names or (exe and basename(exe) in names)


def reboot(comm, pid, kept):
    """The board is useless without this process: reboot now, like a watchdog would.

    Only after the record is in the keep area (phram survives the warm reboot)
    and the dump is drained; sync first, then `reboot -f` (init may be the thing
    that is broken)."""
    import os
    kmsg("%s[%d] is in core.reboot_on: rebooting%s" % (comm, pid, "" if kept else
                                                        " (its record was not kept)"))
    if hasattr(os, "sync"):
        os.sync()
    os.system("sync; reboot -f")


def _top(r):
    for t in r["threads"]:
        if t["crashed"] and t["frames"]:
            f = t["frames"][0]
            return f["function"] or ((basename(f["module"]) + "+" + f["offset"])
                                     if f["module"] else f["pc"])
    return "?"


def analyze(opts):
    import os
    from crashkeep.system.mtd import open_checked
    if opts.exe:
        # the report names the exe it was given: it has to be the one used
        try:
            open_checked(opts.exe, chardev="none").close()
        except OSError as e:
            raise DeviceError("Failed to open '%s': %s" % (opts.exe, strerror(e)))
    try:
        f = open_checked(opts.core, chardev="none")
    except OSError as e:
        raise DeviceError("Failed to open '%s': %s" % (opts.core, strerror(e)))
    try:
        try:
            core = elfcore.read_core(f, seekable=True)
            maps = core_maps(core)
            traces = backtraces(core, maps, opts.search_path or (), opts.exe)
        except FormatError as e:
            raise FormatError("Failed to read core '%s': %s" % (opts.core, e))
        except (OverflowError, ValueError):
            # e_phoff or a PT_LOAD p_offset past what lseek takes (>= 2^63)
            raise FormatError("Failed to read core '%s': an offset past 2^63" % opts.core)
        exe = opts.exe or ""
        if not exe:
            entry = core.aux(elfcore.AT_ENTRY)
            for s, e, _o, _p, path in maps:
                if entry is not None and s <= entry < e:
                    exe = path
        when = None
        try:
            when = int(os.stat(opts.core)[8])
        except (OSError, IndexError):
            pass
        r = build_report(core, maps, traces, exe=exe, when=when)
    finally:
        f.close()
    if opts.json:
        import json
        sys.stdout.write(json.dumps(r, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(r))
    return 0


def pattern_for(opts):
    exe = opts.exe
    if exe:
        words = [exe]
    elif sys.executable and basename(sys.executable).startswith("python"):
        words = [sys.executable, "-m", "crashkeep"]
    else:
        # the static binary: its sys.executable is empty, /proc/self/exe names it
        try:
            import os
            words = [os.readlink("/proc/self/exe")]
        except (OSError, AttributeError, ImportError):
            words = ["/bin/crashkeep"]
    words += ["core", "handle"]
    if opts.board:
        words += ["--board", opts.board]
    if opts.device:
        words += ["--device", opts.device]
    p = "|" + " ".join(words) + " -- " + ARGS
    if len(p) > CORE_PATTERN_MAX:
        raise ConfigError("core pattern is %d characters, the kernel takes %d: %s"
                          % (len(p), CORE_PATTERN_MAX, p))
    return p


def install(opts):
    cp = path_join(opts.root, "proc/sys/kernel/core_pattern")
    lim = path_join(opts.root, "proc/sys/kernel/core_pipe_limit")
    try:
        cur = read_text(cp).rstrip("\n")
    except OSError as e:
        raise DeviceError("Failed to read '%s': %s" % (cp, strerror(e)))
    try:
        cur_lim = read_text(lim).strip()
    except OSError:
        cur_lim = None
    if opts.chain and opts.no_chain:
        raise ConfigError("core install: --chain or --no-chain, not both")
    pat = pattern_for(opts)
    state = path_join(opts.root, STATE_FILE)
    prev, chain = corechain.read_record(state)
    if not corechain.is_ours(cur):
        prev, lim_line = cur, cur_lim
        # a pipe handler (memfaultd, systemd-coredump, apport) keeps getting its cores
        chain = opts.chain or (not opts.no_chain and cur.startswith("|"))
    elif prev is not None and (opts.chain or opts.no_chain):
        lim_line = None
        for line in read_text(state).split("\n")[1:]:
            if line.startswith("core_pipe_limit="):
                lim_line = line.split("=", 1)[1]
        chain = bool(opts.chain)
    else:
        prev = None         # installed already: the record (if any) stays as it is
    if prev is not None:
        compat.makedirs(state.rsplit("/", 1)[0])
        try:
            with open(state, "w") as f:
                f.write(prev + "\n")
                if lim_line is not None:
                    f.write("core_pipe_limit=%s\n" % lim_line)
                f.write("chain=%d\n" % (1 if chain else 0))
        except OSError as e:
            raise DeviceError("Failed to write '%s': %s" % (state, strerror(e)))
    # With core_pipe_limit 0 the kernel reaps the process as soon as the core is in the
    # pipe: /proc/<pid> may vanish under the handler and the record may land after the
    # process is gone. A limit makes it wait for the handler (systemd uses 16 too).
    if cur_lim == "0":
        _write(lim, str(PIPE_LIMIT))
    _write(cp, pat)
    sys.stdout.write("core_pattern: %s\n" % pat)
    prev, chain = corechain.read_record(state)
    if chain and prev:
        sys.stdout.write("chained to: %s\n" % prev)
    return 0


def uninstall(opts):
    cp = path_join(opts.root, "proc/sys/kernel/core_pattern")
    state = path_join(opts.root, STATE_FILE)
    try:
        lines = read_text(state).split("\n")
    except OSError:
        lines = ["core"]    # the kernel's default
    prev = lines[0]
    for line in lines[1:]:
        if line.startswith("core_pipe_limit="):
            _write(path_join(opts.root, "proc/sys/kernel/core_pipe_limit"),
                   line.split("=", 1)[1])
    _write(cp, prev)
    try:
        import os
        os.remove(state)
    except OSError:
        pass
    sys.stdout.write("core_pattern: %s\n" % prev)
    return 0


def _write(path, text):
    try:
        with open(path, "w") as f:
            f.write(text + "\n")
    except OSError as e:
        raise DeviceError("Failed to write '%s': %s" % (path, strerror(e)))



HANDLE_PARAMS = [Param("args", positional=True, multiple=True), BOARD, DEVICE,
                 Param("proc", default="/proc", help="Root of /proc (for tests)."),
                 Param("root", default="/", help="Root of /run, where install's record is "
                       "(for tests).")]

COMMANDS = [
    Command("core handle", "Core-dump pipe handler: crashkeep core handle -- %s" % ARGS,
            HANDLE_PARAMS, handle, fast=True),
    # core_patterns installed by earlier versions say `core -- ...`: the kernel
    # keeps running them until someone reinstalls, so the bare word stays the handler
    Command("core", "Core-dump pipe handler, the same as `core handle` (the form of "
            "earlier core_patterns).", HANDLE_PARAMS, handle, fast=True),
    Command("core install", "Install crashkeep as the kernel core_pattern handler. Chains by "
            "default when a pipe handler was installed before: each core still goes to it.",
            [BOARD, DEVICE, Param("exe", help="Handler command (default: this program)."),
             Param("chain", kind="flag", help="Pass each core on to the previous handler "
                   "(the default for a pipe); with a file pattern, write the core there, "
                   "capped at core.max_bytes."),
             Param("no-chain", kind="flag", help="Do not pass cores on."),
             Param("root", default="/", help="Root of /proc and /run (for tests).")],
            install, fast=True),
    Command("core uninstall", "Restore the previous core_pattern.",
            [Param("root", default="/", help="Root of /proc and /run (for tests).")],
            uninstall, fast=True),
    Command("core analyze", "Print the crash report of a core file.",
            [Param("core", positional=True, required=True),
             Param("exe", help="The crashed program's executable."),
             Param("search-path", multiple=True, help="Directory to look for mapped files and "
                   "build-id debug files (repeatable)."),
             Param("json", kind="flag", help="Print JSON.")], analyze, fast=True),
]
