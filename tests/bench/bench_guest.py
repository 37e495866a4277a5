#!/usr/bin/env python3
"""In-guest figures of the static binary on each target's QEMU board (TCG, one CPU):

    python3 tests/bench/bench_guest.py [--targets aarch64,armhf,mipsel,x86_64] [--cpu CPU]

One boot per target (tests/e2e/harness.py, the target's kernel, binary and
board) after a power-on, so `crashkeep boot` has nothing to salvage. Rows:
  version-N     `crashkeep --version` (plain-argv path, no typer)
  board-show-N  `crashkeep board show` (the typer path)
  boot-N        `crashkeep boot` with nothing to salvage; boot-1 is the first,
                cold run: what crashkeep adds to the board's boot (it loads the
                modules, mounts the flash, writes the boot state)
Wall time from /proc/uptime (10 ms resolution), user+sys CPU and peak RSS from
BusyBox `time -v` (its "Maximum resident set size" is ru_maxrss scaled by the
page size again: divided back here). On MIPS it also reads the kernel's FPU
emulator counters (debugfs mips/fpuemustats) around each command and
/proc/cpuinfo's FPU line: the userland is hard-float, so a CPU without an FPU
runs every FP instruction through the emulator. Prints tables; asserts nothing.
"""
import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

GUEST = r"""
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
EMU=/sys/kernel/debug/mips/fpuemustats/emulated
PAGE_KB=$(awk '/KernelPageSize/ {print $2; exit}' /proc/self/smaps)
emu() { cat $EMU 2>/dev/null || echo 0; }
bench() {  # bench NAME CMD...: uptime before/after, user, sys, maxrss, emulated FP ops
    _n=$1
    shift
    _e0=$(emu)
    _t0=$(cut -d' ' -f1 /proc/uptime)
    busybox time -v "$@" > /dev/null 2> /tmp/time.out
    _rc=$?
    _t1=$(cut -d' ' -f1 /proc/uptime)
    _e1=$(emu)
    _u=$(sed -n 's/.*User time (seconds): //p' /tmp/time.out)
    _s=$(sed -n 's/.*System time (seconds): //p' /tmp/time.out)
    _rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' /tmp/time.out)
    echo "$_n $_t0 $_t1 $_u $_s $_rss $PAGE_KB $((_e1 - _e0)) $_rc" >> /tmp/bench
}
echo "init-uptime $(cut -d' ' -f1 /proc/uptime)" > /tmp/info
grep -i -m1 "FPU" /proc/cpuinfo >> /tmp/info
grep -m1 "cpu model" /proc/cpuinfo >> /tmp/info
bench boot-1 crashkeep boot
bench boot-2 crashkeep boot
bench boot-3 crashkeep boot
for i in 1 2 3; do bench version-$i crashkeep --version; done
for i in 1 2; do bench board-show-$i crashkeep board show /etc/crashkeep/board.conf; done
emit bench /tmp/bench
emit info /tmp/info
"""


def run_target(target, cpu=None):
    import harness
    env = harness.Env(target=target)
    if cpu:
        env.spec = dict(env.spec, cpu=cpu)
    with tempfile.TemporaryDirectory() as d:
        tb = harness.Testbed(env, d)
        run = tb.run([GUEST], disk=tb.make_disk("16M"), timeout=600)
    if "bench" not in run.files:
        raise SystemExit("bench_guest: %s: no figures; console tail:\n%s"
                         % (target, run.console[-3000:]))
    rows = []
    for line in run.files["bench"].decode().splitlines():
        name, t0, t1, u, s, rss, page, emu, rc = line.split()
        # BusyBox multiplies ru_maxrss (KiB already) by the page size in KiB
        rss_mb = int(rss) / max(1, int(page or 4)) / 1024
        rows.append((name, (float(t1) - float(t0)) * 1e3, float(u) + float(s), rss_mb,
                     int(emu), int(rc)))
    return rows, run.files.get("info", b"").decode()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targets", default="aarch64,armhf,mipsel,x86_64")
    ap.add_argument("--cpu", help="override the target's -cpu (e.g. 24Kc on mipsel: no FPU)")
    a = ap.parse_args(argv)
    for target in a.targets.split(","):
        rows, info = run_target(target, a.cpu)
        print("\n%s guest (QEMU TCG, one CPU%s)" % (target, ", -cpu " + a.cpu if a.cpu else ""))
        for line in info.splitlines():
            print("  " + line.strip())
        print("| run | wall ms | user+sys s | peak RSS MB | FP ops emulated | exit |")
        print("|---|---|---|---|---|---|")
        for name, wall, cpu, rss, emu, rc in rows:
            print("| %s | %.0f | %.2f | %.1f | %d | %d |" % (name, wall, cpu, rss, emu, rc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
