#!/usr/bin/env python3
"""Benchmark `crashkeep boot` (the static binary) against a BusyBox sh script doing
the same probes, on a prepared fake root; and the seconds it adds to a QEMU boot.

    python3 tests/bench/bench_boot.py [--binary build/out/crashkeep] [--runs 30] [--no-qemu]

Cases (fake root: modules already loaded, /sys/fs/pstore, /proc, keep-area image,
flash directory):
  empty  nothing to salvage: probe modules, list pstore, read boot id, read and
         write the boot state, one log line;
  six    6 pstore records (real Debian 6.1 kernel text from tests/fixtures, about
         18 KiB each, as a 1 MiB ramoops region with 6 dmesg zones yields) plus one
         keep-area record: one bundle, each file durable (fsync, read back), then
         the records cleared.
The script does the same with cp/sync/cmp/rm (no compression, no ledger, no CRC).
Goals (issue 6): empty <= 15 ms and <= 2x the script; six <= 50 ms plus flash
writes; peak RSS <= 10 MB. Prints ratios; asserts nothing.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "portable"))

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "ramoops", "plain-oops-panic", "pstore")

SCRIPT = r"""#!/bin/sh
# The same probes as `crashkeep boot`, in BusyBox sh.
R=$1
for m in reed_solomon ramoops mtd phram; do
    [ -e $R/sys/module/$m/initstate ] || insmod $R/lib/modules/$m.ko
done
id=$(cat $R/proc/sys/kernel/random/boot_id)
dd if=$R/keep.img of=$R/tmp.state bs=128 count=1 2>/dev/null
dd if=$R/tmp.state of=$R/keep.img bs=128 count=1 conv=notrunc,fsync 2>/dev/null
n=0
for f in $R/sys/fs/pstore/*; do [ -e "$f" ] && n=$((n + 1)); done
if [ $n -gt 0 ]; then
    b=$R/flash/crashkeep/0001-$(date -u +%Y%m%dT%H%M%SZ)-panic
    mkdir -p $b.new
    for f in $R/sys/fs/pstore/*; do
        cp $f $b.new/ && sync $b.new/$(basename $f) && cmp -s $f $b.new/$(basename $f) || exit 4
    done
    dd if=$R/keep.img of=$b.new/keep.img bs=4096 count=16 2>/dev/null
    echo "{\"boot_id\": \"$id\", \"files\": $n}" > $b.new/meta.json
    sync; mv $b.new $b; sync
    rm $R/sys/fs/pstore/*
fi
echo "crashkeep: boot: $n record(s)" > $R/dev/kmsg
"""


def make_roots(tmp):
    import test_salvage as core
    from crashkeep.system import keeparea
    recs = []
    if os.path.isdir(FIXTURE):
        base = [open(os.path.join(FIXTURE, n), "rb").read()
                for n in sorted(os.listdir(FIXTURE)) if n.startswith("dmesg")]
    else:
        base = [core.PANIC * 6]
    for i in range(6):
        recs.append(("dmesg-ramoops-%d" % i, base[i % len(base)] + b"\n#%d\n" % i))
    roots = {}
    for case, pstore, keep in (("empty", [], []), ("six", recs, [("messages", b"log\n" * 1000)])):
        r = core.make_root()
        # a first boot so the keep area holds a boot state, as on a running board
        from crashkeep.formats import boardconf
        from crashkeep.commands import boot as salvage
        salvage.run_boot(boardconf.load(r + "/board.conf"), r, 30, keep=r + "/keep.img",
                         now=1700000000)
        for name, data in pstore:
            open(r + "/sys/fs/pstore/" + name, "wb").write(data)
        if keep:
            a = keeparea.open_area(r + "/keep.img")
            for name, data in keep:
                a.put(name, data)
            a.close()
        shutil.rmtree(r + "/flash/crashkeep", ignore_errors=True)
        os.makedirs(r + "/flash/crashkeep")
        # the next boot: a new boot id
        open(r + "/proc/sys/kernel/random/boot_id", "w").write(core.BOOT_IDS[5] + "\n")
        tpl = os.path.join(tmp, case + ".tpl")
        shutil.copytree(r, tpl)
        roots[case] = (r, tpl, len(pstore) + len(keep))
    return roots


def hyperfine(cmds, prepare, runs, tmp):
    out = os.path.join(tmp, "hf.json")
    args = ["hyperfine", "-N", "--warmup", "3", "--runs", str(runs), "--export-json", out,
            "--style", "none"]
    for c in cmds:
        args += ["--prepare", prepare, c]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    res = json.load(open(out))["results"]
    # wall: mean, sd, min; cpu: mean user + system (steadier on a shared machine)
    return [(r["mean"], r["stddev"], r["min"], r["user"] + r["system"]) for r in res]


def peak_rss(cmd, prepare):
    """Peak RSS (MB) of cmd alone, by GNU time (a forked Python's own pages would count
    in wait4's ru_maxrss), and its exit status."""
    subprocess.run(prepare, shell=True, check=True)   # sh -c '...' under a shell is fine
    r = subprocess.run(["/usr/bin/time", "-f", "@@RSS %M"] + cmd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    kb = [l for l in r.stderr.splitlines() if l.startswith("@@RSS ")]
    return (int(kb[-1].split()[1]) / 1024.0 if kb else -1), r.returncode


def qemu_seconds():
    """Guest-side seconds: busybox insmod of the 4 modules vs `crashkeep boot` (which
    loads them, mounts pstore and the flash disk, reads the keep area)."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
    import harness
    env = harness.Env()
    tmp = tempfile.mkdtemp(prefix="ck-bench-q-")
    tb = harness.Testbed(env, tmp)
    disk = tb.make_disk("16M", "ext4")
    up = "cut -d' ' -f1 /proc/uptime"
    run = tb.run([
        "t0=$(%s); load_modules; mount_pstore; ls /sys/fs/pstore >/dev/null; t1=$(%s); "
        "echo \"BENCH-BB $t0 $t1\"; reboot -f" % (up, up),
        # cold: the binary's first run in this boot (as the init hook runs it)
        "t0=$(%s); crashkeep boot >/dev/null; t1=$(%s); echo \"BENCH-CK1 $t0 $t1\"; "
        "reboot -f" % (up, up),
        # warm: its pages already touched by a --version run
        "crashkeep --version >/dev/null; t0=$(%s); crashkeep boot >/dev/null; t1=$(%s); "
        "echo \"BENCH-CK2 $t0 $t1\"" % (up, up),
    ], disk=disk)
    out = {}
    for line in run.console.splitlines():
        if line.startswith("BENCH-"):
            k, a, b = line.split()
            out[k[6:]] = float(b) - float(a)
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "out", "crashkeep"))
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--no-qemu", action="store_true")
    a = ap.parse_args()
    if os.path.exists(a.binary):
        ck = [a.binary]
        what = "static binary %s" % os.path.relpath(a.binary, ROOT)
    else:
        ck = [sys.executable, "-m", "crashkeep"]
        what = "python3 -m crashkeep (no static binary built: make -C build)"
    busybox = shutil.which("busybox") or "/bin/busybox"
    tmp = tempfile.mkdtemp(prefix="ck-bench-")
    roots = make_roots(tmp)
    script = os.path.join(tmp, "probe.sh")
    open(script, "w").write(SCRIPT)
    print("crashkeep boot benchmark: %s vs busybox sh (%s), %d runs each"
          % (what, busybox, a.runs))
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = ROOT + (":" + env_path if env_path else "")
    for case in ("empty", "six"):
        r, tpl, n = roots[case]
        prepare = "sh -c 'rm -rf %s && cp -a %s %s'" % (r, tpl, r)   # -N: no shell
        ck_cmd = " ".join(ck + ["boot", "--board", r + "/board.conf", "--root", r,
                                "--keep", r + "/keep.img"])
        sh_cmd = "%s sh %s %s" % (busybox, script, r)
        (ckm, cks, ckmin, ckcpu), (shm, shs, shmin, shcpu) = hyperfine([ck_cmd, sh_cmd], prepare,
                                                                       a.runs, tmp)
        rss, rc = peak_rss(ck_cmd.split(), prepare)
        rss_sh, _ = peak_rss(sh_cmd.split(), prepare)
        print("%-6s %d record(s): crashkeep %6.2f ms wall (sd %.2f, min %.2f), %5.2f ms cpu | "
              "script %6.2f ms wall (sd %.2f, min %.2f), %5.2f ms cpu | ratio wall %.2fx, "
              "min %.2fx, cpu %.2fx | peak RSS %.1f MB (script %.1f MB) | rc %d"
              % (case, n, ckm * 1e3, cks * 1e3, ckmin * 1e3, ckcpu * 1e3, shm * 1e3, shs * 1e3,
                 shmin * 1e3, shcpu * 1e3, ckm / shm, ckmin / shmin, ckcpu / shcpu, rss, rss_sh,
                 rc))
    shutil.rmtree(tmp, ignore_errors=True)
    if not a.no_qemu:
        q = qemu_seconds()
        bb = q.get("BB")
        print("QEMU (TCG) guest seconds: busybox insmod+pstore %.2f s; crashkeep boot cold "
              "(first exec in the boot) %.2f s, warm %.2f s; added to a boot vs insmod: %.2f s"
              % (bb or -1, q.get("CK1", -1), q.get("CK2", -1),
                 (q.get("CK1", 0) - (bb or 0))))


if __name__ == "__main__":
    main()
