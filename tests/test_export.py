"""`crashkeep export` and the export step of `crashkeep boot` (issue 15): the spool,
the syslog line, the command hook, stdout formats, and faults.

Real parts: the dmesg records are the kernel's own (tests/fixtures/ramoops,
written by a real panic); /dev/log is a real AF_UNIX datagram socket (and, in
one test, BusyBox syslogd itself in a chroot); the hook is a real /bin/sh
command whose every completed delivery is counted. The boot runs on the fake
root of tests/portable/test_salvage.py (a directory tree standing in for
/sys, /proc, the keep area and the flash), as the other salvage tests do.
"""
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "portable"))
import test_salvage as core  # noqa: E402  (the fake root of the portable salvage tests)

from crashkeep.cli import main as entry  # noqa: E402
from crashkeep.commands import boot as salvage  # noqa: E402
from crashkeep.commands.export import bundles_in  # noqa: E402
from crashkeep.formats import boardconf  # noqa: E402
from crashkeep.ops import export  # noqa: E402

ROOT = os.path.dirname(HERE)
FIX = os.path.join(HERE, "fixtures", "ramoops", "plain-oops-panic", "pstore")


def fixture(name):
    with open(os.path.join(FIX, name), "rb") as f:
        return f.read()


REAL = [("dmesg-ramoops-0", fixture("dmesg-ramoops-0")),
        ("dmesg-ramoops-1", fixture("dmesg-ramoops-1"))]

HOOK = r"""
n=$(cat "$CK_T/count.$CRASHKEEP_BUNDLE" 2>/dev/null || echo 0)
if [ -f "$CK_T/fail" ]; then echo "upload refused" >&2; exit 7; fi
[ -f "$CK_T/hang" ] && { sleep 60 & echo $! > "$CK_T/sleeper"; wait; }
echo "$1|$2|$CRASHKEEP_EXPORT_ATTEMPT|$CRASHKEEP_REASON|$CRASHKEEP_SUMMARY" >> "$CK_T/seen"
echo $((n + 1)) > "$CK_T/count.$CRASHKEEP_BUNDLE"
"""


def make_root(tmp, pstore=REAL, keep=core.KEEP, syslog=True, command=True, timeout=5):
    root = core.make_root(pstore, keep)
    hook = os.path.join(tmp, "hook.sh")
    with open(hook, "w") as f:
        f.write(HOOK)
    os.environ["CK_T"] = tmp
    with open(root + "/board.conf", "a") as f:
        f.write("export.syslog = %s\n" % ("yes" if syslog else "no"))
        if command:
            f.write("export.command = sh %s \"$1\" \"$2\"\n" % hook)
        f.write("export.timeout = %d\n" % timeout)
    return root


class LogSocket:
    """A syslog daemon's /dev/log: a bound AF_UNIX datagram socket."""

    def __init__(self, path):
        self.path = path
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(path)
        self.s.settimeout(0)

    def lines(self):
        out = []
        while True:
            try:
                out.append(self.s.recv(65536).decode())
            except BlockingIOError:
                return out

    def close(self):
        self.s.close()
        os.unlink(self.path)


def seen(tmp):
    p = os.path.join(tmp, "seen")
    return open(p).read().splitlines() if os.path.exists(p) else []


def counts(tmp):
    return {n.split(".", 1)[1]: int(open(os.path.join(tmp, n)).read())
            for n in os.listdir(tmp) if n.startswith("count.")}


def tree(d):
    """{relative path: bytes} of every file under d."""
    out = {}
    for base, _, files in os.walk(d):
        for f in files:
            p = os.path.join(base, f)
            out[os.path.relpath(p, d)] = open(p, "rb").read()
    return out


def records_only(t):
    return {k: v for k, v in t.items() if not os.path.basename(k).startswith(".export-")}


def board(root):
    return boardconf.load(root + "/board.conf")


def spool(root, cut=None, budget=30):
    return export.run(board(root), bundles_in(core.flash_dir(root)), time.monotonic() + budget,
                      cut=cut, root=root)


LINE = re.compile(r"^<(\d+)>([A-Z][a-z]{2}) ([ 1-3]\d) (\d\d):(\d\d):(\d\d) crashkeep\[(\d+)\]: "
                  r"(.*)$")


def test_boot_hands_the_new_bundle_to_syslog_and_the_hook(tmp_path):
    t = str(tmp_path)
    root = make_root(t)
    log = LogSocket(root + "/dev/log")
    try:
        code, line, r = core.run(root)
        assert code == 0, line
        assert "exported 2" in line, line
        got = log.lines()
    finally:
        log.close()
    assert len(got) == 1
    m = LINE.match(got[0])
    assert m, got
    assert int(m.group(1)) == 3 * 8 + 2           # daemon.crit for a panic
    assert int(m.group(7)) == os.getpid()
    assert m.group(8) == ("bundle=%s board=fake reason=panic boot=1 panics=1 files=4: "
                          "Kernel panic - not syncing: Fatal exception" % r.bundle)
    d = core.flash_dir(root) + "/" + r.bundle
    assert seen(t) == ["%s|%s/meta.json|1|panic|%s" % (d, d, m.group(8))]
    assert counts(t) == {r.bundle: 1}
    assert os.path.exists(d + "/.export-syslog") and os.path.exists(d + "/.export-command")
    # the records are untouched, the spool marks are the only additions
    assert sorted(core.saved_files(root)) == sorted(
        core.EXPECTED[:0] + [(n, dt) for n, dt in REAL] +
        [("phram/" + n, dt) for n, dt in core.KEEP])


def test_an_exported_bundle_is_never_sent_again(tmp_path, capsys):
    t = str(tmp_path)
    root = make_root(t)
    log = LogSocket(root + "/dev/log")
    try:
        assert core.run(root)[0] == 0
        first = log.lines()
        for _ in range(2):
            rc = entry.main(["export", "--new", "--board", root + "/board.conf", "--root", root])
            assert rc == 0
            assert "0 sent, 0 failed" in capsys.readouterr().out
        again = log.lines()
    finally:
        log.close()
    assert len(first) == 1 and again == []
    assert list(counts(t).values()) == [1]


def test_hook_failure_keeps_the_bundle_and_retries(tmp_path, capsys):
    t = str(tmp_path)
    root = make_root(t, syslog=False)
    open(os.path.join(t, "fail"), "w").close()
    code, line, r = core.run(root)
    assert code == 0                       # a failing transport never fails the boot
    assert "export: 1 deferred (export.command: exit status 7: upload refused)" in line, line
    d = core.flash_dir(root) + "/" + r.bundle
    before = records_only(tree(d))
    assert not os.path.exists(d + "/.export-command")
    rc = entry.main(["export", "--new", "--board", root + "/board.conf", "--root", root])
    cap = capsys.readouterr()
    assert rc == 1 and "0 sent, 1 failed" in cap.out
    assert "via command: export.command: exit status 7" in cap.err
    os.unlink(os.path.join(t, "fail"))
    rc = entry.main(["export", "--new", "--board", root + "/board.conf", "--root", root])
    assert rc == 0 and "1 sent, 0 failed" in capsys.readouterr().out
    assert records_only(tree(d)) == before              # nothing deleted or changed
    assert [s.split("|")[2] for s in seen(t)] == ["3"]  # third attempt, one delivery
    assert counts(t) == {r.bundle: 1}


def test_a_hanging_hook_is_killed_with_what_it_started(tmp_path):
    t = str(tmp_path)
    root = make_root(t, syslog=False, timeout=1)
    open(os.path.join(t, "hang"), "w").close()
    t0 = time.monotonic()
    code, line, r = core.run(root)
    took = time.monotonic() - t0
    assert code == 0 and "timed out after 1s" in line, line
    assert took < 10
    pid = int(open(os.path.join(t, "sleeper")).read())
    for _ in range(50):
        if not os.path.exists("/proc/%d" % pid) or \
                open("/proc/%d/stat" % pid).read().split()[2] == "Z":
            break
        time.sleep(0.1)
    else:
        pytest.fail("the hook's child %d outlived the timeout" % pid)
    assert counts(t) == {}
    assert not os.path.exists(core.flash_dir(root) + "/" + r.bundle + "/.export-command")


def test_boot_never_waits_past_its_own_timeout_for_export(tmp_path):
    """A hook allowed 60 s still ends before boot's deadline (minus the unmount margin)."""
    t = str(tmp_path)
    root = make_root(t, syslog=False, timeout=60)
    open(os.path.join(t, "hang"), "w").close()
    t0 = time.monotonic()
    code, line, _ = core.run(root, timeout=3)
    assert time.monotonic() - t0 < 3.5
    assert code == 0 and "deferred" in line, line


class Cut(BaseException):
    pass


def _two_bundles(root):
    """Two bundles salvaged by a boot that exports nothing (no transports)."""
    quiet = root + "/quiet.conf"
    with open(quiet, "w") as f:
        f.write(core.BOARD % (20, "4M") + "export.syslog = no\n")
    other = os.path.join(HERE, "fixtures", "ramoops", "plain-oops-panic-6.12", "pstore",
                         "dmesg-ramoops-1")
    for n in range(2):
        core.set_boot(root, n + 1)
        code, line, _ = salvage.run_boot(boardconf.load(quiet), root, 30,
                                         keep=root + "/keep.img", now=1800000000 + n)
        assert code == 0, line
        shutil.copy(other, root + "/sys/fs/pstore/dmesg-ramoops-5")
    return [n for _, n in salvage.list_bundles(core.flash_dir(root))]


@pytest.mark.parametrize("transport", ["syslog", "command"])
@pytest.mark.parametrize("step", ["attempt", "accepted", "marked"])
def test_power_cut_during_export_retried_never_lost(tmp_path, transport, step):
    """Two bundles; the run dies at `step` of `transport` for the first one (as a power
    cut would: nothing after it happens), the next run finishes. Every bundle reaches
    both transports. A cut after the transport took the bundle and before its mark
    reached flash is the one case of a second delivery: same bundle id, next attempt."""
    t = str(tmp_path)
    root = make_root(t)
    log = LogSocket(root + "/dev/log")
    try:
        names = _two_bundles(root)
        assert len(names) == 2 and counts(t) == {} and log.lines() == []
        fired = []

        def cut(s):
            if s == "%s %s" % (step, transport) and not fired:
                fired.append(s)
                raise Cut(s)
        with pytest.raises(Cut):
            export.run(board(root), bundles_in(core.flash_dir(root)), time.monotonic() + 30,
                       cut=cut, root=root)
        res = spool(root)
        assert res.failed == [] and res.left == 0
        lines = log.lines()
    finally:
        log.close()
    twice = step == "accepted"
    ids = [re.search(r"bundle=(\S+)", ln).group(1) for ln in lines]
    c = counts(t)
    assert ids.count(names[0]) == (2 if twice and transport == "syslog" else 1)
    assert c[names[0]] == (2 if twice and transport == "command" else 1)
    assert ids.count(names[1]) == 1 and c[names[1]] == 1
    for name in names:
        d = core.flash_dir(root) + "/" + name
        assert os.path.exists(d + "/.export-syslog") and os.path.exists(d + "/.export-command")
    if twice and transport == "command":
        assert [s.split("|")[2] for s in seen(t) if names[0] in s] == ["1", "2"]


def test_syslog_down_costs_no_flash_write_and_is_sent_when_up(tmp_path):
    t = str(tmp_path)
    root = make_root(t, command=False)
    code, line, r = core.run(root)          # no /dev/log: no syslogd yet (preinit, S01)
    assert code == 0 and "Failed to connect to" in line, line
    d = core.flash_dir(root) + "/" + r.bundle
    assert not [n for n in os.listdir(d) if n.startswith(".export")]
    log = LogSocket(root + "/dev/log")
    try:
        res = spool(root)
        assert res.sent == [(r.bundle, "syslog")]
        assert len(log.lines()) == 1
    finally:
        log.close()


def test_stdout_tar_and_json(tmp_path):
    t = str(tmp_path)
    root = make_root(t, syslog=False, command=False)
    code, line, r = core.run(root)
    assert code == 0, line
    d = core.flash_dir(root)
    env = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.run([sys.executable, "-m", "crashkeep", "export", "1", "--dir", d],
                       capture_output=True, env=env, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    with tarfile.open(fileobj=io.BytesIO(p.stdout)) as tf:
        got = {m.name: tf.extractfile(m).read() for m in tf.getmembers()}
    want = {r.bundle + "/" + k: v for k, v in records_only(tree(d + "/" + r.bundle)).items()}
    assert got == want and r.bundle + "/meta.json" in got
    p = subprocess.run([sys.executable, "-m", "crashkeep", "export", r.bundle, "--dir", d,
                        "--format", "json"], capture_output=True, env=env, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    files = {f["name"]: f for f in doc["files"]}
    assert files["dmesg-ramoops-1"]["data"].encode() == fixture("dmesg-ramoops-1")
    assert doc["meta"]["bundle"] == r.bundle
    # --new: each bundle once, then marked for stdout
    for want_n in (1, 0):
        p = subprocess.run([sys.executable, "-m", "crashkeep", "export", "--new", "--dir", d,
                            "--format", "json", "--board", root + "/board.conf"],
                           capture_output=True, env=env, cwd=ROOT)
        assert p.returncode == 0, p.stderr
        assert len(p.stdout.splitlines()) == want_n


def test_export_usage_errors_are_one_line(tmp_path, capsys):
    for argv in (["export"], ["export", "1", "--new"], ["export", "1", "--format", "zip"]):
        assert entry.main(argv + ["--dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("crashkeep: export"), err


def test_rfc3164_line_is_parsed_by_busybox_syslogd(tmp_path):
    """BusyBox syslogd (busybox-static, in a chroot so its /dev/log is ours) logs the
    line with our tag, pid, facility and severity."""
    if os.geteuid() != 0:
        pytest.fail("BusyBox syslogd needs a chroot here (root)")
    t = str(tmp_path)
    root = make_root(t, command=False)
    for d in ("bin", "dev", "var/log", "tmp"):
        os.makedirs(root + "/" + d, exist_ok=True)
    shutil.copy("/bin/busybox", root + "/bin/busybox")
    sl = subprocess.Popen(["chroot", root, "/bin/busybox", "syslogd", "-n", "-O",
                           "/var/log/messages"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            if os.path.exists(root + "/dev/log"):
                break
            time.sleep(0.05)
        code, line, r = core.run(root)
        assert code == 0 and "exported 1" in line, line
        for _ in range(100):
            text = open(root + "/var/log/messages").read() \
                if os.path.exists(root + "/var/log/messages") else ""
            if "bundle=" in text:
                break
            time.sleep(0.05)
    finally:
        sl.kill()
        sl.wait()
    want = (r" daemon\.crit crashkeep\[%d\]: bundle=%s board=fake reason=panic boot=1 panics=1 "
            r"files=4: Kernel panic - not syncing: Fatal exception$" % (os.getpid(), r.bundle))
    assert re.search(want, text, re.M), text


def test_no_socket_syscall_never_fails_the_boot(tmp_path, monkeypatch):
    """A kernel built without networking has no socket(2) (ENOSYS): boot still
    reports its salvage, and export leaves the bundle for later."""
    import _socket

    def nosys(*a, **k):
        raise OSError(38, "Function not implemented")
    monkeypatch.setattr(_socket, "socket", nosys)
    t = str(tmp_path)
    root = make_root(t, command=False)
    code, line, r = core.run(root)
    assert code == 0 and "salvaged" in line and "Function not implemented" in line, line
    assert not [n for n in os.listdir(core.flash_dir(root) + "/" + r.bundle)
                if n.startswith(".export")]
