"""The core handler on the real kernel (Debian 6.1 under QEMU, the reference board).

Boot 1: `crashkeep boot`, `crashkeep core install`, a static program crashes
in a worker thread; the kernel pipes its core to /bin/crashkeep, whose record
lands in phram; the box panics. Boot 2: `crashkeep boot` salvages the record
to flash. The oracle is gdb on the host: the program is static and not PIE, so
a core of the same binary captured on the host has the same program counters.
"""
import binascii
import gzip
import json
import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from test_unwind_gdb import GDB, build, capture_core  # noqa: E402

FLASH = "/crashkeep"

SRC = r"""
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) void store(int *p, int v) { *p = v; }
__attribute__((noinline)) void step2(int *p) { store(p, 7); __asm__ volatile(""); }
__attribute__((noinline)) void step1(int *p) { step2(p); __asm__ volatile(""); }
void *worker(void *a) { usleep(50000); step1((int *)a); return 0; }
int main(void) {
    pthread_t t;
    printf("crasher %d\n", (int)getpid());
    fflush(stdout);
    pthread_create(&t, 0, worker, (void *)8);
    pthread_join(t, 0);
    return 0;
}
"""


def bundle_records(run):
    """{record name: bytes} over every bundle on the flash disk (CRCs checked)."""
    out = {}
    for b in sorted(run.list_disk(FLASH)):
        if not b[:1].isdigit():
            continue
        meta = json.loads(run.read_disk_file("%s/%s/meta.json" % (FLASH, b)))
        for f in meta["files"]:
            data = run.read_disk_file("%s/%s/%s" % (FLASH, b, f["file"]))
            assert binascii.crc32(data) & 0xFFFFFFFF == f["stored_crc32"]
            if f["file"] != f["name"]:
                data = gzip.decompress(data)
            out[f["name"]] = data
    return out


def gdb_crashing_pcs(exe, core):
    out = subprocess.run(GDB + ["-ex", "bt", exe, core], capture_output=True, text=True,
                         timeout=120).stdout
    frames = []
    for line in out.split("\n"):
        m = re.match(r"^#(\d+)\s+(?:(0x[0-9a-f]+) in )?(\S+)", line)
        if m:
            if m.group(1) == "0":     # gdb prints frame #0 once when it loads the core
                frames = []
            frames.append((int(m.group(2), 16) if m.group(2) else None, m.group(3)))
    return frames


def test_crash_record_in_phram_survives_panic_and_is_salvaged(testbed, tmp_path):
    t = str(tmp_path)
    exe = build(t, "crasher", SRC, ["-static", "-O2", "-pthread"])
    with open(exe, "rb") as f:
        binary = f.read()
    # the oracle: the same static binary crashing on the host
    host_core = capture_core(t, exe)
    want = gdb_crashing_pcs(exe, host_core)
    assert [n for _, n in want][:4] == ["store", "step2", "step1", "worker"], want

    disk = testbed.make_disk("16M", "ext4")
    run = testbed.run([
        """
        crashkeep boot; echo "boot-rc=$?"
        crashkeep core install; echo "install-rc=$?"
        cat /proc/sys/kernel/core_pattern
        chmod 755 /bin/crasher
        /bin/crasher > /tmp/out.txt
        echo "crasher-status=$?"
        cat /tmp/out.txt
        crashkeep list
        dmesg | grep "crashkeep: crasher"
        crashkeep dump > /tmp/records.txt; echo "dump-rc=$?"
        emit records /tmp/records.txt
        panic_now
        """,
        """
        crashkeep boot; echo "boot-rc=$?"
        """], disk=disk, files={"bin/crasher": binary})
    b1 = run.boot_logs[0]
    assert "install-rc=0" in b1 and "|/bin/crashkeep core handle -- %P %i %s %t %e %u" in b1, b1
    assert "crasher-status=139" in b1, b1            # 128 + SIGSEGV, core dumped
    pid = int(re.search(r"crasher (\d+)", b1).group(1))
    name = "core-crasher-%d" % pid
    assert "crashkeep: crasher: SIGSEGV in store, record %s" % name in b1, b1
    assert name in b1
    text = run.files["records"].decode()
    assert "signal: 11 (SIGSEGV) code 1 (SEGV_MAPERR) fault addr 0x8" in text, text
    assert "exe: /bin/crasher" in text and "cmdline: /bin/crasher" in text

    # salvaged after the panic: the same record, byte for byte in its report
    assert "boot-rc=0" in run.boot_logs[1], run.boot_logs[1]
    saved = bundle_records(run)
    key = [k for k in saved if k.endswith(name)]
    assert len(key) == 1, sorted(saved)
    report = saved[key[0]].decode()
    assert report.startswith("crashkeep core report") and report in text

    # the crashing thread's frames are gdb's frames (same pcs, same names)
    crashed = report.split("(crashed):\n")[1].split("backtrace thread")[0].split("maps:")[0]
    ours = re.findall(r"#\d+\s+(0x[0-9a-f]+) in (\S+)", crashed)
    assert len(ours) == len(want), (ours, want)
    for (pc, fn), (gpc, gfn) in zip(ours, want):
        if gpc is not None:
            assert int(pc, 16) == gpc, (ours, want)
        assert fn == gfn, (ours, want)
    # the main thread is there too, blocked in pthread_join
    assert report.count("backtrace thread ") == 2


def test_reboot_on_named_process_after_the_record_is_kept(testbed, tmp_path):
    """core.reboot_on = crasher: the handler keeps the record, then reboots the box;
    the next `crashkeep boot` finds the record in phram and salvages it."""
    t = str(tmp_path)
    exe = build(t, "crasher", SRC, ["-static", "-O2", "-pthread"])
    board = os.path.join(t, "board.conf")
    with open(testbed.board) as f:
        conf = f.read()
    with open(board, "w") as f:
        f.write(conf + "\ncore.reboot_on = crasher\n")
    disk = testbed.make_disk("16M", "ext4")
    run = testbed.run([
        """
        crashkeep boot; echo "boot-rc=$?"
        crashkeep core install; echo "install-rc=$?"
        chmod 755 /bin/crasher
        /bin/crasher
        sleep 60        # the handler reboots the box long before (a loaded CI host is slow)
        echo "still-up-after-crash"
        """,
        """
        crashkeep boot; echo "boot-rc=$?"
        """], disk=disk, board=board, files={"bin/crasher": open(exe, "rb").read()})
    b1, b2 = run.boot_logs[0], run.boot_logs[1]
    assert "install-rc=0" in b1 and "still-up-after-crash" not in b1, b1
    assert run.rcs[0] is None                         # boot 1 ended by the reboot
    pid = int(re.search(r"crasher (\d+)", b1).group(1))
    assert "boot-rc=0" in b2, b2
    saved = bundle_records(run)
    key = [k for k in saved if k.endswith("core-crasher-%d" % pid)]
    assert len(key) == 1, sorted(saved)
    assert b"in store (crasher+0x" in saved[key[0]]
