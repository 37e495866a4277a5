"""End to end on every target's real kernel (Debian 6.1 under QEMU TCG, the
out-of-tree modules from tests/e2e/kernels.py, the target's static binary and
busybox-static): aarch64 (virt, cortex-a53), armhf (virt, cortex-a15), mipsel
(Malta, 24Kf), and x86_64 for comparison.

1. boot 1 `crashkeep save` of a log, `save --follow` of another, a marker to
   /dev/kmsg, panic -> warm reset -> boot 2 `crashkeep boot` loads the modules
   itself (depends= order: pstore before ramoops on armhf/mipsel), salvages the
   panic record and both phram records to the virtual flash disk; the host
   reads the disk: the marker, the log bytes, the line written just before the
   panic.
2. `crashkeep ramoops extract` of the raw region, before ramoops is loaded,
   through /dev/mem and through a phram device over the same addresses, equals
   what the kernel then shows in /sys/fs/pstore.
"""
import os
import uuid

import pytest

import harness
from test_boot import bundle_files, bundles

pytestmark = pytest.mark.e2e

TARGETS = ["aarch64", "armhf", "mipsel"]
GUEST_BOARD = "/etc/crashkeep/board.conf"


@pytest.fixture(params=TARGETS)
def target(request):
    return request.param


def board_of(tb):
    import sys
    sys.path.insert(0, harness.ROOT)
    from crashkeep.formats import boardconf
    return boardconf.load(tb.board)


def summary(log):
    lines = [l for l in log.splitlines() if l.startswith("crashkeep: boot")]
    assert lines, log[-4000:]
    return lines[-1]


SAVE_AND_PANIC = r"""
load_modules
i=0
while [ $i -lt 200 ]; do echo "app log line $i of boot $BOOT" >> /tmp/app.log; i=$((i + 1)); done
crashkeep save /tmp/app.log --name app-log; echo "save-rc=$?"
emit app-log /tmp/app.log
: > /tmp/messages
crashkeep save --follow /tmp/messages --name follow --max-bytes 4K --interval 0.1 &
pid=$!
# wait until the follower has the file open (start-up takes seconds under TCG)
n=0
while ! ls -l /proc/$pid/fd 2>/dev/null | grep -q /tmp/messages && [ $n -lt 600 ]; do
    usleep 100000; n=$((n + 1))
done
echo "follow-open-after=$n"
echo "LAST LINE BEFORE THE PANIC {mark}" >> /tmp/messages
sleep 3
echo "{mark}" > /dev/kmsg
panic_now
"""


def test_save_panic_then_boot_salvages_to_flash(target_testbed):
    tb = target_testbed
    assert tb.binary, "the %s binary is not built" % tb.target
    disk = tb.make_disk("16M", "ext4")
    mark = "CKMARK-%s" % uuid.uuid4().hex[:12]
    run = tb.run([SAVE_AND_PANIC.replace("{mark}", mark),
                  'crashkeep boot; echo "boot-rc=$?"\n'], disk=disk, timeout=420)
    b1, b2 = run.boot_logs[0], run.boot_logs[1]
    assert "save-rc=0" in b1 and run.panicked[0], b1[-3000:]
    line = summary(b2)
    assert "after panic" in line and "boot-rc=0" in b2, b2[-4000:]
    names = bundles(run)
    assert len(names) == 1 and names[0].endswith("-panic"), names
    meta, files = bundle_files(run, names[0])
    dmesg = [d for n, d in files.items() if n.startswith("dmesg-ramoops-")]
    assert len(dmesg) == 1 and mark.encode() in dmesg[0], sorted(files)
    assert b"sysrq triggered crash" in dmesg[0]
    assert files["phram/app-log"] == run.files["app-log"]
    assert files["phram/follow"].endswith(("LAST LINE BEFORE THE PANIC %s\n" % mark).encode())
    assert meta["board"] == "qemu-" + tb.target
    assert meta["kernel"].startswith("6.1.") and meta["counters"]["panic_count"] == 1


EXTRACT = r"""
crashkeep ramoops extract /dev/mem --board {b} --out /tmp/mem; echo "mem rc=$?"
load_module mtd 2>/dev/null
load_module phram phram=rawoops,{addr:#x},{size:#x}
crashkeep ramoops extract mtd:rawoops --board {b} --out /tmp/mtd; echo "mtd rc=$?"
rmmod phram
load_modules
mount_pstore
for f in /sys/fs/pstore/*; do
    n=$(basename $f)
    emit "k-$n" $f
    cmp $f /tmp/mem/$n && echo "same mem $n"
    cmp $f /tmp/mtd/$n && echo "same mtd $n"
done
echo "raw files: $(ls /tmp/mem | tr '\n' ' ')"
"""


def test_raw_region_extract_equals_pstore(target_testbed):
    tb = target_testbed
    assert tb.binary, "the %s binary is not built" % tb.target
    b = board_of(tb)
    mark = "CKMARK-%s" % uuid.uuid4().hex[:12]
    run = tb.run(["load_modules\necho %s > /dev/kmsg\npanic_now\n" % mark,
                  EXTRACT.format(b=GUEST_BOARD, addr=b.get("ramoops.mem_address"),
                                 size=b.get("ramoops.mem_size"))], timeout=360)
    log = run.boot_logs[1]
    assert "mem rc=0" in log and "mtd rc=0" in log, log[-4000:]
    kernel = sorted(k[2:] for k in run.files if k.startswith("k-"))
    assert "dmesg-ramoops-0" in kernel, log[-4000:]
    assert mark.encode() in run.files["k-dmesg-ramoops-0"]
    for name in kernel:
        assert "same mem %s" % name in log, log[-4000:]
        assert "same mtd %s" % name in log, log[-4000:]
    assert "raw files: %s " % " ".join(kernel) in log
