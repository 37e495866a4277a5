"""Pass a core on to the handler core_pattern named before crashkeep's (chaining).

`core install` records the pattern it replaces (STATE_FILE: the pattern, then
`core_pipe_limit=N` and `chain=0|1` lines). With chain=1 the handler, while it
reads the core for its own record, passes every byte it reads on:

- to the previous pipe handler (memfaultd, systemd-coredump, apport), started
  with the arguments the kernel would have given it (its pattern's %
  specifiers expanded from the handler's own arguments and /proc/<pid>), fed
  on stdin, and waited for (bounded) so it still finds /proc/<pid>;
- or into the file the previous file pattern names, as the kernel would have
  written it (O_EXCL, mode 0600, relative to the process's cwd, `.pid` added
  when core_uses_pid says so), capped at core.max_bytes.

Specifiers (fs/coredump.c format_corename): %% %p %P %i %I %u %g %d %s %t %h %e
%f %E %c %C. %d (dump mode) is given as 1 (SUID_DUMP_USER): the handler cannot
see the process's mode. An unknown specifier is dropped, as the kernel does.
"""
from crashkeep.compat import monotonic, path_join, read_text, strerror

CHAIN_SECONDS = 60          # the previous handler gets this long, from the first byte to its exit
UNLIMITED = "18446744073709551615"   # RLIM_INFINITY as %c prints it


def read_record(path):
    """(previous pattern, chain?) from the install record, or (None, False)."""
    try:
        lines = read_text(path).split("\n")
    except OSError:
        return None, False
    chain = False
    for line in lines[1:]:
        if line.startswith("chain="):
            chain = line[6:].strip() == "1"
    return lines[0], chain


def is_ours(pattern):
    return pattern.startswith("|") and "crashkeep" in pattern and " core " in pattern + " "


def _status(proc, pid):
    out = {}
    try:
        for line in read_text(path_join(proc, "%d/status" % pid)).split("\n"):
            if ":" in line:
                k, v = line.split(":", 1)
                out[k] = v.split()
    except OSError:
        pass
    return out


def _esc(s):
    # the kernel turns '/' into '!' in %e, %h (cn_esc_printf) so one name stays one path part
    return s.replace("/", "!")


def values(proc, pid, tid, sig, when, comm, uid):
    """{specifier letter: text} for one crash."""
    import os
    st = _status(proc, pid)
    nspid = st.get("NSpid", [str(pid)])[-1]
    gid = st.get("Gid", ["0"])[0]
    exe = ""
    try:
        exe = os.readlink(path_join(proc, "%d/exe" % pid))
    except OSError:
        pass
    if exe.endswith(" (deleted)"):
        exe = exe[:-10]
    climit = UNLIMITED
    try:
        for line in read_text(path_join(proc, "%d/limits" % pid)).split("\n"):
            if line.startswith("Max core file size"):
                soft = line[26:].split()[0]
                climit = UNLIMITED if soft == "unlimited" else soft
    except (OSError, IndexError):
        pass
    cpu = "0"
    try:
        stat = read_text(path_join(proc, "%d/stat" % pid))
        cpu = stat.rsplit(")", 1)[1].split()[36]
    except (OSError, IndexError):
        pass
    try:
        host = os.uname()[1]
    except (AttributeError, OSError):
        host = "localhost"
    return {"%": "%", "p": nspid, "P": str(pid), "i": str(tid), "I": str(tid),
            "u": str(uid if uid is not None else 0), "g": gid, "d": "1", "s": str(sig),
            "t": str(when), "h": _esc(host), "e": _esc(comm),
            "f": _esc(exe.rsplit("/", 1)[-1] if exe else comm), "E": exe.replace("/", "!"),
            "c": climit, "C": cpu}


def expand(text, vals):
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "%" and i + 1 < len(text):
            out.append(vals.get(text[i + 1], ""))
            i += 2
            continue
        if ch != "%":
            out.append(ch)
        i += 1
    return "".join(out)


def pipe_argv(pattern, vals):
    """The previous pipe handler's argv: split on spaces first, then each word
    expanded (the kernel's order since 5.3, so a value with spaces stays one argument)."""
    return [expand(w, vals) for w in pattern[1:].split()]


def file_path(pattern, vals, proc, pid, uses_pid):
    path = expand(pattern, vals)
    if uses_pid and "%p" not in pattern:
        path += "." + vals["p"]
    if not path.startswith("/"):
        path = path_join(proc, "%d/cwd" % pid, path)
    return path


class Tee:
    """One sink feeding several (the gzip'd copy in core.dir, the chained handler)."""

    def __init__(self, sinks):
        self.sinks = [s for s in sinks if s is not None]

    def __call__(self, chunk):
        for s in self.sinks:
            s(chunk)


class PipeChain:
    """The previous pipe handler as a sink: fed without ever blocking past the deadline."""

    def __init__(self, argv, seconds=CHAIN_SECONDS):
        import os
        import subprocess
        self.argv = argv
        self.deadline = monotonic() + seconds
        self.dead = None
        self.sent = 0
        # the environment the kernel gives a usermode helper
        env = {"HOME": "/", "TERM": "linux", "PATH": "/sbin:/bin:/usr/sbin:/usr/bin"}
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, cwd="/", env=env,
                                  start_new_session=True)
        self.fd = self.p.stdin.fileno()
        os.set_blocking(self.fd, False)

    def __call__(self, chunk):
        import os
        import select
        if self.dead:
            return
        mv = memoryview(chunk)
        off = 0
        while off < len(mv):
            left = self.deadline - monotonic()
            if left <= 0:
                self.dead = "timed out after %d bytes" % self.sent
                return
            if not select.select([], [self.fd], [], min(left, 1.0))[1]:
                continue
            try:
                n = os.write(self.fd, mv[off:off + 65536])
            except BlockingIOError:
                continue
            except OSError as e:
                self.dead = "%s after %d bytes" % (strerror(e), self.sent)
                return
            off += n
            self.sent += n

    def finish(self):
        """Close its stdin, wait for it (bounded); one phrase on how it went."""
        import os
        import signal
        import time
        try:
            self.p.stdin.close()
        except OSError:
            pass
        while self.p.poll() is None and monotonic() < self.deadline:
            time.sleep(0.02)
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except OSError:
                pass
            self.p.wait()
            return "%s killed after %ds" % (self.argv[0], CHAIN_SECONDS)
        how = "exit status %d" % self.p.returncode if self.p.returncode >= 0 else \
            "signal %d" % -self.p.returncode
        if self.dead:
            return "%s stopped reading (%s), %s" % (self.argv[0], self.dead, how)
        return "passed %d bytes to %s, %s" % (self.sent, self.argv[0], how)


class FileChain:
    """The previous file pattern's core file, written as the kernel would, capped."""

    def __init__(self, path, max_bytes):
        import os
        self.path = path
        self.max = max_bytes
        self.size = 0
        self.capped = False
        self.err = None
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        self.fd = os.open(path, flags, 0o600)

    def __call__(self, chunk):
        import os
        if self.fd is None:
            return
        room = self.max - self.size
        if len(chunk) > room:
            chunk = chunk[:room]
            self.capped = True
        mv = memoryview(chunk)
        off = 0
        try:
            while off < len(mv):
                off += os.write(self.fd, mv[off:])
        except OSError as e:
            self.err = strerror(e)
            os.close(self.fd)
            self.fd = None
        self.size += off

    def finish(self):
        import os
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.err:
            return "Failed to write '%s': %s after %d bytes" % (self.path, self.err, self.size)
        return "core written to %s (%d bytes%s)" % (self.path, self.size,
                                                    ", capped at core.max_bytes"
                                                    if self.capped else "")


def start(record_path, proc, pid, tid, sig, when, comm, uid, max_bytes):
    """The chain sink for this crash (or None), and a message when it could not start."""
    prev, chain = read_record(record_path)
    if not chain or not prev or is_ours(prev):
        return None, None
    vals = values(proc, pid, tid, sig, when, comm, uid)
    try:
        if prev.startswith("|"):
            argv = pipe_argv(prev, vals)
            if not argv:
                return None, None
            return PipeChain(argv), None
        try:
            uses_pid = read_text(path_join(proc, "sys/kernel/core_uses_pid")).strip() == "1"
        except OSError:
            uses_pid = False
        path = file_path(prev, vals, proc, pid, uses_pid)
        return FileChain(path, max_bytes), None
    except (OSError, ValueError) as e:
        return None, "Failed to chain to '%s': %s" % (prev, strerror(e) if isinstance(
            e, OSError) else e)
