#!/usr/bin/env python3
"""Benchmark the static binary against the obvious alternatives, in one run.

  python3 build/bench.py [--binary build/out/crashkeep] [--runs 200]

Prints a table: size stripped and gzip -9; start-up time (hyperfine, no
shell) of `crashkeep --version`, the boot dispatch path (`crashkeep boot
--help`: plain-argv dispatch + importing the salvage module, no typer) and a
typer command (`board show`); peak RSS (ru_maxrss from wait4, median of 9
runs, GNU time) -- each beside `python3.11 -I -S -c pass` and `busybox true`, with
ratios. The binary is built first (make -C build) when missing.
Needs the Debian packages hyperfine and time (tests/setup.sh installs both).
--qemu adds `crashkeep boot` after a real panic in the QEMU test bed: wall
time and peak RSS of the real boot path (and --version) in the guest.
Targets (issue 3): <= 6 MB stripped, <= 2.5 MB gzip, --version within 1.5x
of python3.11 -I -S, boot-path peak RSS <= 10 MB.

--targets aarch64,armhf,mipsel,x86_64 (or `all`) prints instead one table per
target binary (build/out/crashkeep-T; make -C build TARGET=T when missing):
size stripped, gzip -9 and xz -9; median (and min) wall time of `--version`
and of `boot` with nothing to salvage (bench_boot's prepared fake root:
modules loaded, empty pstore, a keep area with a boot state) under qemu-user
(qemu-<arch>-static), each beside the host binary run natively, with ratios.
The in-guest figures are --qemu's.
"""
import argparse
import gzip
import json
import lzma
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = "/usr/bin/python3.11"
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
BOARD = os.path.join(ROOT, "board-configs", "qemu-x86_64.conf")
GNU_TIME = "/usr/bin/time"      # Debian package "time"


def stripped_size(path):
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "x")
        shutil.copy(path, p)
        subprocess.run(["strip", p], check=True, capture_output=True)
        with open(p, "rb") as f:
            data = f.read()
    return len(data), len(gzip.compress(data, 9))


def hyperfine_medians(cmds, runs, prepare=None, warmup=3):
    """{name: (median, min) seconds} for [(name, argv)], one hyperfine run."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = ["hyperfine", "-N", "--warmup", str(warmup), "--runs", str(runs), "--style",
                "none", "--export-json", out.name]
        for name, cmd in cmds:
            if prepare:
                argv += ["--prepare", prepare]
            argv += ["-n", name, " ".join(cmd)]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        res = json.load(open(out.name))["results"]
    return {r["command"]: (r["median"], r["min"]) for r in res}


TRIPLETS = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu",
            "armhf": "arm-linux-gnueabihf", "mipsel": "mipsel-linux-gnu"}
QEMU_USER = {"x86_64": "qemu-x86_64-static", "aarch64": "qemu-aarch64-static",
             "armhf": "qemu-arm-static", "mipsel": "qemu-mipsel-static"}


def sizes(path, strip="strip"):
    """(stripped, gzip -9, xz -9) bytes."""
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "x")
        shutil.copy(path, p)
        subprocess.run([strip, p], check=True, capture_output=True)
        with open(p, "rb") as f:
            data = f.read()
    return len(data), len(gzip.compress(data, 9)), len(lzma.compress(data, preset=9))


def empty_boot_root(tmp):
    """A fake root where `crashkeep boot` has nothing to salvage (bench_boot's "empty")."""
    sys.path.insert(0, ROOT)
    sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))
    import bench_boot
    r, tpl, _ = bench_boot.make_roots(tmp)["empty"]
    return r, tpl


def target_tables(names, runs):
    host = os.path.join(HERE, "out", "crashkeep")
    if not os.path.exists(host):
        subprocess.run(["make", "-s", "-C", HERE], check=True)
    hsize = sizes(host)
    tmp = tempfile.mkdtemp(prefix="ck-bench-targets-")
    try:
        root, tpl = empty_boot_root(tmp)
        prepare = "cp -a --remove-destination %s/. %s" % (tpl, root)
        boot = ["boot", "--board", root + "/board.conf", "--root", root, "--keep",
                root + "/keep.img"]
        hcmd = [("host --version", [host, "--version"]), ("host boot", [host] + boot)]
        ht = hyperfine_medians(hcmd, runs, prepare)
        for name in names:
            binary = os.path.join(HERE, "out", "crashkeep-" + name)
            if not os.path.exists(binary):
                subprocess.run(["make", "-s", "-C", HERE, "TARGET=" + name], check=True)
            native = TRIPLETS[name] == subprocess.run(
                ["gcc", "-dumpmachine"], capture_output=True, text=True).stdout.strip()
            run = [binary] if native else [shutil.which(QEMU_USER[name]) or QEMU_USER[name],
                                           binary]
            tsize = sizes(binary, "strip" if native else TRIPLETS[name] + "-strip")
            # (hyperfine would read a name "--version" as its own option)
            t = hyperfine_medians([("version", run + ["--version"]), ("boot", run + boot)],
                                  runs, prepare)
            under = "native" if native else "qemu-user (%s)" % QEMU_USER[name]
            print("\n%s: build/out/crashkeep-%s, run %s; host: build/out/crashkeep, native"
                  % (name, name, under))
            rows = [("size stripped (MB)", tsize[0], hsize[0], 1e6, "%.2f"),
                    ("size gzip -9 (MB)", tsize[1], hsize[1], 1e6, "%.2f"),
                    ("size xz -9 (MB)", tsize[2], hsize[2], 1e6, "%.2f"),
                    ("--version median (ms)", t["version"][0], ht["host --version"][0], 1e-3,
                     "%.1f"),
                    ("--version min (ms)", t["version"][1], ht["host --version"][1], 1e-3,
                     "%.1f"),
                    ("boot, nothing to salvage, median (ms)", t["boot"][0], ht["host boot"][0],
                     1e-3, "%.1f"),
                    ("boot, nothing to salvage, min (ms)", t["boot"][1], ht["host boot"][1],
                     1e-3, "%.1f")]
            print("| metric | %s | host x86_64 | ratio |" % name)
            print("|---|---|---|---|")
            for label, v, h, unit, fmt in rows:
                print("| %s | %s | %s | %.2fx |" % (label, fmt % (v / unit), fmt % (h / unit),
                                                    v / h))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def hyperfine(cmds, runs):
    """{name: mean seconds} for [(name, argv)], measured in one hyperfine run."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = ["hyperfine", "-N", "--warmup", "20", "--runs", str(runs), "--style", "none",
                "--export-json", out.name]
        for name, cmd in cmds:
            argv += ["-n", name, " ".join(cmd)]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        res = json.load(open(out.name))["results"]
    return {r["command"]: (r["mean"], r["stddev"] or 0.0) for r in res}


def peak_rss_kib(cmd, n=9):
    """Median peak RSS (KiB) of n runs, measured by GNU time (wait4's ru_maxrss).

    Not measured from this process: a child forked from Python starts with
    Python's RSS as its high-water mark, and that survives exec.
    """
    vals = []
    for _ in range(n):
        r = subprocess.run([GNU_TIME, "-f", "%M", "--"] + cmd, cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise SystemExit("bench: %s failed: %s" % (" ".join(cmd), r.stderr))
        vals.append(int(r.stderr.strip().splitlines()[-1]))
    return statistics.median(vals)


GUEST = r"""
bench() {  # bench NAME CMD...: wall ms and peak RSS (KiB) of one run
    _n=$1
    shift
    _t0=$(cut -d' ' -f1 /proc/uptime)
    busybox time -v "$@" > /dev/null 2> /tmp/time.out
    _t1=$(cut -d' ' -f1 /proc/uptime)
    _rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' /tmp/time.out)
    echo "$BOOT $_n $_t0 $_t1 $_rss" >> /tmp/bench
}
"""
BOOT1 = GUEST + r"""
crashkeep boot --board /etc/crashkeep/board.conf > /dev/null 2>&1
mount_disk; umount /mnt
echo "CKBENCH-PANIC" > /dev/kmsg
panic_now
"""
BOOT2 = GUEST + r"""
for i in 1 2 3; do
    bench "ck-version-$i" crashkeep --version
    bench "busybox-true-$i" busybox true
done
bench ck-boot-salvage crashkeep boot --board /etc/crashkeep/board.conf
bench ck-boot-again crashkeep boot --board /etc/crashkeep/board.conf
emit bench /tmp/bench
"""


def qemu_table():
    """`crashkeep boot` in the QEMU guest (TCG) after a real panic: wall time and peak RSS."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
    import harness
    with tempfile.TemporaryDirectory() as d:
        tb = harness.Testbed(harness.Env(), d)
        run = tb.run([BOOT1, BOOT2], disk=tb.make_disk("16M"))
    rows = []
    for line in run.files["bench"].decode().splitlines():
        _, name, t0, t1, rss = line.split()
        # BusyBox time prints ru_maxrss (already KiB) as if it were pages:
        # 4x too large with 4 KiB pages.
        rows.append((name, "%.0f" % ((float(t1) - float(t0)) * 1e3), "%.1f" % (int(rss) / 4 / 1024)))
    print("\nIn the QEMU guest (TCG, one CPU; a panic in the previous boot):")
    print("| run | wall (ms, /proc/uptime resolution 10 ms) | peak RSS (MB) |")
    print("|---|---|---|")
    for r in rows:
        print("| %s | %s | %s |" % r)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=os.path.join(HERE, "out", "crashkeep"))
    ap.add_argument("--runs", type=int, help="runs per command [200; 20 with --targets]")
    ap.add_argument("--qemu", action="store_true",
                    help="also run `crashkeep boot` after a real panic in the QEMU test bed")
    ap.add_argument("--targets", metavar="T,T",
                    help="per-target tables instead (aarch64,armhf,mipsel,x86_64 or all)")
    a = ap.parse_args()
    if a.targets:
        names = list(TRIPLETS) if a.targets == "all" else a.targets.split(",")
        for n in names:
            if n not in TRIPLETS:
                raise SystemExit("bench: unknown target '%s' (%s)" % (n, ", ".join(TRIPLETS)))
        target_tables(names, a.runs or 20)
        return 0
    if not os.path.exists(a.binary):
        subprocess.run(["make", "-s", "-C", HERE], check=True)
    ck = os.path.abspath(a.binary)
    board = os.path.relpath(BOARD, ROOT)
    cmds = [
        ("ck --version", [ck, "--version"]),
        ("ck boot --help", [ck, "boot", "--help"]),
        ("ck board show", [ck, "board", "show", board]),
        ("python3.11 -I -S -c pass", [PY, "-I", "-S", "-c", "pass"]),
        ("busybox true", [BUSYBOX, "true"]),
    ]
    t = hyperfine(cmds, a.runs or 200)
    rss = {name: peak_rss_kib(cmd) for name, cmd in cmds}
    size, gz = stripped_size(ck)
    bsize, bgz = stripped_size(BUSYBOX)
    psize, pgz = stripped_size(PY)
    py_t, bb_t = t["python3.11 -I -S -c pass"][0], t["busybox true"][0]
    py_r, bb_r = rss["python3.11 -I -S -c pass"], rss["busybox true"]

    rows = []
    mb = 1e6
    rows.append(("size stripped (MB)", "%.2f" % (size / mb), "%.2f*" % (psize / mb),
                 "%.2f" % (bsize / mb), "%.2fx" % (size / psize), "%.2fx" % (size / bsize)))
    rows.append(("size gzip -9 (MB)", "%.2f" % (gz / mb), "%.2f*" % (pgz / mb),
                 "%.2f" % (bgz / mb), "%.2fx" % (gz / pgz), "%.2fx" % (gz / bgz)))
    for name in ("ck --version", "ck boot --help", "ck board show"):
        m, sd = t[name]
        rows.append(("%s (ms)" % name, "%.2f ±%.2f" % (m * 1e3, sd * 1e3),
                     "%.2f" % (py_t * 1e3), "%.2f" % (bb_t * 1e3),
                     "%.2fx" % (m / py_t), "%.1fx" % (m / bb_t)))
    for name in ("ck --version", "ck boot --help", "ck board show"):
        rows.append(("%s peak RSS (MB)" % name, "%.1f" % (rss[name] / 1024),
                     "%.1f" % (py_r / 1024), "%.1f" % (bb_r / 1024),
                     "%.2fx" % (rss[name] / py_r), "%.1fx" % (rss[name] / bb_r)))
    head = ("metric", "crashkeep", "python3.11 -I -S", "busybox true", "vs python", "vs busybox")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
    print(line(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    print("* python3.11 size: the interpreter executable alone (it also needs libc, libm, "
          "libz, libexpat and its stdlib on disk).")
    print("targets: <= 6 MB stripped, <= 2.5 MB gzip, --version <= 1.5x python3.11 -I -S, "
          "boot path peak RSS <= 10 MB")
    if a.qemu:
        qemu_table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
