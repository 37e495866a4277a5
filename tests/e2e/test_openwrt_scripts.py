"""The OpenWrt package's scripts on the QEMU board, with the real crashkeep
(issue 15): /lib/preinit/79_crashkeep run by preinit_main salvages a panic;
/etc/init.d/crashkeep (procd) installs the core handler and hands the bundle to
syslogd; `shutdown` writes the clean-shutdown marker.

Stand-ins (OpenWrt's procd, ubus, uci and /etc/preinit do not exist here): the
same recording shell functions as tests/test_packaging.py for boot_hook_add /
boot_run_hook and for /etc/rc.common + procd.sh; every crashkeep call the
scripts make is the real static binary on the real kernel, and syslogd is
BusyBox's."""
import os

import pytest

import harness

pytestmark = pytest.mark.e2e

FILES = os.path.join(harness.ROOT, "build", "openwrt", "crashkeep", "files")


def _standins():
    import sys
    sys.path.insert(0, os.path.join(harness.ROOT, "tests"))
    try:
        import test_packaging
    finally:
        sys.path.pop(0)
    return test_packaging.PREINIT_STANDIN, test_packaging.RC_COMMON_STANDIN


def _read(name):
    with open(os.path.join(FILES, name), "rb") as f:
        return f.read()


def test_preinit_and_procd_scripts_on_the_board(testbed):
    assert testbed.binary, "build/out/crashkeep is not built (make -C build)"
    preinit, rc_common = _standins()
    disk = testbed.make_disk("16M", "ext4")
    run = testbed.run(boots=[
        "load_modules\npanic_now\n",
        """mkdir -p /usr/bin /lib/preinit /etc/init.d /sbin
        ln -s /bin/crashkeep /usr/bin/crashkeep
        cp /testbed/79_crashkeep /lib/preinit/79_crashkeep
        cp /testbed/rc.common /etc/rc.common
        cp /testbed/crashkeep.init /etc/init.d/crashkeep
        chmod 755 /etc/rc.common /etc/init.d/crashkeep
        sh /testbed/preinit.sh; echo "preinit rc=$?"
        syslogd -O /tmp/messages
        /etc/init.d/crashkeep start; echo "start rc=$?"
        i=0; while [ $i -lt 30 ] && ! grep -q bundle= /tmp/messages; do sleep 1; i=$((i+1)); done
        echo "pattern: $(cat /proc/sys/kernel/core_pattern)"
        emit procd /tmp/procd
        emit messages /tmp/messages
        /etc/init.d/crashkeep shutdown; echo "shutdown rc=$?"
        """,
        "load_modules\ncrashkeep boot --board /etc/crashkeep/board.conf\n",
    ], disk=disk, files={"testbed/79_crashkeep": _read("crashkeep.preinit"),
                         "testbed/crashkeep.init": _read("crashkeep.init"),
                         "testbed/rc.common": rc_common.encode(),
                         "testbed/preinit.sh": preinit.encode()})
    log = run.boot_logs[1]
    assert "preinit went on: kept" in log and "preinit rc=0" in log, log[-3000:]
    line = [l for l in log.splitlines() if l.startswith("crashkeep: boot #")]
    assert line and "after panic" in line[0] and "salvaged" in line[0], log[-3000:]
    assert "start rc=0" in log and "shutdown rc=0" in log, log[-3000:]
    # what 90-crashkeep.conf sets on OpenWrt (the binary there is /usr/bin/crashkeep)
    assert "pattern: |/bin/crashkeep core handle -- %P %i %s %t %e %u\n" in log, log[-3000:]
    bundle = line[0].split("salvaged ")[1].split(" to ")[1].split()[0]
    msgs = [l for l in run.files["messages"].decode().splitlines() if "bundle=" in l]
    assert len(msgs) == 1 and "bundle=%s board=qemu-x86_64 reason=panic" % bundle in msgs[0], msgs
    procd = run.files["procd"].decode()
    assert "instance follow\n  command /usr/bin/crashkeep save --follow" in procd
    # the procd script's shutdown wrote the clean-shutdown marker
    assert "after clean (warm)" in run.boot_logs[2], run.boot_logs[2][-2000:]
