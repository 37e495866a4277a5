"""save / dump / list / clear / copy through the real command line, on file-backed areas."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QEMU_CONF = os.path.join(ROOT, "board-configs", "qemu-x86_64.conf")


def ck(*args, input=None, env=None, check=True):
    e = dict(os.environ, PYTHONPATH=ROOT)
    e.pop("CRASHKEEP_DEVICE", None)
    e.update(env or {})
    r = subprocess.run([sys.executable, "-m", "crashkeep", *args], input=input,
                       capture_output=True, env=e, cwd=ROOT)
    if check:
        assert r.returncode == 0, r.stderr.decode()
    return r


@pytest.fixture
def area(tmp_path):
    p = tmp_path / "phram.img"
    p.write_bytes(bytes(512 << 10))
    return str(p)


@pytest.fixture
def log(tmp_path):
    p = tmp_path / "messages"
    p.write_bytes(b"".join(b"Nov 26 06:%02d:00 router kernel: line %d\n" % (i % 60, i)
                           for i in range(20000)))
    return str(p)


def test_save_dump_list_clear_roundtrip(area, log):
    data = open(log, "rb").read()
    ck("save", log, "--name", "messages", "--max-bytes", "64K", "--device", area)
    assert ck("dump", "messages", "--device", area).stdout == data[-65536:]
    ck("save", "-", "--name", "note", "--device", area, input=b"hello\n")
    listing = ck("list", "--device", area).stdout.decode()
    assert "messages" in listing and "note" in listing and str(len(data)) in listing
    doc = json.loads(ck("list", "--json", "--device", area).stdout)
    recs = {r["name"]: r for r in doc["records"]}
    assert recs["messages"]["length"] == 65536 and recs["messages"]["orig_size"] == len(data)
    assert recs["messages"]["source"] == log and recs["note"]["source"] == "-"
    assert recs["note"]["seq"] > recs["messages"]["seq"]
    d = json.loads(ck("dump", "note", "--json", "--device", area).stdout)
    assert d["text"] == "hello\n" and d["name"] == "note"
    both = ck("dump", "--all", "--device", area).stdout
    assert both.startswith(b"==> messages <==\n" + data[-65536:]) and \
        both.endswith(b"==> note <==\nhello\n")
    ck("clear", "note", "--device", area)
    assert [r["name"] for r in json.loads(ck("list", "--json", "--device", area).stdout)
            ["records"]] == ["messages"]
    r = ck("clear", "note", "--device", area, check=False)
    assert r.returncode == 1 and b"no record 'note'" in r.stderr
    ck("clear", "--all", "--device", area)
    assert json.loads(ck("list", "--json", "--device", area).stdout) == {"records": []}
    assert open(area, "rb").read()[128:] == bytes((512 << 10) - 128)


def test_default_max_bytes_leaves_room_to_resave(area, log, tmp_path):
    big = tmp_path / "big"
    big.write_bytes(os.urandom(1 << 20))
    ck("save", str(big), "--name", "big", "--device", area)
    ck("save", str(big), "--name", "big", "--device", area)
    got = ck("dump", "big", "--device", area).stdout
    assert 200_000 < len(got) < 256 << 10 and big.read_bytes().endswith(got)


def test_dump_raw_is_dd_of_the_whole_region(area, log, tmp_path):
    ck("save", log, "--name", "messages", "--device", area)
    raw = ck("dump", "--raw", "--device", area).stdout
    dd = subprocess.run(["dd", "if=" + area, "bs=%d" % (512 << 10), "count=1", "status=none"],
                        capture_output=True, check=True).stdout
    assert raw == dd and len(raw) == 512 << 10
    ck("dump", "--raw", "--device", area, "--out", str(tmp_path / "raw.bin"))
    assert (tmp_path / "raw.bin").read_bytes() == dd


def test_dump_all_out_dir_and_binary_json(area, tmp_path):
    blob = bytes(range(256))
    ck("save", "-", "--name", "bin", "--device", area, input=blob)
    ck("save", "-", "--name", "txt", "--device", area, input=b"t\n")
    ck("dump", "--all", "--out", str(tmp_path / "out"), "--device", area)
    assert (tmp_path / "out" / "bin").read_bytes() == blob
    assert (tmp_path / "out" / "txt").read_bytes() == b"t\n"
    import base64
    doc = json.loads(ck("dump", "--all", "--json", "--device", area).stdout)
    assert base64.b64decode(doc[0]["base64"]) == blob and doc[1]["text"] == "t\n"


def test_no_space_then_evict(tmp_path):
    small = tmp_path / "small.img"
    small.write_bytes(bytes(8192))
    dev = ["--device", str(small)]
    for n in ("a", "b", "c"):
        ck("save", "-", "--name", n, "--max-bytes", "2000", *dev, input=os.urandom(2000))
    r = ck("save", "-", "--name", "d", *dev, "--max-bytes", "3000", input=os.urandom(3000),
           check=False)
    assert r.returncode == 5 and b"--evict" in r.stderr
    assert r.stderr.count(b"\n") == 1
    ck("save", "-", "--name", "d", "--max-bytes", "3000", "--evict", *dev,
       input=os.urandom(3000))
    names = [x["name"] for x in json.loads(ck("list", "--json", *dev).stdout)["records"]]
    assert "d" in names and "a" not in names


def test_errors_are_one_line(area, log, tmp_path):
    r = ck("save", log, "--name", "bad/name", "--device", area, check=False)
    assert r.returncode == 2 and r.stderr.count(b"\n") == 1
    r = ck("save", str(tmp_path / "nope"), "--name", "x", "--device", area, check=False)
    assert r.returncode == 4 and b"Failed to read" in r.stderr
    r = ck("list", "--device", str(tmp_path / "missing.img"), check=False)
    assert r.returncode == 4 and b"Failed to open" in r.stderr
    tiny = tmp_path / "tiny.img"
    tiny.write_bytes(bytes(100))
    r = ck("list", "--device", str(tiny), check=False)
    assert r.returncode == 4 and b"too small" in r.stderr
    r = ck("clear", "--device", area, check=False)
    assert r.returncode == 2


def test_default_device_comes_from_the_board(area, log):
    # the qemu board names phram 'crashkeep': without that MTD device we say so
    r = ck("list", "--board", QEMU_CONF, check=False)
    assert r.returncode == 4 and b"Failed to find MTD device 'crashkeep'" in r.stderr
    r = ck("list", env={"CRASHKEEP_BOARD": "/nonexistent.conf"}, check=False)
    assert r.returncode == 2 and b"/nonexistent.conf" in r.stderr
    # $CRASHKEEP_DEVICE overrides the board, --device overrides both
    ck("save", log, "--name", "m", env={"CRASHKEEP_DEVICE": area})
    assert b"m " in ck("list", "--board", QEMU_CONF, "--device", area).stdout


def test_follow_mirrors_a_growing_log(area, tmp_path):
    log = tmp_path / "messages"
    log.write_bytes(b"first\n")
    e = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.Popen([sys.executable, "-m", "crashkeep", "save", "--follow", str(log),
                          "--name", "messages", "--interval", "0.05", "--device", area,
                          "--max-bytes", "1000"], env=e, stderr=subprocess.PIPE)

    def wait_for(want):
        for _ in range(200):
            r = ck("dump", "messages", "--device", area, check=False)
            if r.returncode == 0 and r.stdout == want:
                return
            time.sleep(0.05)
        raise AssertionError("never saw %r" % want[-40:])
    try:
        wait_for(b"first\n")
        with open(log, "ab") as f:
            for i in range(300):
                f.write(b"line %d\n" % i)
        wait_for(log.read_bytes()[-1000:])
        log.write_bytes(b"rotated\n")            # logrotate: the file starts over
        wait_for(b"rotated\n")
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0, p.stderr.read()
    doc = json.loads(ck("list", "--json", "--device", area).stdout)
    assert [r["flags"] & 4 for r in doc["records"]] == [4]


def test_save_runs_without_typer(area, log):
    code = ("import sys; from crashkeep.cli.main import main; "
            "rc = main(['save', %r, '--name', 'x', '--device', %r]); "
            "rc |= main(['dump', 'x', '--device', %r, '--out', '/dev/null']); "
            "rc |= main(['list', '--device', %r]); "
            "assert rc == 0; assert 'typer' not in sys.modules and 'click' not in sys.modules; "
            "assert 'crashkeep.system.blockcopy' not in sys.modules" % (log, area, area, area))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 0, r.stderr


def test_copy_command(tmp_path, log):
    out = tmp_path / "o"
    ck("copy", log, str(out), "--tail", "1000", "--seek", "10")
    assert out.read_bytes() == bytes(10) + open(log, "rb").read()[-1000:]
    r = ck("copy", log, str(out), "--tail", "5", "--skip", "3", check=False)
    assert r.returncode == 2


def test_save_proc_file_and_empty_file(area, tmp_path):
    ck("save", "/proc/self/status", "--name", "status", "--device", area)
    got = ck("dump", "status", "--device", area).stdout
    assert got.startswith(b"Name:") and b"VmRSS" in got
    (tmp_path / "empty").write_bytes(b"")
    ck("save", str(tmp_path / "empty"), "--name", "empty", "--device", area)
    assert ck("dump", "empty", "--device", area).stdout == b""
    ck("save", "/proc/self/status", "--name", "small", "--max-bytes", "10", "--device", area)
    small = ck("dump", "small", "--device", area).stdout
    assert len(small) == 10 and small.endswith(b"\n")


def _put_badly_named(path, name, data):
    """A record with valid CRCs under a name `save` refuses (crafted or corrupted)."""
    from crashkeep.system import keeparea
    from crashkeep.formats import phramrec
    real = phramrec.check_name
    phramrec.check_name = lambda n: None
    try:
        a = keeparea.open_area(path)
        a.put(name, data, wall_time=1700000000, uptime_ms=1, boot_id="")
        a.close()
    finally:
        phramrec.check_name = real


def test_dump_all_never_writes_outside_out_dir(area, tmp_path):
    """Issue 11 item 4: names read back are checked as on write: `dump --all --out D`
    writes every record inside D under a safe name, reports the bad ones, exit 0."""
    ck("save", "-", "--name", "good", "--device", area, input=b"good\n")
    bad = ["../../escaped", "..", ".", "a\x00b"]
    for i, n in enumerate(bad):
        _put_badly_named(area, n, b"bad %d\n" % i)
    out = tmp_path / "deep" / "er" / "out"
    r = ck("dump", "--all", "--out", str(out), "--device", area, check=False)
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "deep" / "escaped").exists()
    files = sorted(os.listdir(out))
    assert "good" in files and len(files) == 5, files
    got = sorted((out / f).read_bytes() for f in files)
    assert got == sorted([b"good\n"] + [b"bad %d\n" % i for i in range(4)])
    assert r.stderr.count(b"bad name") == 4 and r.stderr.count(b"\n") == 4, r.stderr
    listed = ck("list", "--device", area).stdout.decode()
    assert "good" in listed and "/" not in listed.split(":", 1)[1] and "\x00" not in listed
    for f in files:          # every record is reachable by the name list shows
        assert ck("dump", f, "--device", area).stdout in got
    doc = json.loads(ck("dump", "--all", "--json", "--device", area).stdout)
    assert sum(1 for d in doc if d.get("bad_name")) == 4
