"""Hostile command lines and unlucky files (issue 11): every bad input is one line
`crashkeep: ...` and a non-zero exit, checked before anything is opened or cut."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QEMU_CONF = os.path.join(ROOT, "board-configs", "qemu-x86_64.conf")


def ck(*args, input=None, env=None, timeout=60, **kw):
    e = dict(os.environ, PYTHONPATH=ROOT)
    e.pop("CRASHKEEP_DEVICE", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "crashkeep", *args], input=input,
                          capture_output=True, env=e, cwd=ROOT, timeout=timeout, **kw)


def one_line_error(r, code=None):
    err = r.stderr.decode()
    assert r.returncode != 0, err
    if code is not None:
        assert r.returncode == code, (r.returncode, err)
    assert err.count("\n") == 1 and err.startswith("crashkeep: "), err
    assert "Traceback" not in err and "internal error" not in err, err
    return err


@pytest.fixture
def area(tmp_path):
    p = tmp_path / "phram.img"
    p.write_bytes(bytes(512 << 10))
    return str(p)


# -- item 5: non-finite and out-of-range numbers -----------------------------------
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e10", "-1", "NaN"])
def test_boot_timeout_rejects_nonfinite_at_parse_time(tmp_path, value):
    r = ck("boot", "--timeout", value, "--board", "/nonexistent.conf", "--root", str(tmp_path))
    err = one_line_error(r, 2)
    assert "--timeout" in err and "board" not in err.split("--timeout")[1]


@pytest.mark.parametrize("value", ["nan", "inf", "1e10", "0"])
def test_save_follow_interval_rejects_nonfinite(area, tmp_path, value):
    log = tmp_path / "log"
    log.write_bytes(b"x\n")
    r = ck("save", str(log), "--name", "x", "--follow", "--interval", value, "--device", area)
    err = one_line_error(r, 2)
    assert "--interval" in err


def test_typer_entry_checks_ranges_too(capsys):
    from crashkeep.cli.app import run_typer
    from crashkeep.entry import fast_main
    for entry in (fast_main, run_typer):
        rc = entry(["boot", "--timeout", "nan", "--board", "/nonexistent.conf"])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and "--timeout" in err, (entry, err)


# -- item 10: offsets that do not fit an off_t, checked before dst is touched --------
@pytest.mark.parametrize("flag,value", [("--skip", "0x8000000000000000"),
                                        ("--seek", str(1 << 64)),
                                        ("--count", str(1 << 64)),
                                        ("--tail", "0x8000000000000000")])
def test_copy_huge_offsets_leave_dst_alone(tmp_path, flag, value):
    src = tmp_path / "src"
    src.write_bytes(b"s" * 100)
    dst = tmp_path / "dst"
    dst.write_bytes(b"keep me\n")
    r = ck("copy", str(src), str(dst), flag, value)
    err = one_line_error(r, 2)
    assert flag in err
    assert dst.read_bytes() == b"keep me\n"


# -- item 12: usage errors are one line on the typer path too ------------------------
@pytest.mark.parametrize("argv", [["board", "check"], ["board", "check", "--bogus", "x"],
                                  ["board", "show"], ["ramoops", "list"],
                                  ["dump", "--bogus"], ["copy"]])
def test_usage_errors_are_one_line_both_entries(argv):
    one_line_error(ck(*argv), 2)


# -- item 6: a FIFO as --device or SOURCE is refused up front, naming it -------------
FIFO_CASES = [
    ["list", "--device", "{f}"],
    ["list", "--json", "--device", "{f}"],
    ["dump", "x", "--device", "{f}"],
    ["dump", "--raw", "--device", "{f}"],
    ["ramoops", "list", "{f}"],
    ["ramoops", "extract", "{f}", "--out", "{d}/out"],
    ["core", "analyze", "{f}"],
    ["save", "-", "--name", "x", "--device", "{f}"],
    ["clear", "x", "--device", "{f}"],
    ["clear", "--all", "--device", "{f}"],
    ["boot", "--board", QEMU_CONF, "--root", "{d}", "--keep", "{f}", "--dir", "{d}/flash"],
]


@pytest.mark.parametrize("argv", FIFO_CASES, ids=lambda a: "-".join(a[:2]))
def test_fifo_is_refused_and_named(tmp_path, argv):
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    argv = [a.format(f=fifo, d=str(tmp_path)) for a in argv]
    try:
        r = ck(*argv, input=b"hi\n", timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("%s blocked on a FIFO" % argv)
    if argv[0] == "boot":
        # boot goes on (pstore, then a note); the keep area is named in its one line
        assert "'%s'" % fifo in r.stderr.decode() + r.stdout.decode(), r
        return
    err = one_line_error(r, 4)
    assert "'%s'" % fifo in err and "FIFO" in err, err
