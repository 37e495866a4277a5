"""One way to find the board and the device, through the real command line:
--board, else $CRASHKEEP_BOARD, else /etc/crashkeep/board.conf; --device (--keep
on boot/shutdown/selftest), else $CRASHKEEP_DEVICE, else the board's phram."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "portable"))
import test_salvage as fake  # noqa: E402  (fake root builder)

from crashkeep.cli import main as entry  # noqa: E402

ROOT = os.path.dirname(HERE)


def _boot(root):
    return entry.main(["boot", "--board", root + "/board.conf", "--root", root,
                       "--device", root + "/keep.img"])


def test_shutdown_takes_board_and_device_from_the_environment(monkeypatch, capsys):
    root = fake.make_root()
    assert _boot(root) == 0
    monkeypatch.setenv("CRASHKEEP_BOARD", root + "/board.conf")
    monkeypatch.setenv("CRASHKEEP_DEVICE", root + "/keep.img")
    # neither option: the board from $CRASHKEEP_BOARD, the area from $CRASHKEEP_DEVICE
    # (the fake root has no /dev/mtd0, so the board's phram alone would not do)
    assert entry.main(["shutdown", "--root", root]) == 0
    monkeypatch.delenv("CRASHKEEP_BOARD")
    monkeypatch.delenv("CRASHKEEP_DEVICE")
    fake.set_boot(root, 1)
    capsys.readouterr()
    assert _boot(root) == 0
    assert "boot #2 after clean (warm)" in capsys.readouterr().out


def test_without_the_environment_the_board_phram_is_looked_up(capsys):
    root = fake.make_root()
    assert _boot(root) == 0
    capsys.readouterr()
    rc = entry.main(["shutdown", "--board", root + "/board.conf", "--root", root])
    assert rc == 4
    err = capsys.readouterr().err
    # the fake root lists the phram device in /proc/mtd but has no /dev/mtd0 node
    assert "Failed to open '%s/dev/mtd0'" % root in err and err.count("\n") == 1, err


def test_keep_is_an_alias_of_device(capsys):
    root = fake.make_root()
    assert _boot(root) == 0
    for flag in ("--keep", "--device"):
        assert entry.main(["selftest", "--board", root + "/board.conf", "--root", root,
                           flag, root + "/keep.img"]) == 0
    out = capsys.readouterr().out
    assert out.count("selftest canary") == 2
    for word in ("boot", "shutdown", "selftest"):
        r = subprocess.run([sys.executable, "-m", "crashkeep", word, "--help"],
                           capture_output=True, text=True, cwd=ROOT)
        assert r.returncode == 0 and "--device/--keep DEV" in r.stdout, (word, r.stdout)


def test_save_and_list_find_the_device_the_same_way(tmp_path):
    img = tmp_path / "keep.img"
    img.write_bytes(bytes(64 * 1024))
    src = tmp_path / "log"
    src.write_bytes(b"hello\n")
    env = dict(os.environ, PYTHONPATH=ROOT, CRASHKEEP_DEVICE=str(img))
    env.pop("CRASHKEEP_BOARD", None)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "crashkeep"] + list(args),
                              capture_output=True, text=True, env=env, cwd=str(tmp_path))
    r = run("save", str(src), "--name", "viaenv")
    assert r.returncode == 0, r.stderr
    r = run("dump", "viaenv")
    assert r.returncode == 0 and r.stdout == "hello\n", r.stderr
    env.pop("CRASHKEEP_DEVICE")
    r = run("list", "--device", str(img))
    assert r.returncode == 0 and "viaenv" in r.stdout, r.stdout + r.stderr
    # no device anywhere and no board config: one line naming what is missing
    r = run("dump", "viaenv", "--board", str(tmp_path / "none.conf"))
    assert r.returncode == 2 and r.stderr.startswith("crashkeep: ") and r.stderr.count("\n") == 1
