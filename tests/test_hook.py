"""initramfs/crashkeep-hook.sh, run by BusyBox sh as a board's /init would
source it (under set -eu): whatever the binary does -- missing, failing,
crashing, hanging, reading stdin -- the boot goes on, the caller's variables
are untouched and the hook leaves nothing behind.
"""
import os
import shutil
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOOK = os.path.join(ROOT, "initramfs", "crashkeep-hook.sh")
BUSYBOX = shutil.which("busybox") or "/bin/busybox"

CALLER = r"""
set -eu
rc=caller-rc; bin=caller-bin; board=caller-board
CRASHKEEP_BIN=%(bin)s
CRASHKEEP_BOARD=%(board)s
CRASHKEEP_BOOT_TIMEOUT=%(soft)s
CRASHKEEP_HOOK_GRACE=1
set -- first second
. %(hook)s
echo "AFTER rc=$rc bin=$bin board=$board args=$*"
set | grep '^crashkeep_hook' || echo "NO-LEFTOVERS"
type crashkeep_hook_run >/dev/null 2>&1 || echo "NO-FUNCTION"
"""


def fake(tmp_path, body):
    p = tmp_path / "crashkeep"
    p.write_text("#!%s sh\necho \"$*\" > %s/args\n%s\n" % (BUSYBOX, tmp_path, body))
    p.chmod(0o755)
    return str(p)


def source_hook(tmp_path, binary, soft="1", stdin=subprocess.DEVNULL):
    script = CALLER % {"bin": binary, "board": "/etc/crashkeep/board.conf", "soft": soft,
                       "hook": HOOK}
    t = time.monotonic()
    r = subprocess.run([BUSYBOX, "sh", "-c", script], capture_output=True, text=True,
                       timeout=60, stdin=stdin)
    return r, time.monotonic() - t


def check_boot_went_on(r):
    assert r.returncode == 0, r.stderr
    assert "AFTER rc=caller-rc bin=caller-bin board=caller-board args=first second" in r.stdout
    assert "NO-LEFTOVERS" in r.stdout
    assert "NO-FUNCTION" in r.stdout


def test_success_passes_the_board_and_timeout(tmp_path):
    r, _ = source_hook(tmp_path, fake(tmp_path, "exit 0"), soft="3")
    check_boot_went_on(r)
    assert r.stderr == ""
    assert (tmp_path / "args").read_text() == "boot --board /etc/crashkeep/board.conf " \
                                              "--timeout 3\n"


def test_missing_binary(tmp_path):
    r, _ = source_hook(tmp_path, str(tmp_path / "absent"))
    check_boot_went_on(r)
    assert "not found, skipping" in r.stderr


@pytest.mark.parametrize("body,status", [
    ("exit 3", 3),
    ("kill -SEGV $$", 139),        # a crash
    ("kill -ABRT $$", 134),
])
def test_failure_or_crash(tmp_path, body, status):
    r, _ = source_hook(tmp_path, fake(tmp_path, body))
    check_boot_went_on(r)
    assert "exited with status %d, booting on" % status in r.stderr


def test_hang_ignoring_sigterm_is_killed(tmp_path):
    # exec: the hung program is one process, like the real binary (the
    # timeout applet kills that process, not a tree).
    r, took = source_hook(tmp_path, fake(tmp_path, "trap '' TERM INT\nexec sleep 300"), soft="1")
    check_boot_went_on(r)
    assert "exited with status 137" in r.stderr          # SIGKILL
    assert took < 10, took                                # 1 s + 1 s grace (+1)


def test_never_reads_the_console(tmp_path):
    # The caller's stdin is a pipe that never ends; the binary reads stdin.
    rfd, wfd = os.pipe()
    try:
        r, took = source_hook(tmp_path, fake(tmp_path, "cat > /dev/null"), stdin=rfd)
    finally:
        os.close(rfd)
        os.close(wfd)
    check_boot_went_on(r)
    assert r.stderr == ""
    assert took < 5


@pytest.mark.parametrize("soft", ["", "x", "1.5", "1.2.3", "$(reboot)"])
def test_bad_timeout_values_do_not_break_the_shell(tmp_path, soft):
    r, _ = source_hook(tmp_path, fake(tmp_path, "exit 0"), soft="'%s'" % soft)
    check_boot_went_on(r)
    args = (tmp_path / "args").read_text()
    assert args.startswith("boot --board /etc/crashkeep/board.conf --timeout ")
    assert args.split()[-1] in ("8", "1.5")
