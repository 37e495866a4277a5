"""`crashkeep board check --live` on a real kernel (issue 15): ramoops loaded with
the board's parameters is ok; loaded with another record size and ECC it is one
line naming both (read from /sys/module/ramoops/parameters, which the kernel's
ramoops writes back after probing)."""
import pytest

pytestmark = pytest.mark.e2e

BOARD = "/etc/crashkeep/board.conf"


def test_live_check_on_the_running_kernel(testbed):
    assert testbed.binary, "build/out/crashkeep is not built (make -C build)"
    run = testbed.run(boots=[
        """load_modules
        crashkeep board check --live %(b)s; echo "good rc=$?"
        cat /sys/module/pstore/parameters/backend | emit backend -
        rmmod ramoops
        load_module ramoops mem_address=0x1f000000 mem_size=0x80000 record_size=0x1000 \\
            console_size=0x10000 ftrace_size=0 pmsg_size=0x10000 max_reason=2 ecc=16
        crashkeep board check --live %(b)s 2>&1; echo "bad rc=$?"
        """ % {"b": BOARD},
    ])
    log = run.boot_logs[0]
    assert "good rc=0" in log, log[-3000:]
    assert "bad rc=2" in log, log[-3000:]
    lines = [l for l in log.splitlines() if l.startswith("ramoops is loaded with")]
    assert lines == ["ramoops is loaded with record_size=0x1000, the board says 0x10000; "
                     "ecc=0x10, the board says 0x0: records are read from the wrong place "
                     "(rmmod ramoops and load it with `crashkeep board modules`, or fix the "
                     "board config)"], log[-3000:]
    # what pstore_problems relies on: the registered backend's name is there
    assert run.files["backend"].strip() == b"ramoops"
