"""Benchmark the core handler on a 256 MiB core of a 10-thread process.

    python3 tests/bench/bench_core.py [--mib 256] [--runs 3]

Prints, for the same core stream:
  * `cat core | cat > /dev/null` (the floor: moving the bytes through a pipe),
  * `cat core | crashkeep core ...` (compiled drain, and pure Python), with
    throughput, wall time and the handler's peak RSS (wait4),
  * the real thing: the kernel piping the crash to `|crashkeep core` vs to `|cat`
    (time from the crash until the process is gone),
  * the backtrace work alone (notes, stacks, unwinding every thread, symbols).
Goals from the issue: >= 500 MB/s, <= 32 MB RSS, backtrace <= 200 ms.
Needs root (core_pattern) and gcc.
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
PY = os.path.realpath(sys.executable)
CORE_PATTERN = "/proc/sys/kernel/core_pattern"

SRC = r"""
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define THREADS 10
static pthread_barrier_t ready;
__attribute__((noinline)) static void crash_now(volatile int *p) { *p = 1; }
__attribute__((noinline)) static void work(int i) {
    pthread_barrier_wait(&ready);
    if (i == 3) { usleep(200000); crash_now((int *)0); }
    for (;;) pause();
}
static void *thread_main(void *arg) { work((int)(long)arg); return 0; }
int main(int argc, char **argv) {
    size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 256;
    char *heap = malloc(mib << 20);
    for (size_t i = 0; i < (mib << 20); i += 4096) heap[i] = (char)(i >> 12) | 1;
    pthread_t t[THREADS];
    pthread_barrier_init(&ready, 0, THREADS);
    for (long i = 1; i < THREADS; i++) pthread_create(&t[i], 0, thread_main, (void *)i);
    work(0);
    return heap[0];
}
"""


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


def set_pattern(p):
    with open(CORE_PATTERN, "w") as f:
        f.write(p)


def unlimited():
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def crash(exe, mib, cwd):
    t0 = time.monotonic()
    p = subprocess.Popen([exe, str(mib)], preexec_fn=unlimited, cwd=cwd)
    _, status = os.waitpid(p.pid, 0)
    p.returncode = 0
    return time.monotonic() - t0, status, p.pid


def best(fn, runs):
    out = [fn() for _ in range(runs)]
    return min(out, key=lambda r: r[0])


def pipe_cat(core):
    t0 = time.monotonic()
    subprocess.run("cat %s | cat > /dev/null" % core, shell=True, check=True)
    return (time.monotonic() - t0, 0)


def pipe_handler(core, tmp, pid, pure):
    img = os.path.join(tmp, "keep.img")
    with open(img, "wb") as f:
        f.truncate(512 << 10)
    env = dict(os.environ, PYTHONPATH=ROOT)
    if pure:
        env["CRASHKEEP_PUREPYTHON"] = "1"
    t0 = time.monotonic()
    cat = subprocess.Popen(["cat", core], stdout=subprocess.PIPE)
    h = subprocess.Popen([PY, "-m", "crashkeep", "core", "--device", img, "--proc",
                          os.path.join(tmp, "proc"), "--", str(pid), str(pid), "11",
                          str(int(time.time())), "bigcore"], stdin=cat.stdout, env=env)
    cat.stdout.close()
    _, status, ru = os.wait4(h.pid, 0)
    h.returncode = 0
    cat.wait()
    dt = time.monotonic() - t0
    assert status == 0, status
    return (dt, ru.ru_maxrss)


def in_process(core, impl):
    """cat -> pipe -> read_core + backtraces + drain in this process (no interpreter start)."""
    import io
    from crashkeep.commands import core as corehandler
    from crashkeep.formats import drain, elfcore
    mod = __import__("crashkeep." + impl, fromlist=["drain"])
    saved = drain._impl
    drain._impl = mod
    try:
        cat = subprocess.Popen(["cat", core], stdout=subprocess.PIPE)
        f = io.FileIO(cat.stdout.fileno(), "rb", closefd=False)
        t0 = time.monotonic()
        c = elfcore.read_core(f)
        maps = corehandler.core_maps(c)
        corehandler.backtraces(c, maps)
        t1 = time.monotonic()
        c.stream.drain()
        dt = time.monotonic() - t0
        cat.wait()
        cat.stdout.close()
        return dt, t1 - t0
    finally:
        drain._impl = saved


def backtrace_only(core):
    from crashkeep.commands import core as corehandler
    from crashkeep.formats import elfcore
    t0 = time.monotonic()
    with open(core, "rb") as f:
        c = elfcore.read_core(f, seekable=True)
        maps = corehandler.core_maps(c)
        tr = corehandler.backtraces(c, maps)
        text = corehandler.render_text(corehandler.build_report(c, maps, tr))
    dt = time.monotonic() - t0
    return dt, len(tr), sum(len(f) for _, f in tr), text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ckb", dir="/tmp")
    old = open(CORE_PATTERN).read().rstrip("\n")
    try:
        src = os.path.join(tmp, "big.c")
        with open(src, "w") as f:
            f.write(SRC)
        exe = os.path.join(tmp, "bigcore")
        sh(["gcc", "-O2", "-pthread", "-o", exe, src])
        # 10 thread stacks of 8 MiB are in the core stream too (untouched pages as zeros)
        heap = max(8, a.mib - 80)
        set_pattern(os.path.join(tmp, "core.%p"))
        _, _, pid = crash(exe, heap, tmp)
        set_pattern(old)
        core = os.path.join(tmp, "core.%d" % pid)
        size = os.path.getsize(core)
        os.makedirs(os.path.join(tmp, "proc", str(pid)))
        mb = size / 1e6
        print("core: %.1f MiB, 10 threads (%s)" % (size / 1048576.0, core))
        subprocess.run(["cat", core], stdout=subprocess.DEVNULL, check=True)  # warm the page cache
        c = best(lambda: pipe_cat(core), a.runs)
        print("%-44s %7.3f s %8.0f MB/s" % ("cat core | cat > /dev/null", c[0], mb / c[0]))
        for pure in (False, True):
            r = best(lambda: pipe_handler(core, tmp, pid, pure), a.runs)
            label = "cat core | crashkeep core (%s)" % ("pure Python" if pure else "compiled drain")
            print("%-44s %7.3f s %8.0f MB/s  peak RSS %.1f MB  (%.2fx cat's time)"
                  % (label, r[0], mb / r[0], r[1] / 1024.0, r[0] / c[0]))
        # without the interpreter's start: the handler's reading and unwinding, in process
        for impl in ("_drain_c", "_drain_py"):
            r = best(lambda: in_process(core, impl), a.runs)
            print("%-44s %7.3f s %8.0f MB/s  (backtrace done after %.0f%% of it)"
                  % ("  in process, %s" % impl, r[0], mb / r[0], 100.0 * r[1] / r[0]))
        bt = best(lambda: backtrace_only(core), a.runs)
        print("%-44s %7.3f s  (%d threads, %d frames)" % ("backtrace work alone", bt[0], bt[1], bt[2]))
        # the kernel's own pipe: crash -> exit time with each handler
        w = os.path.join(tmp, "ck")
        with open(w, "w") as f:
            f.write("#!/bin/sh\nexport PYTHONPATH=%s\nexec %s -m crashkeep core --device %s/keep.img "
                    "--proc /proc \"$@\"\n" % (ROOT, PY, tmp))
        catw = os.path.join(tmp, "cat0")
        with open(catw, "w") as f:
            f.write("#!/bin/sh\nexec cat > /dev/null\n")
        os.chmod(w, 0o755)
        os.chmod(catw, 0o755)
        for label, pat in (("kernel | cat > /dev/null", "|%s" % catw),
                           ("kernel | crashkeep core", "|%s -- %%P %%i %%s %%t %%e %%u" % w)):
            def run():
                set_pattern(pat)
                try:
                    dt, status, _ = crash(exe, heap, tmp)
                finally:
                    set_pattern(old)
                assert os.WCOREDUMP(status), status
                return (dt, 0)
            r = best(run, a.runs)
            print("%-44s %7.3f s  (start, fill %d MiB, crash, dump, exit)" % (label, r[0], heap))
        print()
        print(bt[3].split("maps:")[0])
    finally:
        set_pattern(old)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
