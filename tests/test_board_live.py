"""`crashkeep board check --live`: the two classic failures said in one line each
(issue 15) -- ramoops loaded with parameters other than the board's, and pstore
registered with every record empty. The running system is a fake root (a
directory tree standing in for /sys and /proc) so each case is exact; the QEMU
e2e checks the same on a real kernel."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QEMU_CONF = os.path.join(ROOT, "board-configs", "qemu-x86_64.conf")


def run(root):
    return subprocess.run([sys.executable, "-m", "crashkeep", "board", "check", "--live",
                           "--root", str(root), QEMU_CONF], capture_output=True, text=True,
                          cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT))


def fake(tmp, params=None, backend="ramoops", pstore=None):
    (tmp / "proc").mkdir()
    (tmp / "proc" / "iomem").write_text("00100000-1effffff : System RAM\n"
                                        "1f000000-1f0fffff : Reserved\n")
    p = tmp / "sys" / "module" / "ramoops" / "parameters"
    p.mkdir(parents=True)
    (tmp / "sys" / "module" / "ramoops" / "initstate").write_text("live\n")
    # what ram.c writes back after probing the qemu-x86_64 board's region
    good = {"mem_address": "520093696", "mem_size": "524288", "mem_type": "0",
            "record_size": "65536", "console_size": "65536", "ftrace_size": "0",
            "pmsg_size": "65536", "max_reason": "2", "ecc": "0"}
    good.update(params or {})
    for k, v in good.items():
        (p / k).write_text(v + "\n")
    if backend is not None:
        b = tmp / "sys" / "module" / "pstore" / "parameters"
        b.mkdir(parents=True)
        (b / "backend").write_text(backend + "\n")
    mounts = "proc /proc proc rw 0 0\n"
    if pstore is not None:
        d = tmp / "sys" / "fs" / "pstore"
        d.mkdir(parents=True)
        for name, data in pstore.items():
            (d / name).write_bytes(data)
        mounts += "pstore /sys/fs/pstore pstore rw,relatime 0 0\n"
    (tmp / "proc" / "mounts").write_text(mounts)
    return tmp


def test_matching_system_is_ok(tmp_path):
    r = run(fake(tmp_path, pstore={"dmesg-ramoops-0": b"Panic#1 Part1\n<0>[ 1.0] Kernel panic\n"}))
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(": ok\n")


def test_ramoops_loaded_with_other_parameters_is_one_line(tmp_path):
    r = run(fake(tmp_path, params={"record_size": "4096", "mem_address": "0x1e000000",
                                   "ecc": "16"}))
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if "ramoops is loaded" in l]
    assert lines == ["ramoops is loaded with mem_address=0x1e000000, the board says 0x1f000000; "
                     "record_size=0x1000, the board says 0x10000; ecc=0x10, the board says 0x0: "
                     "records are read from the wrong place (rmmod ramoops and load it with "
                     "`crashkeep board modules`, or fix the board config)"]


def test_pstore_registered_but_every_record_empty_is_one_line(tmp_path):
    r = run(fake(tmp_path, pstore={"dmesg-ramoops-0": b"", "console-ramoops-0": b""}))
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if l.startswith("pstore:")]
    assert len(lines) == 1
    assert "ramoops is registered but all 2 record(s) in /sys/fs/pstore are empty" in lines[0]
    assert "CONFIG_IO_STRICT_DEVMEM" in lines[0]


def test_empty_pstore_with_a_record_or_nothing_is_not_the_failure(tmp_path):
    r = run(fake(tmp_path, pstore={"dmesg-ramoops-0": b"", "pmsg-ramoops-0": b"x"}))
    assert r.returncode == 0, r.stderr
    b = tmp_path / "b"
    b.mkdir()
    r = run(fake(b, pstore={}))
    assert r.returncode == 0, r.stderr


def test_registered_without_the_backend_parameter(tmp_path):
    """A kernel that leaves pstore's backend parameter empty: a probed ramoops counts."""
    r = run(fake(tmp_path, backend="", pstore={"dmesg-ramoops-0": b""}))
    assert r.returncode == 2 and "pstore: ramoops is registered" in r.stderr
