#!/usr/bin/env python3
"""Benchmark: tail copies out of a 128 MiB file, and `crashkeep save` of a
64 KiB tail, against the dd commands they replace. Ratios in one run.

    python3 tests/bench/bench_copy.py [--quick] [--full] [--save-only] [--binary PATH]
    python3 tests/bench/bench_copy.py --qemu     # into real phram inside QEMU (TCG)

Copy rows are file -> file into a fresh output (page cache warm):
  crashkeep copy (in-process, compiled / pure twin), the whole `crashkeep copy`
  command, dd bs=1 (the note's way; 64 KiB and 1 MiB only: 16 MiB takes ~20 s
  at 0.8 MB/s, measured once with --full), dd with the note's bs=512 formula
  (fast, but the wrong bytes), GNU dd bs=1M with iflag=skip_bytes,count_bytes,
  BusyBox dd with the same flags, and tail -c. Times are the median of several
  runs. The note's formula is reconstructed as skip=(fsize-len)/512+1,
  count=len/512 (see tests/test_blockcopy.py: 65360 bytes, 176 bytes late).
The save rows time the whole command (start-up included) of `crashkeep save
--max-bytes 64K` into a file-backed keep area vs the note's
`dd bs=1 count=65536 skip=<fsize-len> of=<area>`.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from crashkeep.system import blockcopy, _blockcopy_py  # noqa: E402

try:
    from crashkeep.system import _blockcopy_c
except ImportError:
    _blockcopy_c = None

SRC_SIZE = 128 << 20
SIZES = [64 << 10, 1 << 20, 16 << 20]
DD_BS1_MAX = 1 << 20


def median_time(fn, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def wall_times(argv, runs):
    """(median, min) wall seconds: min is what an idle machine gives."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2], times[0]


def median_cpu(argv, runs):
    """Median user+sys CPU seconds of a command: steadier than wall time on a
    busy machine (other jobs stretch the wall clock, not our CPU time)."""
    import resource
    times = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        times.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    times.sort()
    return times[len(times) // 2]


def sh(argv):
    def f():
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return f


def fmt(t):
    return "%8.2f ms" % (t * 1000)


def main(argv):
    quick = "--quick" in argv
    binary = None
    if "--binary" in argv:
        binary = argv[argv.index("--binary") + 1]
    elif os.path.exists(os.path.join(ROOT, "build", "out", "crashkeep")):
        binary = os.path.join(ROOT, "build", "out", "crashkeep")
    runs = 3 if quick else 7
    tmp = tempfile.mkdtemp(prefix="ck-bench-")
    env = dict(os.environ, PYTHONPATH=ROOT)
    # the pip-installed entry of this Python (not a pyenv shim: a shell script)
    import sysconfig
    entry = os.path.join(sysconfig.get_path("scripts"), "crashkeep")
    if not os.path.exists(entry):
        entry = None
    try:
        sizes = [] if "--save-only" in argv else SIZES
        src = os.path.join(tmp, "src.bin")
        with open(src, "wb") as f:
            for _ in range((SRC_SIZE >> 20) if sizes else 0):
                f.write(os.urandom(1 << 20))
        out = os.path.join(tmp, "out.bin")
        print("tail copies out of a %d MiB file, file -> file, median of %d runs" %
              (SRC_SIZE >> 20, runs))
        print("compiled twin: %s; whole-command entry: %s" %
              ("yes" if _blockcopy_c else "NOT BUILT", entry or "python -m crashkeep"))
        cmd = [entry] if entry else [sys.executable, "-m", "crashkeep"]
        for n in sizes:
            skip = SRC_SIZE - n
            rows = []

            def ck_fn(impl):
                def f():
                    blockcopy.copy_range = impl.copy_range
                    blockcopy.copy(src, out, tail=n)
                return f
            if _blockcopy_c:
                rows.append(("crashkeep copy, compiled (in-process)",
                             median_time(ck_fn(_blockcopy_c), runs)))
            rows.append(("crashkeep copy, pure (in-process)",
                         median_time(ck_fn(_blockcopy_py), runs)))
            cmd = [entry] if entry else [sys.executable, "-m", "crashkeep"]
            rows.append(("crashkeep copy --tail (whole command)",
                         median_time(sh(cmd + ["copy", src, out, "--tail", str(n)]), runs)))
            if binary:
                rows.append(("crashkeep copy --tail (static binary)",
                             median_time(sh([binary, "copy", src, out, "--tail", str(n)]), runs)))
            if n <= DD_BS1_MAX or "--full" in argv:
                rows.append(("dd bs=1 (the note)", median_time(sh(
                    ["dd", "if=" + src, "of=" + out, "bs=1", "count=%d" % n,
                     "skip=%d" % skip]), 1 if n > 65536 else runs)))
            rows.append(("dd bs=512 note's formula (wrong bytes)", median_time(sh(
                ["dd", "if=" + src, "of=" + out, "bs=512", "count=%d" % (n // 512),
                 "skip=%d" % (skip // 512 + 1)]), runs)))
            gnu = median_time(sh(["dd", "if=" + src, "of=" + out, "bs=1M", "skip=%d" % skip,
                                  "count=%d" % n, "iflag=skip_bytes,count_bytes"]), runs)
            rows.append(("GNU dd bs=1M skip_bytes,count_bytes", gnu))
            rows.append(("busybox dd bs=1M skip_bytes,count_bytes", median_time(sh(
                ["busybox", "dd", "if=" + src, "of=" + out, "bs=1M", "skip=%d" % skip,
                 "count=%d" % n, "iflag=skip_bytes,count_bytes"]), runs)))
            rows.append(("tail -c", median_time(lambda: subprocess.run(
                "tail -c %d %s > %s" % (n, src, out), shell=True, check=True), runs)))
            bs1 = dict(rows).get("dd bs=1 (the note)")
            print("\n%d KiB tail" % (n >> 10))
            print("  %-42s %11s %10s %10s" % ("", "time", "vs GNU dd", "vs dd bs=1"))
            for name, t in rows:
                print("  %-42s %s %9.2fx %10s" % (name, fmt(t), gnu / t,
                                                 "%.0fx" % (bs1 / t) if bs1 else "-"))

        # whole-command save of a 64 KiB tail into a file-backed keep area
        log = os.path.join(tmp, "messages")
        with open(log, "wb") as f:
            f.write(b"".join(b"Nov 26 06:00:00 router daemon: line %d\n" % i
                             for i in range(60000)))
        area = os.path.join(tmp, "phram.img")
        with open(area, "wb") as f:
            f.truncate(512 << 10)
        fsize = os.path.getsize(log)
        print("\nwhole command: keep a 64 KiB tail of a %d KiB log in a 512 KiB area" %
              (fsize >> 10))
        dd = ["dd", "if=" + log, "of=" + area, "bs=1", "count=65536",
              "skip=%d" % (fsize - 65536), "conv=notrunc"]
        save = ["save", log, "--name", "messages", "--max-bytes", "64K", "--device", area]
        cmds = [("dd bs=1 count=65536 skip=<fsize-len> (the note)", dd),
                ("crashkeep save (%s)" % ("pip entry" if entry else "python -m"), cmd + save)]
        if binary:
            cmds.append(("crashkeep save (static binary)", [binary] + save))
            cmds.append(("crashkeep --version (static binary start-up)", [binary, "--version"]))
        else:
            print("  (no static binary at build/out/crashkeep: its rows are missing)")
        runs2 = runs * 3
        print("  %-50s %11s %11s %11s   %s" % ("%d runs" % runs2, "wall med", "wall min",
                                               "cpu med", "ratios to dd bs=1 (goal <= 0.20)"))
        res = [(name, wall_times(argv, runs2), median_cpu(argv, runs2)) for name, argv in cmds]
        (dd_med, dd_min), dd_cpu = res[0][1], res[0][2]
        for name, (med, mn), c in res:
            print("  %-50s %s %s %s   %.2f / %.2f / %.2f" % (name, fmt(med), fmt(mn), fmt(c),
                                                          med / dd_med, mn / dd_min, c / dd_cpu))
    finally:
        shutil.rmtree(tmp)


GUEST = r"""
load_modules
dd if=/dev/urandom of=/tmp/messages bs=4096 count=256 2>/dev/null
fsize=$(wc -c < /tmp/messages)
skip=$((fsize - 65536))
t() {
    s=$EPOCHREALTIME
    "$@" >/dev/null 2>&1 || echo "FAILED: $*" >&2
    e=$EPOCHREALTIME
    echo "$e $s" | awk '{printf "%.3f", ($1 - $2) * 1000}'
}
for i in 1 2 3 4 5 6 7; do
    echo "crashkeep save 64K tail -> phram record|$(t crashkeep save /tmp/messages --name messages --max-bytes 64K)"
    echo "crashkeep copy --tail 64K -> /dev/mtd0|$(t crashkeep copy /tmp/messages /dev/mtd0 --tail 65536)"
    echo "dd bs=1 (the note) -> /dev/mtd0|$(t dd if=/tmp/messages of=/dev/mtd0 bs=1 count=65536 skip=$skip)"
    echo "dd bs=512 note's formula (wrong bytes)|$(t dd if=/tmp/messages of=/dev/mtd0 bs=512 count=128 skip=$((skip / 512 + 1)))"
    echo "busybox dd bs=64K skip_bytes|$(t dd if=/tmp/messages of=/dev/mtd0 bs=65536 count=1 skip=$skip iflag=skip_bytes)"
    echo "crashkeep --version (start-up alone)|$(t crashkeep --version)"
done > /tmp/times
emit times /tmp/times
"""


def qemu_bench():
    """Time the 64 KiB case into real phram inside the QEMU test bed (TCG: slow
    in absolute terms, the ratios are what counts)."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
    import harness
    tmp = tempfile.mkdtemp(prefix="ck-qbench-")
    try:
        env = harness.Env()
        if not env.binary:
            sys.exit("no static binary (make -C build)")
        run = harness.Testbed(env, tmp).run([GUEST], timeout=600)
        rows = {}
        order = []
        for line in run.files["times"].decode().splitlines():
            name, ms = line.rsplit("|", 1)
            if name not in rows:
                order.append(name)
            rows.setdefault(name, []).append(float(ms))
        med = {n: sorted(v)[len(v) // 2] for n, v in rows.items()}
        base = med["dd bs=1 (the note) -> /dev/mtd0"]
        print("inside QEMU (TCG), 64 KiB tail of a 1 MiB file into phram, median of 7")
        for n in order:
            print("  %-42s %9.2f ms  %7.3f of dd bs=1  (%.0fx faster)" %
                  (n, med[n], med[n] / base, base / med[n]))
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    if "--qemu" in sys.argv[1:]:
        qemu_bench()
    else:
        main(sys.argv[1:])
