"""`crashkeep boot / show / shutdown / selftest` through the CLI entry, on a fake root."""
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "portable"))
import test_salvage as core  # noqa: E402  (fake root builder; installs nothing if pstore exists)

from crashkeep.cli import main as entry  # noqa: E402
from crashkeep.system import keeparea
from crashkeep.commands import boot as salvage

ROOT = os.path.dirname(HERE)


def boot(root, *extra):
    return entry.main(["boot", "--board", root + "/board.conf", "--root", root,
                       "--keep", root + "/keep.img"] + list(extra))


def test_boot_cli_logs_one_line_to_console_and_kmsg(capsys):
    root = core.make_root(core.RECORDS, core.KEEP)
    assert boot(root) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("crashkeep: boot #1 after panic"), out
    kmsg = open(root + "/dev/kmsg", "rb").read()
    assert kmsg == b"<5>" + out.encode()


def test_boot_cli_failure_is_one_line_and_nonzero(capsys):
    root = core.make_root(core.RECORDS, flash=False)
    assert boot(root) == 4
    cap = capsys.readouterr()
    assert cap.out.count("\n") == 1 and "kept in RAM" in cap.out
    assert cap.err == ""


def test_bad_board_config_one_line(capsys):
    root = core.make_root()
    open(root + "/board.conf", "w").write("board.name = x\nramoops.mem_size = banana\n")
    assert boot(root) == 2
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "board.conf:2: bad number" in out
    missing = entry.main(["boot", "--board", root + "/nope.conf", "--root", root])
    assert missing == 2


def test_show_text_json_and_file(capsys):
    root = core.make_root(core.RECORDS, core.KEEP)
    assert boot(root) == 0
    capsys.readouterr()
    d = core.flash_dir(root)
    assert entry.main(["show", "1", "--dir", d]) == 0
    text = capsys.readouterr().out
    assert "reason     panic" in text and "dmesg-ramoops-1" in text and "phram/messages" in text
    assert entry.main(["show", "1", "--dir", d, "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["seq"] == 1 and len(meta["files"]) == 4
    capsysbin = None
    r = subprocess.run([sys.executable, "-m", "crashkeep", "show", "1", "--dir", d, "--file",
                        "dmesg-ramoops-1"], capture_output=True, cwd=ROOT)
    assert r.returncode == 0 and r.stdout == core.PANIC, r.stderr
    assert entry.main(["show", "9", "--dir", d]) == 2
    del capsysbin


def test_show_through_board_config(capsys):
    root = core.make_root(core.RECORDS)
    assert boot(root) == 0
    capsys.readouterr()
    assert entry.main(["show", "1", "--board", root + "/board.conf", "--root", root]) == 0
    assert "dmesg-ramoops-0" in capsys.readouterr().out


def test_shutdown_marks_clean_reboot(capsys):
    root = core.make_root()
    assert boot(root) == 0
    assert entry.main(["shutdown", "--board", root + "/board.conf", "--keep",
                       root + "/keep.img"]) == 0
    core.set_boot(root, 1)
    assert boot(root) == 0
    assert "boot #2 after clean (warm)" in capsys.readouterr().out


def test_selftest_canary_kept_and_lost(capsys):
    root = core.make_root()
    assert boot(root) == 0
    assert entry.main(["selftest", "--board", root + "/board.conf", "--root", root, "--keep",
                       root + "/keep.img"]) == 0
    assert os.path.exists(core.flash_dir(root) + "/selftest-pending")
    core.set_boot(root, 1)
    capsys.readouterr()
    assert boot(root) == 0
    assert "selftest: RAM kept across reset" in capsys.readouterr().out
    assert not os.path.exists(core.flash_dir(root) + "/selftest-pending")
    # again, but RAM is lost this time (keep area wiped)
    assert entry.main(["selftest", "--board", root + "/board.conf", "--root", root, "--keep",
                       root + "/keep.img"]) == 0
    open(root + "/keep.img", "wb").write(bytes(64 * 1024))
    core.set_boot(root, 2)
    capsys.readouterr()
    assert boot(root) == 0
    out = capsys.readouterr().out
    assert "selftest: RAM lost across reset" in out and "(cold)" in out


def test_boot_does_not_import_typer(tmp_path):
    """The init path stays off typer (and click)."""
    root = core.make_root(keep=core.KEEP)
    code = ("import sys; from crashkeep.cli.main import main; "
            "rc = main(['boot', '--board', %r, '--root', %r, '--keep', %r]); "
            "bad = [m for m in ('typer', 'click') if m in sys.modules]; "
            "print('IMPORTED', bad); sys.exit(rc)" % (root + "/board.conf", root, root + "/keep.img"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "IMPORTED []" in r.stdout, r.stdout + r.stderr
    assert r.returncode == 0, r.stdout + r.stderr


def test_unmounts_what_it_mounted(monkeypatch):
    root = core.make_root(core.RECORDS)
    os.makedirs(root + "/dev", exist_ok=True)
    open(root + "/dev/vda", "wb").close()
    with open(root + "/board.conf", "a") as f:
        f.write("flash.device = /dev/vda\nflash.fstype = ext4\n")
    calls = []
    from crashkeep.system import syscall
    monkeypatch.setattr(syscall, "mount", lambda *a: calls.append("mount"))
    monkeypatch.setattr(syscall, "umount", lambda *a: calls.append("umount"))
    assert boot(root) == 0
    assert calls == ["mount", "umount"]


def test_list_shows_bundles_apart_from_ram_records(capsys):
    root = core.make_root(core.RECORDS, core.KEEP)
    assert boot(root) == 0
    # a board whose flash directory is the fake root's, as `list` runs on the live system
    text = open(root + "/board.conf").read().replace("flash.mountpoint = /flash",
                                                      "flash.mountpoint = %s/flash" % root)
    open(root + "/live.conf", "w").write(text)
    a = keeparea.open_area(root + "/keep.img")
    a.put("later", b"saved after the salvage")
    a.close()
    capsys.readouterr()
    assert entry.main(["list", "--board", root + "/live.conf", "--device", root + "/keep.img"]) == 0
    out = capsys.readouterr().out
    ram, _, flash = out.partition("salvaged bundles")
    assert "later" in ram and "0001-" not in ram
    assert "0001-" in flash and "panic" in flash and "later" not in flash
    assert entry.main(["list", "--json", "--board", root + "/live.conf", "--device",
                       root + "/keep.img"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [m["seq"] for m in doc["bundles"]] == [1]
    assert [r["name"] for r in doc["records"]] == ["later"]


def test_alarm_bounds_a_stuck_step():
    """A step that hangs (here: the step-marker pause) is cut by the --timeout alarm:
    one line, exit 6, records still in RAM."""
    root = core.make_root(core.RECORDS)
    env = dict(os.environ, CRASHKEEP_STEPS="1", CRASHKEEP_STEP_PAUSE="30", PYTHONPATH=ROOT)
    import time
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "crashkeep", "boot", "--board", root + "/board.conf",
                        "--root", root, "--keep", root + "/keep.img", "--timeout", "1"],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert time.monotonic() - t0 < 20
    assert r.returncode == 6, r.stdout + r.stderr
    lines = [l for l in r.stdout.splitlines() if l.startswith("crashkeep: boot")]
    assert len(lines) == 1 and "timed out" in lines[0] and "kept in RAM" in lines[0], r.stdout
    assert sorted(os.listdir(root + "/sys/fs/pstore")) == ["dmesg-ramoops-0", "dmesg-ramoops-1"]
