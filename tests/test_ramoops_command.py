"""`crashkeep ramoops extract|list` end to end on the kernel fixtures (CPython)."""
import gzip
import json
import os
import sys

import pytest

from crashkeep.cli.main import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures", "ramoops")
sys.path.insert(0, os.path.join(ROOT, "tests", "portable"))
from test_ramoops_fixtures import check_ftrace_text  # noqa: E402  (the portable set's own helper)

CASES = sorted(d for d in os.listdir(FIX) if os.path.exists(os.path.join(FIX, d, "case.json")))


def image(tmp_path, case, pad_before=0):
    meta = json.load(open(os.path.join(FIX, case, "case.json")))
    data = gzip.open(os.path.join(FIX, case, "region.bin.gz")).read()
    path = tmp_path / (case + ".img")
    path.write_bytes(b"\xa5" * pad_before + data + b"\x5a" * 4096)
    return str(path), meta


def size_args(meta):
    p = meta["params"]
    args = ["--mem-size", str(p["mem_size"])]
    for k in ("record_size", "console_size", "ftrace_size", "pmsg_size", "ecc"):
        args += ["--" + k.replace("_", "-"), "0x%x" % p[k]]
    return args + ["--cpus", str(meta["cpus"])]


@pytest.mark.parametrize("case", CASES)
def test_extract_equals_kernel_files(tmp_path, case, capsys):
    img, meta = image(tmp_path, case)
    out = tmp_path / "out"
    args = ["ramoops", "extract", img, "--out", str(out)] + size_args(meta)
    if "pstore.compress=none" in meta["cmdline"]:
        args.append("--no-inflate")
    assert main(args) == 0
    got = sorted(os.listdir(out)) if out.exists() else []
    assert got == sorted(meta["files"])
    for name in got:
        kernel = os.path.join(FIX, case, "pstore", name)
        if os.path.exists(kernel):
            with open(kernel, "rb") as f:
                assert (out / name).read_bytes() == f.read()
        elif name.startswith("ftrace-"):
            # the kernel's text form (names from kallsyms): every number of every line
            assert check_ftrace_text((out / name).read_bytes(), kernel + ".gz") > 0
        else:
            with gzip.open(kernel + ".gz", "rb") as f:
                assert (out / name).read_bytes() == f.read()
        if name.startswith("dmesg-"):
            # mtime from the ==== header, as the kernel set it
            st = os.stat(out / name)
            assert int(st.st_mtime) == meta["files"][name]["mtime"]
            assert st.st_mtime_ns % 1000000000 % 1000 == 0     # microseconds, as in ====
    text = capsys.readouterr().out
    assert ("no records" in text) == (not got)


def test_board_config_and_offset(tmp_path):
    # the QEMU RAM-file layout: the region at 0x1f000 of an image, params from a board
    img, meta = image(tmp_path, "deflate-oops-panic", pad_before=0x1F000)
    conf = tmp_path / "b.conf"
    p = meta["params"]
    conf.write_text("board.name = t\nboard.kernel = 6.1\nramoops.mem_address = 0x1f000000\n"
                    "ramoops.mem_size = 0x%x\nramoops.record_size = 0x%x\n"
                    "ramoops.console_size = 0x%x\nramoops.ftrace_size = 0\n"
                    "ramoops.pmsg_size = 0x%x\n" % (p["mem_size"], p["record_size"],
                                                     p["console_size"], p["pmsg_size"]))
    out = tmp_path / "o"
    assert main(["ramoops", "extract", img, "--board", str(conf), "--offset", "0x1f000",
                 "--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == sorted(meta["files"])
    for name in meta["files"]:
        assert (out / name).read_bytes() == open(os.path.join(FIX, "deflate-oops-panic",
                                                               "pstore", name), "rb").read()


def test_list_json(tmp_path, capsys):
    img, meta = image(tmp_path, "ecc-uncorrectable")
    assert main(["ramoops", "list", img, "--json"] + size_args(meta)) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["order"] in ("6.1", "6.2") and d["ecc"] == 16
    z = d["zones"]
    assert [x["status"] for x in z[:3]] == ["valid", "valid", "empty"]
    assert z[1]["ecc"] == {"corrected": 1, "bad_blocks": 1}
    assert z[0]["reason"] == "Oops" and z[0]["compressed"] is True and z[0]["time"] > 0
    assert [r["name"] for r in d["records"]][:2] == ["dmesg-ramoops-0", "dmesg-ramoops-1.enc.z"]


def test_list_text(tmp_path, capsys):
    img, meta = image(tmp_path, "garbage")
    assert main(["ramoops", "list", img, "--kernel", "6.1"] + size_args(meta)) == 0
    text = capsys.readouterr().out
    assert "bad-sig" in text and "invalid" in text and "no-header" in text
    assert "dmesg-ramoops-4" in text and "no writer" in text


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["ramoops", "extract", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Failed to open" in err
    tiny = tmp_path / "tiny"
    tiny.write_bytes(b"\x00" * 8)
    assert main(["ramoops", "list", str(tiny), "--record-size", "4", "--console-size", "0",
                 "--ftrace-size", "0", "--pmsg-size", "0"]) == 3
    assert "holds no zone header" in capsys.readouterr().err
    assert main(["ramoops", "list", str(tiny), "--kernel", "5.4"]) == 2
    assert main(["ramoops", "list", "mtd:crashkeep-no-such-device"]) == 4
    assert main(["ramoops", "list", "/dev/mem"]) in (2, 4)   # needs --mem-address
