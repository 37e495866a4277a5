"""The phram keep area on the real kernel: save -> warm reboot -> dump, save ->
panic -> dump, save --follow up to a panic, clear -> nothing; `dump --raw` is
the kernel's own bytes (dd of /dev/mtd0); a read-only node gives a clear error;
`crashkeep copy` into the MTD device reads back with dd.

Runs the static binary in the BusyBox initramfs; the device comes from the
board config (/etc/crashkeep/board.conf -> phram.name -> /proc/mtd).
"""
import json

import pytest

from crashkeep.formats import phramrec

pytestmark = pytest.mark.e2e

REGION = 512 << 10                 # phram.len of board-configs/qemu-x86_64.conf
PHRAM_START = 0x1f080000           # phram.start

MAKE_LOG = """
i=0
while [ $i -lt 3000 ]; do
    echo "Nov 26 06:00:00 router daemon[$i]: boot $BOOT line $i of the log"
    i=$((i + 1))
done > /tmp/messages
"""


def test_save_reboot_panic_follow_clear(testbed):
    assert testbed.binary, "build/out/crashkeep is not built (make -C build)"
    run = testbed.run(boots=[
        # boot 1: save a 64 KiB tail, warm reboot
        "load_modules\n" + MAKE_LOG + """
        crashkeep save /tmp/messages --name messages --max-bytes 64K
        echo "save rc=$?"
        tail -c 65536 /tmp/messages | emit want1 -
        reboot -f
        """,
        # boot 2: it is still there; then save from stdin and panic
        """load_modules
        crashkeep dump messages | emit got1 -
        crashkeep list --json | emit list2 -
        crashkeep dump --raw | emit raw2 -
        dd if=/dev/mtd0 bs=524288 count=1 2>/dev/null | emit dd2 -
        echo "note before panic $BOOT" | crashkeep save - --name note
        echo "save2 rc=$?"
        panic_now
        """,
        # boot 3: the note survived the panic; mirror a log with --follow up to a panic
        "load_modules\n" + MAKE_LOG + """
        crashkeep dump note | emit got2 -
        crashkeep save --follow /tmp/messages --name follow --max-bytes 4K --interval 0.1 &
        sleep 1
        echo "LAST LINE BEFORE THE PANIC" >> /tmp/messages
        sleep 2
        panic_now
        """,
        # boot 4: the follow record has the last line; clear empties the area
        "load_modules\n" + MAKE_LOG + """
        crashkeep dump follow | emit got3 -
        crashkeep list | emit listing4 -
        echo x > /tmp/x
        crashkeep save /tmp/x --name y --device /dev/mtd0ro 2> /tmp/ro.err
        echo "ro rc=$?"
        emit ro_err /tmp/ro.err
        crashkeep clear --all
        crashkeep list --json | emit list4 -
        dd if=/dev/mtd0 bs=524288 count=1 2>/dev/null | emit dd4 -
        # the block copier into the MTD device (MEMGETINFO, erase-block alignment)
        crashkeep copy /tmp/messages mtd:crashkeep --tail 65536 --seek 100000
        echo "copy rc=$?"
        tail -c 65536 /tmp/messages | emit want4 -
        dd if=/dev/mtd0 bs=1 skip=100000 count=65536 2>/dev/null | emit copied4 -
        """,
    ], timeout=400)
    c = run.console
    assert "save rc=0" in c and "save2 rc=0" in c, c[-3000:]
    # warm reboot
    assert run.files["got1"] == run.files["want1"]
    assert len(run.files["want1"]) == 65536
    recs = json.loads(run.files["list2"])["records"]
    assert [(r["name"], r["length"], r["source"]) for r in recs] == \
        [("messages", 65536, "/tmp/messages")]
    assert recs[0]["orig_size"] > 65536 and recs[0]["flags"] & phramrec.FLAG_TRUNCATED
    assert len(recs[0]["boot_id"]) == 36
    # dump --raw gives exactly the bytes dd reads from the kernel's device
    assert run.files["raw2"] == run.files["dd2"] and len(run.files["dd2"]) == REGION
    # and the host reads the same format out of real phram bytes
    found = phramrec.scan(run.files["dd2"], 2 * phramrec.UNIT, REGION)
    assert [r.name for r in found] == ["messages"]
    # panic
    assert run.files["got2"] == b"note before panic 2\n"
    # --follow kept the line written just before the panic
    assert run.files["got3"].endswith(b"LAST LINE BEFORE THE PANIC\n")
    assert len(run.files["got3"]) == 4096
    listing = run.files["listing4"].decode()
    for name in ("messages", "note", "follow"):
        assert name in listing
    # read-only node: one clear line, exit code of a device error
    assert "ro rc=4" in c
    assert run.files["ro_err"].startswith(b"crashkeep: Failed to open '/dev/mtd0ro' for writing")
    # clear --all: nothing left, every record byte zero
    assert json.loads(run.files["list4"]) == {"records": []}
    assert run.files["dd4"][2 * phramrec.UNIT:] == bytes(REGION - 2 * phramrec.UNIT)
    # copy into phram: dd reads back exactly the file's tail
    assert "copy rc=0" in c
    assert run.files["copied4"] == run.files["want4"] and len(run.files["want4"]) == 65536


def test_power_cut_during_follow_keeps_a_whole_version(testbed):
    """Pull the plug (SIGKILL QEMU, file-backed RAM) while `save --follow`
    mirrors a log that is rewritten as fast as the shell can: the next boot
    reads one whole version of it, whatever moment the cut hit."""
    import os
    import random
    assert testbed.binary, "build/out/crashkeep is not built (make -C build)"
    ram = os.path.join(testbed.tmp, "ram.img")
    rnd = random.Random(5)
    blob = bytes(rnd.getrandbits(8) for _ in range(150_000))
    run1 = testbed.run(["""
        load_modules
        v() { echo "BEGIN $1"; cat /testbed/blob.bin; echo "END $1"; }
        v 0 > /tmp/log
        crashkeep save --follow /tmp/log --name live --interval 0.01 --max-bytes 200K &
        sleep 2                         # its first save is down
        i=0
        while [ $i -lt 100000 ]; do
            i=$((i + 1))
            v $i > /tmp/log.new
            mv /tmp/log.new /tmp/log
            [ $i = 60 ] && echo "CK-CUT-NOW"
        done
        """], ram_file=ram, kill_on="CK-CUT-NOW", files={"testbed/blob.bin": blob},
        timeout=300)
    assert run1.killed
    # what the RAM held at the cut, read from the host with the format module
    region = testbed.read_ram(ram, PHRAM_START, REGION)
    at_cut = phramrec.scan(region, 2 * phramrec.UNIT, REGION)
    assert [r.name for r in at_cut] in (["live"], ["live", "live"])
    run2 = testbed.run(["""
        load_modules
        crashkeep dump live | emit got -
        crashkeep list --json | emit list -
        """], ram_file=ram)
    got = run2.files["got"]
    first = got.split(b"\n", 1)[0]
    assert first.startswith(b"BEGIN ")
    n = int(first[6:])
    assert got == b"BEGIN %d\n" % n + blob + b"END %d\n" % n
    assert 0 <= n <= 60 + 5
    recs = json.loads(run2.files["list"])["records"]
    assert [(r["name"], r["flags"] & phramrec.FLAG_FOLLOW) for r in recs] == \
        [("live", phramrec.FLAG_FOLLOW)]
