"""Backtraces of real cores, with gdb (no debug info) as the oracle.

Each test builds a small C program, lets it crash, captures the kernel's core
(core_pattern set to a file pattern for the test, always restored; gdb's
generate-core-file where core_pattern is not writable), then compares the
crashing thread's frames from `crashkeep core analyze --json` with
`gdb -batch -ex bt`: same program counters, and the same function names (gdb
prints ?? where crashkeep has no name).
"""
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import threading

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORE_PATTERN = "/proc/sys/kernel/core_pattern"
_pattern_lock = threading.Lock()

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("gdb") is None,
                                reason="gcc and gdb are installed by tests/setup.sh")

GDB = ["gdb", "-nx", "-batch", "-iex", "set debug-file-directory /nonexistent",
       "-iex", "set debuginfod enabled off", "-ex", "set backtrace past-main on",
       "-ex", "set backtrace limit 64"]

SRC_CHAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
__attribute__((noinline)) int level3(const char *p) { return (int)strlen(p) + 1; }
__attribute__((noinline)) int level2(const char *p) { return level3(p) * 3; }
__attribute__((noinline)) int level1(const char *p) { return level2(p) + 7; }
int main(int argc, char **argv) {
    const char *p = argc > 5 ? argv[1] : (const char *)(long)(argc * 16);
    printf("%d\n", level1(p));
    return 0;
}
"""

SRC_NULL = r"""
#include <stdio.h>
__attribute__((noinline)) void poke(int *p, int v) { *p = v; }
__attribute__((noinline)) void middle(int *p) { poke(p, 42); __asm__ volatile(""); }
int main(int argc, char **argv) { middle(argc > 5 ? &argc : (int *)0); printf("x\n"); return 0; }
"""

SRC_ABORT = r"""
#include <stdlib.h>
void check(int ok) { if (!ok) abort(); }
void work(int n) { check(n > 3); }
int main(int argc, char **argv) { work(argc); return 0; }
"""

SRC_THREAD = r"""
#include <pthread.h>
#include <string.h>
#include <unistd.h>
__attribute__((noinline)) void crash_here(char *p) { memset(p, 1, 64); }
void *worker(void *arg) { usleep(100000); crash_here((char *)arg); return 0; }
void *sleeper(void *arg) { for (;;) pause(); return 0; }
int main(void) {
    pthread_t a, b;
    pthread_create(&b, 0, sleeper, 0);
    pthread_create(&a, 0, worker, (void *)16);
    pthread_join(a, 0);
    return 0;
}
"""

SRC_RECURSE = r"""
#include <stdio.h>
int deep(int n) { volatile char pad[200]; pad[0] = (char)n; return deep(n + 1) + pad[0]; }
int main(void) { printf("%d\n", deep(0)); return 0; }
"""

SRC_LIB = r"""
#include <string.h>
__attribute__((noinline)) int lib_inner(char *dst, const char *src) { memcpy(dst, src, 4096); return dst[7]; }
int lib_entry(char *dst) { return lib_inner(dst, (const char *)dst + 3) + 1; }
"""

SRC_USES_LIB = r"""
#include <stdio.h>
int lib_entry(char *dst);
int main(int argc, char **argv) { printf("%d\n", lib_entry(argc > 5 ? argv[0] : (char *)64)); return 0; }
"""

SRC_SIGHANDLER = r"""
#include <signal.h>
#include <stdio.h>
#include <string.h>
volatile int *target;
__attribute__((noinline)) void in_handler(int sig) { *target = sig; }
void handler(int sig) { in_handler(sig); }
__attribute__((noinline)) int trigger(void) { int r = raise(SIGUSR1); return r + (int)(long)target; }
int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigaction(SIGUSR1, &sa, 0);
    trigger();
    printf("not reached\n");
    return 0;
}
"""


SRC_ALTSTACK = r"""
#include <signal.h>
#include <stdlib.h>
#include <string.h>
volatile int *bad;
__attribute__((noinline)) void again(int sig) { *bad = sig; }      /* crashes inside the handler */
void on_segv(int sig) { again(sig); __asm__ volatile(""); }
__attribute__((noinline)) int first(int *p) { return *p + 1; }     /* the first fault */
__attribute__((noinline)) int outer(int *p) { return first(p) * 2; }
int main(void) {
    stack_t ss;
    struct sigaction sa;
    ss.ss_sp = malloc(1 << 16);
    ss.ss_size = 1 << 16;
    ss.ss_flags = 0;
    sigaltstack(&ss, 0);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_segv;
    sa.sa_flags = SA_ONSTACK;   /* SIGSEGV stays blocked: the second fault kills */
    sigaction(SIGSEGV, &sa, 0);
    return outer((int *)0);
}
"""


def build(tmp, name, src, flags, libs=()):
    c = os.path.join(tmp, name + ".c")
    with open(c, "w") as f:
        f.write(src)
    exe = os.path.join(tmp, name)
    cmd = ["gcc"] + flags + ["-o", exe, c] + list(libs)
    subprocess.run(cmd, check=True, capture_output=True)
    return exe


def _unlimited_core():
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def pattern_writable():
    try:
        with open(CORE_PATTERN) as f:
            old = f.read()
        with open(CORE_PATTERN, "w") as f:
            f.write(old)
        return True
    except OSError:
        return False


class CorePattern:
    """Set /proc/sys/kernel/core_pattern for a block, and always put the old one back."""

    def __init__(self, pattern):
        self.pattern = pattern
        self.old = None

    def __enter__(self):
        _pattern_lock.acquire()
        with open(CORE_PATTERN) as f:
            self.old = f.read().rstrip("\n")
        with open(CORE_PATTERN, "w") as f:
            f.write(self.pattern)
        return self

    def __exit__(self, *exc):
        try:
            with open(CORE_PATTERN, "w") as f:
                f.write(self.old)
        finally:
            _pattern_lock.release()


def capture_core(tmp, exe, args=(), env=None):
    """Run exe until it crashes; return the path of its core (kernel's, else gdb's)."""
    if pattern_writable():
        with CorePattern(os.path.join(tmp, "core.%p")):
            p = subprocess.run([exe] + list(args), preexec_fn=_unlimited_core, cwd=tmp, env=env,
                               capture_output=True, timeout=60)
        assert p.returncode < 0, (p.returncode, p.stdout, p.stderr)
        path = os.path.join(tmp, "core.%d" % _pid_of_core(tmp))
        assert os.path.getsize(path) > 0
        return path
    path = os.path.join(tmp, "gcore")
    subprocess.run(GDB + ["-ex", "run", "-ex", "generate-core-file " + path, "--args", exe]
                   + list(args), check=True, capture_output=True, env=env, timeout=120)
    return path


def _pid_of_core(tmp):
    cores = [n for n in os.listdir(tmp) if n.startswith("core.")]
    assert len(cores) == 1, cores
    return int(cores[0].split(".")[1])


FRAME_RE = re.compile(r"^#(\d+)\s+(?:(0x[0-9a-f]+) in )?(<signal handler called>|\S+)")


def gdb_threads(exe, core):
    """{lwp: [(pc or None, name)]} from `thread apply all bt`, and the crashing lwp."""
    out = subprocess.run(GDB + ["-ex", "thread apply all bt", exe, core], capture_output=True,
                         text=True, timeout=120).stdout
    threads = {}
    cur = None
    order = []
    for line in out.split("\n"):
        m = re.match(r"^Thread \d+ \((?:Thread 0x[0-9a-f]+ )?\(?LWP (\d+)\)?", line)
        if m:
            cur = int(m.group(1))
            threads[cur] = []
            order.append(cur)
            continue
        m = FRAME_RE.match(line)
        if m and cur is not None:
            pc = int(m.group(2), 16) if m.group(2) else None
            name = m.group(3)
            if name.endswith("()"):
                name = name[:-2]
            threads[cur].append((pc, name))
    if not threads:   # a single-threaded core: gdb prints no "Thread" header
        frames = []
        for line in out.split("\n"):
            m = FRAME_RE.match(line)
            if m:
                frames.append((int(m.group(2), 16) if m.group(2) else None, m.group(3)))
        return {None: frames}, None, out
    return threads, order, out


def analyze(core, *extra):
    r = subprocess.run([sys.executable, "-m", "crashkeep", "core", "analyze", "--json", core]
                       + list(extra), capture_output=True, text=True, cwd=ROOT, timeout=120,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def same_function(ours, gdb_name):
    if gdb_name == "<signal handler called>":
        return ours["how"] == "signal"
    if gdb_name == "??":
        return ours["function"] is None
    # exact: where several names label one address, crashkeep picks gdb's (the greatest)
    return ours["function"] == gdb_name


def compare(ours, theirs, context):
    assert theirs, "gdb printed no frames:\n" + context
    n = len(theirs)
    assert len(ours) >= n, (ours, theirs)
    if n < 64:
        assert len(ours) == n, "crashkeep %d frames, gdb %d\n%s\n%s" % (
            len(ours), n, [(f["pc"], f["function"], f["how"]) for f in ours], context)
    for i in range(n):
        pc, name = theirs[i]
        f = ours[i]
        if pc is not None:
            assert int(f["pc"], 16) == pc, (i, f, theirs[i], context)
        assert same_function(f, name), (i, f, theirs[i], context)
        assert f["how"] in ("regs", "cfi", "signal"), (i, f)


def crashed(report):
    t = report["threads"][0]
    assert t["crashed"] and t["tid"] == report["tid"]
    return t["frames"]


def check_against_gdb(exe, core):
    report = analyze(core)
    threads, order, out = gdb_threads(exe, core)
    if order is None:
        compare(crashed(report), threads[None], out)
    else:
        # gdb lists the crashing thread as its current thread; compare every thread
        assert sorted(threads) == sorted(t["tid"] for t in report["threads"]), out
        for t in report["threads"]:
            compare(t["frames"], threads[t["tid"]], out)
    return report


def names(frames):
    return [f["function"] for f in frames]


def test_pie_O2_no_frame_pointer_crash_in_libc(tmp_path):
    exe = build(str(tmp_path), "chain", SRC_CHAIN, ["-O2", "-fomit-frame-pointer", "-fPIE", "-pie"])
    core = capture_core(str(tmp_path), exe)
    r = check_against_gdb(exe, core)
    assert r["signal"] == 11 and r["signal_name"] == "SIGSEGV" and r["fault_addr"] == "0x10"
    fr = crashed(r)
    assert "libc.so" in fr[0]["module"]
    assert names(fr)[1:5] == ["level3", "level2", "level1", "main"]


def test_static_null_store(tmp_path):
    exe = build(str(tmp_path), "null", SRC_NULL, ["-static", "-O1"])
    core = capture_core(str(tmp_path), exe)
    r = check_against_gdb(exe, core)
    assert r["fault_addr"] == "0x0"
    assert names(crashed(r))[:3] == ["poke", "middle", "main"]


def test_O0_abort(tmp_path):
    exe = build(str(tmp_path), "abrt", SRC_ABORT, ["-O0"])
    core = capture_core(str(tmp_path), exe)
    r = check_against_gdb(exe, core)
    assert r["signal"] == 6 and r["fault_addr"] is None
    fr = names(crashed(r))
    i = fr.index("abort")
    assert fr[i + 1:i + 4] == ["check", "work", "main"]


def test_crash_in_non_main_thread(tmp_path):
    exe = build(str(tmp_path), "thr", SRC_THREAD, ["-O2", "-pthread"])
    core = capture_core(str(tmp_path), exe)
    r = check_against_gdb(exe, core)
    assert len(r["threads"]) == 3
    assert r["tid"] != r["pid"]
    fr = names(crashed(r))
    assert "crash_here" in fr and "worker" in fr
    assert sum(1 for t in r["threads"] if t["crashed"]) == 1


def test_stack_overflow_recursion(tmp_path):
    exe = build(str(tmp_path), "deep", SRC_RECURSE, ["-O0"])
    core = capture_core(str(tmp_path), exe)
    r = check_against_gdb(exe, core)
    fr = names(crashed(r))
    assert len(fr) == 64 and fr.count("deep") >= 60


def test_stripped_binary(tmp_path):
    exe = build(str(tmp_path), "strip", SRC_CHAIN, ["-O2", "-fomit-frame-pointer", "-s"])
    core = capture_core(str(tmp_path), exe)
    r = check_against_gdb(exe, core)
    fr = crashed(r)
    # no symbols at all in the program: module+offset, never a made-up name
    prog = [f for f in fr if f["module"] == exe]
    assert len(prog) >= 4 and all(f["function"] is None and f["offset"] for f in prog)


def test_crash_inside_own_shared_library(tmp_path):
    t = str(tmp_path)
    lib = os.path.join(t, "libcrash.so")
    c = os.path.join(t, "lib.c")
    with open(c, "w") as f:
        f.write(SRC_LIB)
    subprocess.run(["gcc", "-O2", "-fomit-frame-pointer", "-shared", "-fPIC", "-o", lib, c],
                   check=True)
    exe = build(t, "uselib", SRC_USES_LIB, ["-O2", "-L" + t, "-Wl,-rpath," + t],
                ["-lcrash"])
    core = capture_core(t, exe)
    r = check_against_gdb(exe, core)
    fr = crashed(r)
    libframes = [f["function"] for f in fr if f["module"] and f["module"].endswith("libcrash.so")]
    assert libframes[:2] == ["lib_inner", "lib_entry"]


def test_crash_inside_signal_handler(tmp_path):
    exe = build(str(tmp_path), "sig", SRC_SIGHANDLER, ["-O2", "-fomit-frame-pointer"])
    core = capture_core(str(tmp_path), exe)
    r = check_against_gdb(exe, core)
    fr = crashed(r)
    hows = [f["how"] for f in fr]
    assert "signal" in hows
    k = hows.index("signal")
    assert names(fr)[:2] == ["in_handler", "handler"] or names(fr)[0] == "in_handler"
    assert "trigger" in names(fr)[k:] and "main" in names(fr)[k:]


def test_debug_files_by_build_id(tmp_path):
    """--search-path finds .build-id/xx/rest.debug: libc's internal names appear (nm is the oracle)."""
    # libc6-dbg (tests/setup.sh) puts libc's symbols under /usr/lib/debug/.build-id
    exe = build(str(tmp_path), "chain", SRC_CHAIN, ["-O2", "-fPIE", "-pie"])
    core = capture_core(str(tmp_path), exe)
    r = analyze(core, "--search-path", "/usr/lib/debug")
    f0 = crashed(r)[0]
    assert f0["function"] and "strlen" in f0["function"], f0
    plain = analyze(core)
    assert crashed(plain)[0]["function"] is None


def test_crash_in_handler_on_alternate_stack(tmp_path):
    """The handler runs on a sigaltstack (heap) and crashes: the interrupted frames
    live on the main stack, reached through the signal frame."""
    exe = build(str(tmp_path), "alt", SRC_ALTSTACK, ["-O2", "-fomit-frame-pointer"])
    core = capture_core(str(tmp_path), exe)
    r = check_against_gdb(exe, core)
    fr = names(crashed(r))
    assert fr[:5] == ["again", "on_segv", None, "first", "outer"], fr
