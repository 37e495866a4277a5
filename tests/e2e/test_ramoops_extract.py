"""`crashkeep ramoops extract` in the guest, on the raw region BEFORE ramoops is
loaded (through /dev/mem and through a phram device over the same addresses),
against what the kernel then shows in /sys/fs/pstore for the same bytes."""
import json

import pytest

pytestmark = pytest.mark.e2e

BOARD = "/etc/crashkeep/board.conf"


def test_raw_region_equals_pstore(testbed):
    assert testbed.binary, "build/out/crashkeep is not built (make -C build)"
    run = testbed.run(boots=[
        "load_modules\npanic_now\n",
        """crashkeep ramoops extract /dev/mem --board %(b)s --out /tmp/mem; echo "mem rc=$?"
        load_module mtd
        load_module phram phram=rawoops,0x1f000000,0x80000
        crashkeep ramoops extract mtd:rawoops --board %(b)s --out /tmp/mtd; echo "mtd rc=$?"
        crashkeep ramoops list mtd:rawoops --board %(b)s --json | emit list -
        rmmod phram
        load_modules
        mount_pstore
        for f in /sys/fs/pstore/*; do
            n=$(basename $f)
            emit "k-$n" $f
            cmp $f /tmp/mem/$n && echo "same mem $n"
            cmp $f /tmp/mtd/$n && echo "same mtd $n"
            echo "mtime $n $(stat -c %%Y $f) $(stat -c %%Y /tmp/mem/$n)"
        done
        echo "raw files: $(ls /tmp/mem | tr '\\n' ' ')"
        """ % {"b": BOARD},
    ])
    log = run.boot_logs[1]
    assert "mem rc=0" in log and "mtd rc=0" in log, log[-3000:]
    kernel = sorted(k[2:] for k in run.files if k.startswith("k-"))
    assert "dmesg-ramoops-0" in kernel, log[-3000:]
    for name in kernel:
        assert "same mem %s" % name in log, log[-3000:]
        assert "same mtd %s" % name in log, log[-3000:]
    assert "raw files: %s " % " ".join(kernel) in log
    for line in log.splitlines():
        if line.startswith("mtime dmesg-"):
            _, _, k, ours = line.split()
            assert k == ours
    lst = json.loads(run.files["list"])
    z0 = lst["zones"][0]
    assert (z0["status"], z0["reason"], z0["compressed"]) == ("valid", "Panic", True)
    assert lst["order"] == "6.1" and lst["records"][0]["name"] == "dmesg-ramoops-0"
    assert run.files["k-dmesg-ramoops-0"].startswith(b"Panic#1 Part1\n")
