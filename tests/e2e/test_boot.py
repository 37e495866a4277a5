"""`crashkeep boot` on the real kernel (Debian 6.1 under QEMU, the reference board).

Scenarios: clean boot; panic with a unique marker and a phram record; power cut
at several steps of the salvage (file-backed RAM, QEMU killed at the step's
console marker, restarted on the same RAM and disk: 0 lost, 0 duplicated);
flash missing / read-only / full in a row (records stay in RAM until a boot
with working flash saves them once); ramoops module missing (raw reader via
/dev/mem); bad board config; two panics in a row without a salvage between.

What survives two panics without a salvage between (measured below): the
second panic only. ramoops restarts its dump counter at every boot, so the
second panic's record goes to dmesg zone 0 and overwrites the first one
(ramoops-format.md §5). A boot that runs `crashkeep boot` before the next
crash is what keeps the first.
"""
import gzip
import json
import os
import uuid

import pytest

pytestmark = pytest.mark.e2e

FLASH = "/crashkeep"           # flash.dir on the test disk
STEP_ENV = "CRASHKEEP_STEPS=1 CRASHKEEP_STEP_PAUSE=2"


def marker():
    return "CKMARK-%s" % uuid.uuid4().hex[:12]


def bundles(run, disk=None):
    try:
        names = run.list_disk(FLASH, disk)
    except (FileNotFoundError, OSError):
        return []
    return sorted(n for n in names if n[:1].isdigit())


def bundle_files(run, name):
    """{record name: bytes} of one bundle, decompressed, sizes and CRCs checked."""
    import binascii
    meta = json.loads(run.read_disk_file("%s/%s/meta.json" % (FLASH, name)))
    out = {}
    for f in meta["files"]:
        data = run.read_disk_file("%s/%s/%s" % (FLASH, name, f["file"]))
        assert binascii.crc32(data) & 0xFFFFFFFF == f["stored_crc32"]
        if f["file"] != f["name"]:
            data = gzip.decompress(data)
        assert len(data) == f["size"] and binascii.crc32(data) & 0xFFFFFFFF == f["crc32"]
        out[f["name"]] = data
    return meta, out


def all_saved(run):
    """[(bundle, record name, bytes)] over every bundle on the disk."""
    out = []
    for b in bundles(run):
        for n, d in bundle_files(run, b)[1].items():
            out.append((b, n, d))
    return out


def summary(log):
    lines = [l for l in log.splitlines() if l.startswith("crashkeep: boot")]
    assert lines, log
    return lines[-1]


PANIC_BOOT = """
crashkeep boot
echo "{mark}" > /dev/kmsg
{extra}
panic_now
"""


def test_clean_boot_then_clean_reboot_and_bad_config(testbed):
    disk = testbed.make_disk("16M", "ext4")
    run = testbed.run([
        """
        printf 'board.name = x\\nramoops.mem_size = banana\\n' > /tmp/bad.conf
        crashkeep boot --board /tmp/bad.conf; echo "bad-config-rc=$?"
        echo STILL-BOOTING
        crashkeep boot; echo "boot-rc=$?"
        crashkeep shutdown; echo "shutdown-rc=$?"
        reboot -f
        """,
        """
        crashkeep boot; echo "boot-rc=$?"
        """], disk=disk)
    b1, b2 = run.boot_logs[0], run.boot_logs[1]
    assert "bad-config-rc=2" in b1 and "STILL-BOOTING" in b1, b1
    assert "/tmp/bad.conf:2: bad number" in b1
    s1 = [l for l in b1.splitlines() if l.startswith("crashkeep: boot #1")]
    assert s1 and "after power-loss (cold): nothing to salvage" in s1[0], b1
    assert "boot-rc=0" in b1 and "shutdown-rc=0" in b1
    assert "boot #2 after clean (warm): nothing to salvage" in summary(b2), b2
    assert bundles(run) == []


def test_panic_with_phram_record_salvaged_once(testbed):
    disk = testbed.make_disk("16M", "ext4")
    mark = marker()
    run = testbed.run([
        PANIC_BOOT.format(mark=mark, extra="""
        echo "app log line $$" > /tmp/app.log
        crashkeep save /tmp/app.log --name app-log; echo "save-rc=$?"
        """),
        """
        crashkeep boot; echo "boot-rc=$?"
        mount_pstore; echo "pstore-left=$(ls /sys/fs/pstore | wc -l)"
        echo "mark-count=$(crashkeep show 1 --file dmesg-ramoops-0 | grep -c "{mark}")"
        """.replace("{mark}", mark)], disk=disk)
    b2 = run.boot_logs[1]
    assert "save-rc=0" in run.boot_logs[0], run.boot_logs[0]
    line = summary(b2)
    assert "boot #2 after panic (warm), 1 panic(s) in a row" in line, line
    assert "boot-rc=0" in b2
    names = bundles(run)
    assert len(names) == 1 and names[0].startswith("0001-") and names[0].endswith("-panic"), names
    meta, files = bundle_files(run, names[0])
    dmesg = [d for n, d in files.items() if n.startswith("dmesg-ramoops-")]
    assert len(dmesg) == 1 and mark.encode() in dmesg[0]
    assert dmesg[0].startswith(b"Panic#1 Part1") or b"Panic#" in dmesg[0][:40]
    assert b"sysrq triggered crash" in dmesg[0]
    assert files["phram/app-log"].startswith(b"app log line ")
    assert meta["reason"] == "panic" and meta["board"] == "qemu-x86_64"
    assert meta["kernel"].startswith("6.1.") and meta["counters"]["panic_count"] == 1
    assert meta["boot_id"] and meta["boot_id"] != meta["salvaged_by_boot_id"]
    # RAM copy cleared only after the flash copy; the bundle is browsable on the board
    assert "pstore-left=0" in b2 and "mark-count=1" in b2, b2


def ckoops_module(testbed):
    """tests/fixtures/ramoops/ckoops.ko (a NULL write at init), built once against the
    Debian headers of the test kernel by the fixture generator's own recipe."""
    import sys
    import harness
    sys.path.insert(0, os.path.join(harness.ROOT, "tests", "fixtures", "ramoops"))
    try:
        import generate
    finally:
        sys.path.pop(0)
    work = os.path.join(harness.CACHE, "ckoops-" + testbed.kernel_version)
    with harness._Lock("ckoops"):
        return generate.oops_module(work, testbed.kernel_version)


def test_oops_then_panic_two_records(testbed):
    ko = open(ckoops_module(testbed), "rb").read()
    disk = testbed.make_disk("16M", "ext4")
    mark = marker()
    run = testbed.run([
        """
        crashkeep boot
        echo "{mark}" > /dev/kmsg
        echo 1 > /proc/sys/kernel/panic_on_oops
        insmod /lib/ck/ckoops.ko
        sleep 5
        """.replace("{mark}", mark),
        "crashkeep boot; echo boot-rc=$?"], disk=disk, files={"lib/ck/ckoops.ko": ko})
    b2 = run.boot_logs[1]
    assert "boot-rc=0" in b2 and "salvaged 2 record(s)" in summary(b2), b2
    assert "after panic" in summary(b2)
    names = bundles(run)
    assert len(names) == 1 and names[0].endswith("-panic"), names
    meta, files = bundle_files(run, names[0])
    heads = sorted(d.split(b"\n", 1)[0] for n, d in files.items() if n.startswith("dmesg"))
    assert heads == [b"Oops#1 Part1", b"Panic#2 Part1"], heads
    assert all(mark.encode() in d for n, d in files.items() if n.startswith("dmesg"))
    assert sorted(f.get("reason") for f in meta["files"]) == ["Oops", "Panic"]


# CI cuts before the commit point, right after it, and in the middle of clearing;
# CRASHKEEP_E2E_ALL_CUTS=1 cuts after every step (the fake-root tests always do).
ALL_STEPS = ["modules", "records", "state", "mounted", "file", "staged", "committed", "ledger",
             "cleared"]
CUT_STEPS = ALL_STEPS if os.environ.get("CRASHKEEP_E2E_ALL_CUTS") == "1" else [
    "staged", "committed", "cleared"]


@pytest.mark.parametrize("step", CUT_STEPS)
def test_power_cut_during_salvage(testbed, step):
    """Kill QEMU right after `step`, start again on the same RAM and disk: the
    next `crashkeep boot` completes the job, 0 records lost, 0 duplicated."""
    disk = testbed.make_disk("16M", "ext4")
    ram = os.path.join(testbed.tmp, "ram")
    mark = marker()
    run1 = testbed.run([
        PANIC_BOOT.format(mark=mark, extra="""
        echo "kept across a cut $$" > /tmp/k.txt
        crashkeep save /tmp/k.txt --name cutlog
        """),
        "%s crashkeep boot --timeout 120; echo boot-rc=$?" % STEP_ENV,
    ], disk=disk, ram_file=ram, kill_on="crashkeep-step: %s" % step)
    assert run1.killed, run1.console[-3000:]
    run2 = testbed.run(["""
        crashkeep boot; echo "boot-rc=$?"
        mount -t pstore pstore /sys/fs/pstore; echo "pstore-left=$(ls /sys/fs/pstore | wc -l)"
        crashkeep list 2>&1 | head -20
        """], disk=disk, ram_file=ram)
    log = run2.boot_logs[0]
    assert "boot-rc=0" in log, log
    assert "pstore-left=0" in log, log
    saved = all_saved(run2)
    with_mark = [(b, n) for b, n, d in saved if mark.encode() in d]
    cut = [(b, n) for b, n, d in saved if n == "phram/cutlog"]
    assert len(with_mark) == 1, (step, saved and [(b, n) for b, n, _ in saved])
    assert len(cut) == 1, (step, [(b, n) for b, n, _ in saved])
    assert len(bundles(run2)) == 1
    assert run2.fsck()[0] == 0


def test_flash_missing_readonly_full_then_saved_once(testbed):
    """Records stay in RAM through three boots without usable flash, then one
    boot with working flash saves them exactly once."""
    disk = testbed.make_disk("8M", "ext4")
    mark = marker()
    run = testbed.run([
        PANIC_BOOT.format(mark=mark, extra=""),
        """
        sed 's|^flash.device.*|flash.device = /dev/vdz|' /etc/crashkeep/board.conf > /tmp/b.conf
        crashkeep boot --board /tmp/b.conf; echo "missing-rc=$?"
        reboot -f
        """,
        """
        blockdev --setro /dev/vda
        crashkeep boot; echo "readonly-rc=$?"
        reboot -f
        """,
        """
        mount /dev/vda /mnt && (dd if=/dev/zero of=/mnt/fill bs=64k 2>/dev/null; sync; umount /mnt)
        crashkeep boot; echo "full-rc=$?"
        mount /dev/vda /mnt && rm /mnt/fill && umount /mnt
        reboot -f
        """,
        """
        crashkeep boot; echo "ok-rc=$?"
        """], disk=disk)
    b = run.boot_logs
    assert "missing-rc=4" in b[1] and "Failed to find flash device '/dev/vdz'" in summary(b[1]), b[1]
    assert "kept in RAM" in summary(b[1])
    assert "readonly-rc=4" in b[2] and "read-only" in summary(b[2]), b[2]
    assert "full-rc=5" in b[3] and "kept in RAM" in summary(b[3]), b[3]
    assert "ok-rc=0" in b[4] and "salvaged 1 record(s)" in summary(b[4]), b[4]
    saved = all_saved(run)
    assert [n for _, n, d in saved if mark.encode() in d] == ["dmesg-ramoops-0"]
    # the panic is counted once although four boots saw its record: the boots after
    # it ended by reboot -f (reset); the bundle still carries the record's reason
    assert "after panic (warm), 1 panic(s) in a row" in summary(b[1])
    for i in (2, 3, 4):
        assert "after reset (warm)" in summary(b[i]), b[i]
    meta = bundle_files(run, bundles(run)[0])[0]
    assert meta["reason"] == "panic" and meta["boot_reason"] == "reset", meta
    assert meta["counters"] == {"boot_count": 5, "panic_count": 0}, meta


def test_ramoops_module_missing_uses_raw_region(testbed):
    disk = testbed.make_disk("16M", "ext4")
    mark = marker()
    run = testbed.run([
        PANIC_BOOT.format(mark=mark, extra=""),
        """
        rm /lib/modules/$(uname -r)/kernel/fs/pstore/ramoops.ko
        crashkeep boot; echo "boot-rc=$?"
        crashkeep boot; echo "again-rc=$?"
        """], disk=disk)
    b2 = run.boot_logs[1]
    line = [l for l in b2.splitlines() if l.startswith("crashkeep: boot")][0]
    assert "Failed to find module 'ramoops.ko'" in line and "raw region" in line, line
    assert "boot-rc=0" in b2 and "again-rc=0" in b2, b2
    saved = all_saved(run)
    assert len([1 for _, _, d in saved if mark.encode() in d]) == 1, saved


def test_two_panics_without_salvage_between(testbed):
    disk = testbed.make_disk("16M", "ext4")
    m1, m2 = marker(), marker()
    run = testbed.run([
        "load_modules; echo %s > /dev/kmsg; panic_now" % m1,
        "load_modules; echo %s > /dev/kmsg; panic_now" % m2,
        "crashkeep boot; echo boot-rc=$?",
    ], disk=disk)
    assert "boot-rc=0" in run.boot_logs[2], run.boot_logs[2]
    saved = all_saved(run)
    text = b"".join(d for _, _, d in saved)
    # documented: the second panic overwrote the first (dmesg zone 0 again)
    assert m2.encode() in text
    assert m1.encode() not in text


def test_console_salvaged_after_a_boot_whose_flash_was_full(testbed_pstore):
    """Issue 11: the previous boot's console zone survives a salvage that failed.
    Boot 1 writes a marker to the kernel log at KERN_CRIT (past `quiet`, so the
    pstore console records it);
    boot 2 loads ramoops, which hands that zone to itself, with the flash full:
    crashkeep must have copied the zone into the keep area first; boot 3
    salvages it. Runs on the pstore test kernel (tests/e2e/kernel/build.sh):
    Debian's kernels have no PSTORE_CONSOLE."""
    testbed = testbed_pstore
    disk = testbed.make_disk("8M", "ext4")
    mark = marker()
    run = testbed.run([
        """
        crashkeep boot; echo "first-rc=$?"
        echo "<2>{mark}" > /dev/kmsg
        reboot -f
        """.format(mark=mark),
        """
        mount /dev/vda /mnt && (dd if=/dev/zero of=/mnt/fill bs=64k 2>/dev/null; sync; umount /mnt)
        crashkeep boot; echo "full-rc=$?"
        mount /dev/vda /mnt && rm /mnt/fill && umount /mnt
        reboot -f
        """,
        """
        crashkeep boot; echo "ok-rc=$?"
        """], disk=disk)
    b = run.boot_logs
    assert "full-rc=5" in b[1] and "kept in RAM" in summary(b[1]), b[1]
    assert "ok-rc=0" in b[2], b[2]
    saved = all_saved(run)
    hits = [(bd, n) for bd, n, d in saved if mark.encode() in d and n.startswith("console-ramoops-0")]
    assert len(hits) == 1, [(bd, n) for bd, n, _ in saved]


def test_selftest_warm_reboot_keeps_ram_cold_start_loses_it(testbed):
    """`selftest` writes a canary into the keep area and a note on flash; the next
    `boot` says whether the canary survived: a warm reboot keeps reserved RAM,
    a power cycle (a new QEMU process: RAM starts zeroed) does not."""
    disk = testbed.make_disk("16M", "ext4")
    warm = testbed.run([
        """
        crashkeep boot; echo "boot-rc=$?"
        crashkeep selftest; echo "selftest-rc=$?"
        reboot -f
        """,
        """
        crashkeep boot; echo "boot-rc=$?"
        """], disk=disk)
    b1, b2 = warm.boot_logs[0], warm.boot_logs[1]
    assert "selftest-rc=0" in b1 and "selftest canary" in b1, b1
    line = summary(b2)
    assert "(warm)" in line and "selftest: RAM kept across reset" in line, b2
    assert "boot-rc=0" in b2
    cold1 = testbed.run("""
        crashkeep boot; echo "boot-rc=$?"
        crashkeep selftest; echo "selftest-rc=$?"
        """, disk=disk)
    assert "selftest-rc=0" in cold1.boot_logs[0], cold1.boot_logs[0]
    cold2 = testbed.run("""
        crashkeep boot; echo "boot-rc=$?"
        """, disk=disk)
    line = summary(cold2.boot_logs[0])
    assert "(cold)" in line and "selftest: RAM lost across reset" in line, cold2.boot_logs[0]
