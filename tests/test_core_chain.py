"""Chaining the core handler (issue 15): `core install [--chain|--no-chain]` records
the pattern it replaces; `crashkeep core` keeps its record and passes the whole core
on to that handler, or into the file its pattern names; `core uninstall` puts the
pattern back exactly.

Real parts: real cores of a crashing program built here; in the first test the
host kernel's own core_pattern pipe (crash -> crashkeep -> the previous handler),
with gdb as the oracle for the core the previous handler got. The others feed a
real core on stdin with a fake /proc (a directory) so every % specifier has a
known value.
"""
import gzip
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time

import pytest

from test_core import (ROOT, PY, fake_root, make_area, make_board, read, read_bytes, records,
                       run_cli)
from test_unwind_gdb import (CorePattern, SRC_CHAIN, build, capture_core, gdb_threads,
                             pattern_writable, _unlimited_core)
from crashkeep.commands import core as corecmd
from crashkeep.ops import corechain

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/gcc"), reason="gcc from tests/setup.sh")

PREV = """#!/bin/sh
# a previous pipe handler: keeps what the kernel (or crashkeep) gives it
cat > "%(t)s/prev.core"
printf '%%s\\n' "$@" > "%(t)s/prev.args"
"""


def prev_handler(t):
    p = os.path.join(t, "prev.sh")
    with open(p, "w") as f:
        f.write(PREV % {"t": t})
    os.chmod(p, 0o755)
    return p


def wrapper(t, root):
    """The kernel runs the handler with no environment; --root (put before the `--`
    that ends the options) points it at our record."""
    w = os.path.join(t, "ck")
    with open(w, "w") as f:
        f.write("#!%s\nimport os, sys\nsys.path.insert(0, %r)\na = sys.argv[1:]\n"
                "i = a.index('--') if '--' in a else len(a)\na[i:i] = ['--root', %r]\n"
                "sys.stderr = open(%r, 'a')\nos.dup2(sys.stderr.fileno(), 2)\n"
                "os.environ['PYTHONPATH'] = %r\n"
                "os.execv(%r, [%r, '-m', 'crashkeep'] + a)\n"
                % (PY, ROOT, root, t + "/handler.err", ROOT, PY, PY))
    os.chmod(w, 0o755)
    return w


def elf_end(core):
    """Where the kernel's last byte is: the end of the last segment's file data."""
    phoff, = struct.unpack_from("<Q", core, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", core, 0x36)
    end = 0
    for i in range(phnum):
        _t, _f, off, _v, _p, filesz = struct.unpack_from("<IIQQQQ", core, phoff + i * phentsize)
        end = max(end, off + filesz)
    return end


def wait_for(path, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.1)
    return False


def test_real_kernel_pipe_chain_passes_the_core_on(tmp_path):
    """core_pattern = a pipe handler; `core install` chains by default; a real crash:
    crashkeep keeps its record and the previous handler gets the whole core, the same
    bytes crashkeep read (its gzip'd copy), which gdb reads as the crash."""
    if not pattern_writable():
        pytest.fail("core_pattern is not writable here: the pipe chain cannot be tested")
    t = tempfile.mkdtemp(prefix="ck", dir="/tmp")       # short paths: 127-character pattern
    try:
        exe = build(t, "chain", SRC_CHAIN, ["-O2"])
        img = make_area(t)
        board = make_board(t)
        with open(board, "a") as f:
            f.write("core.dir = %s/cores\n" % t)
        prev = "|%s %%P %%s %%e" % prev_handler(t)
        fr = fake_root(t, prev)
        p = run_cli("core", "install", "--root", fr, "--exe", wrapper(t, fr), "--board", board,
                    "--device", img)
        assert p.returncode == 0, p.stderr
        assert p.stdout.decode().endswith("chained to: %s\n" % prev)
        pattern = read(os.path.join(fr, "proc/sys/kernel/core_pattern")).strip()
        with CorePattern(pattern):
            proc = subprocess.Popen([exe, "arg-one"], preexec_fn=_unlimited_core,
                                    stdout=subprocess.DEVNULL)
            _, status = os.waitpid(proc.pid, 0)
            proc.returncode = 0
        assert os.WIFSIGNALED(status) and os.WCOREDUMP(status)
        saved = os.path.join(t, "cores", "core-chain-%d.gz" % proc.pid)
        assert wait_for(saved) and wait_for(os.path.join(t, "prev.args"))
        assert read(os.path.join(t, "prev.args")).split() == [str(proc.pid), "11", "chain"]
        got = read_bytes(os.path.join(t, "prev.core"))
        assert got == gzip.decompress(read_bytes(saved))
        assert len(got) == elf_end(got) > 0
        threads, order, _ = gdb_threads(exe, os.path.join(t, "prev.core"))
        names = [n for _, n in (threads[proc.pid] if order else threads[None])]
        assert "level3" in names, names
        i = names.index("level3")
        assert names[i:i + 4] == ["level3", "level2", "level1", "main"], names
        assert "core-chain-%d" % proc.pid in records(img)          # our record, too
    finally:
        shutil.rmtree(t, ignore_errors=True)


def _fake_proc(t, pid, cwd):
    proc = os.path.join(t, "proc")
    d = os.path.join(proc, str(pid))
    os.makedirs(d)
    with open(os.path.join(d, "status"), "w") as f:
        f.write("Name:\tchain\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\n"
                "NSpid:\t%d\t7\n" % pid)
    with open(os.path.join(d, "limits"), "w") as f:
        f.write("Limit                     Soft Limit           Hard Limit           Units\n"
                "Max core file size        4096                 unlimited            bytes\n")
    with open(os.path.join(d, "stat"), "w") as f:
        f.write("%d (chain) S " % pid + " ".join(["0"] * 35) + " 3 0 0\n")
    os.symlink("/usr/lib/my app/chain", os.path.join(d, "exe"))
    os.symlink(cwd, os.path.join(d, "cwd"))
    os.makedirs(os.path.join(proc, "sys/kernel"))
    with open(os.path.join(proc, "sys/kernel/core_uses_pid"), "w") as f:
        f.write("1\n")
    return proc


def _record(fr, prev, chain):
    d = os.path.join(fr, "run/crashkeep")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "core_pattern.prev"), "w") as f:
        f.write("%s\ncore_pipe_limit=0\nchain=%d\n" % (prev, chain))


def _handle(t, fr, proc, data, board=None):
    img = make_area(t)
    args = ["core", "--device", img, "--proc", proc, "--root", fr]
    if board:
        args += ["--board", board]
    return run_cli(*(args + ["--", "4242", "4243", "11", "1700000000", "chain", "1000"]),
                   input=data), img


def test_pipe_chain_byte_identical_and_every_specifier(tmp_path):
    t = str(tmp_path)
    data = read_bytes(capture_core(t, build(t, "chain", SRC_CHAIN, ["-O2"]))) + b"tail"
    proc = _fake_proc(t, 4242, t)
    fr = fake_root(t)
    _record(fr, "|%s %%P %%p %%i %%I %%u %%g %%d %%s %%t %%h %%e %%f %%E %%c %%C %%%% %%z x%%e"
            % prev_handler(t), 1)
    p, img = _handle(t, fr, proc, data)
    assert p.returncode == 0, p.stderr
    assert read_bytes(os.path.join(t, "prev.core")) == data
    host = os.uname().nodename.replace("/", "!")
    assert read(os.path.join(t, "prev.args")).split("\n")[:-1] == [
        "4242", "7", "4243", "4243", "1000", "100", "1", "11", "1700000000", host, "chain",
        "chain", "!usr!lib!my app!chain", "4096", "3", "%", "", "xchain"]
    assert "core-chain-4242" in records(img)


def test_no_chain_record_passes_nothing_on(tmp_path):
    t = str(tmp_path)
    data = read_bytes(capture_core(t, build(t, "chain", SRC_CHAIN, ["-O2"])))
    proc = _fake_proc(t, 4242, t)
    fr = fake_root(t)
    _record(fr, "|%s %%P" % prev_handler(t), 0)
    p, img = _handle(t, fr, proc, data)
    assert p.returncode == 0, p.stderr
    assert not os.path.exists(os.path.join(t, "prev.core"))
    assert "core-chain-4242" in records(img)


def test_previous_handler_that_stops_reading_costs_nothing(tmp_path):
    t = str(tmp_path)
    data = read_bytes(capture_core(t, build(t, "chain", SRC_CHAIN, ["-O2"]))) + bytes(4 << 20)
    proc = _fake_proc(t, 4242, t)
    fr = fake_root(t)
    _record(fr, "|/bin/true", 1)
    p, img = _handle(t, fr, proc, data)
    assert p.returncode == 0, p.stderr
    assert "core-chain-4242" in records(img)


def test_file_chain_writes_the_core_where_the_old_pattern_pointed(tmp_path):
    t = str(tmp_path)
    data = read_bytes(capture_core(t, build(t, "chain", SRC_CHAIN, ["-O2"])))
    cwd = os.path.join(t, "cwd")
    os.makedirs(os.path.join(cwd, "cores"))
    proc = _fake_proc(t, 4242, cwd)
    fr = fake_root(t)
    _record(fr, "cores/%e.%s.core", 1)                # relative: the process's cwd
    p, _ = _handle(t, fr, proc, data)
    assert p.returncode == 0, p.stderr
    # core_uses_pid = 1 and no %p: the kernel adds .<pid> (the namespace one)
    path = os.path.join(cwd, "cores", "chain.11.core.7")
    assert read_bytes(path) == data
    assert os.stat(path).st_mode & 0o777 == 0o600
    # capped at the board's core.max_bytes
    board = make_board(t)
    with open(board, "a") as f:
        f.write("core.max_bytes = 8K\n")
    _record(fr, os.path.join(t, "abs-%p.core"), 1)
    p, _ = _handle(t, fr, proc, data, board=board)
    assert p.returncode == 0, p.stderr
    assert read_bytes(os.path.join(t, "abs-7.core")) == data[:8192]
    # a file already there is not overwritten (O_EXCL, as the kernel does)
    p, img = _handle(t, fr, proc, b"other" + data, board=board)
    assert p.returncode == 0, p.stderr
    assert read_bytes(os.path.join(t, "abs-7.core")) == data[:8192]
    assert "core-chain-4242" in records(img)


@pytest.mark.parametrize("prev, argv, chained", [
    ("|/usr/lib/systemd/systemd-coredump %P %u %g %s %t %c %h", [], True),
    ("|/usr/lib/systemd/systemd-coredump %P %u %g %s %t %c %h", ["--no-chain"], False),
    ("/tmp/%e.%t.%p.%s.core", [], False),             # OpenWrt's default: a file
    ("/tmp/%e.%t.%p.%s.core", ["--chain"], True),
    ("core", [], False),
    ("|/usr/sbin/memfault-core-handler -c /etc/memfaultd.conf %P  ", [], True),
])
def test_install_records_and_uninstall_restores_exactly(tmp_path, prev, argv, chained):
    fr = fake_root(str(tmp_path), prev)
    cp = os.path.join(fr, "proc/sys/kernel/core_pattern")
    p = run_cli("core", "install", "--root", fr, "--exe", "/bin/crashkeep", *argv)
    assert p.returncode == 0, p.stderr
    assert ("chained to: " in p.stdout.decode()) == chained
    assert corechain.read_record(os.path.join(fr, corecmd.STATE_FILE)) == (prev, chained)
    # installed again (boot after boot): the record of the first stays
    assert run_cli("core", "install", "--root", fr, "--exe", "/bin/crashkeep").returncode == 0
    assert corechain.read_record(os.path.join(fr, corecmd.STATE_FILE)) == (prev, chained)
    # the choice can be changed without losing the pattern
    flip = "--no-chain" if chained else "--chain"
    assert run_cli("core", "install", "--root", fr, "--exe", "/bin/crashkeep",
                   flip).returncode == 0
    assert corechain.read_record(os.path.join(fr, corecmd.STATE_FILE)) == (prev, not chained)
    assert run_cli("core", "uninstall", "--root", fr).returncode == 0
    with open(cp) as f:
        assert f.read().rstrip("\n") == prev
    assert read(os.path.join(fr, "proc/sys/kernel/core_pipe_limit")).strip() == "0"


def test_install_chain_and_no_chain_together_is_one_line(tmp_path):
    fr = fake_root(str(tmp_path))
    p = run_cli("core", "install", "--root", fr, "--exe", "/bin/ck", "--chain", "--no-chain")
    assert p.returncode == 2 and p.stderr.count(b"\n") == 1


def test_help_says_chaining_is_the_default_for_a_pipe():
    p = run_cli("core", "install", "--help")
    text = re.sub(r"\s+", " ", p.stdout.decode())
    assert "Chains by default when a pipe handler was installed before" in text
    assert "--chain" in text and "--no-chain" in text
