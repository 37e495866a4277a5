"""The CLI edge: --version, help, one-line errors, fast entry == typer entry."""
import os
import subprocess
import sys

import pytest

from crashkeep import __version__
from crashkeep.cli import registry
from crashkeep.cli.main import main, fast_main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QEMU_CONF = os.path.join(ROOT, "board-configs", "qemu-x86_64.conf")


def run(*args, env=None):
    e = dict(os.environ, PYTHONPATH=ROOT)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "crashkeep", *args], capture_output=True,
                          text=True, env=e, cwd=ROOT)


def test_version():
    r = run("--version")
    assert r.returncode == 0
    assert r.stdout == "crashkeep %s\n" % __version__


def test_help_lists_every_group():
    r = run("--help")
    assert r.returncode == 0
    for word in ("board", "ramoops", "save", "dump", "clear", "list", "boot", "core"):
        assert "\n  %s " % word in r.stdout, word


def _head(text):
    """Usage line and description: what both entries print the same way (typer
    adds an Arguments section and formats options its own way)."""
    return " ".join(text.split("Options:")[0].split("Arguments:")[0].split())


def test_every_command_through_typer_and_the_fast_entry(capsys):
    """Every command's --help and a bad option through typer; fast commands
    through the plain-argv entry too, which must agree with typer."""
    from crashkeep.cli.app import run_typer
    cmds = registry.all_commands()
    assert len(cmds) >= 20
    for cmd in cmds:
        subs = registry.subcommands(cmd)
        for argv in (list(cmd.path) + ["--help"], list(cmd.path) + ["--no-such-option"]):
            rc_typer = run_typer(argv)
            typ = capsys.readouterr()
            rc_fast = fast_main(argv) if cmd.fast else None
            fast = capsys.readouterr()
            if argv[-1] == "--help":
                assert rc_typer == 0, (argv, typ.err)
                assert "Usage: crashkeep %s " % cmd.name in typ.out, (argv, typ.out)
            else:
                assert rc_typer == 2 and "No such option" in typ.err, (argv, rc_typer, typ.err)
            if not cmd.fast:
                assert fast_main(argv) is None       # never half-handled by the fast entry
                continue
            assert rc_fast == rc_typer, (argv, rc_fast, rc_typer, fast.err, typ.err)
            if argv[-1] != "--help":
                assert fast.err.startswith("crashkeep: %s: no such option" % cmd.name), fast.err
            elif subs:
                # a group (core): both list every subcommand
                for c in subs:
                    assert "\n  %s " % c.path[-1] in fast.out, (c.name, fast.out)
                    assert "\n  %s " % c.path[-1] in typ.out, (c.name, typ.out)
            else:
                assert _head(fast.out) == _head(typ.out), (fast.out, typ.out)


def test_core_help_lists_every_core_command_under_both_entries():
    for entry in ([sys.executable, "-m", "crashkeep"], ):
        r = subprocess.run(entry + ["core", "--help"], capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=ROOT))
        assert r.returncode == 0
        for word in ("handle", "install", "uninstall", "analyze"):
            assert "\n  %s " % word in r.stdout, (word, r.stdout)


def test_core_handle_is_the_handler_under_both_entries(capsys):
    from crashkeep.cli.app import run_typer
    argv = ["core", "handle", "--", "1"]     # too few core_pattern arguments
    assert fast_main(argv) == 2
    fast = capsys.readouterr().err
    assert run_typer(argv) == 2
    assert capsys.readouterr().err == fast == (
        "crashkeep: core: expected %P %i %s %t %e %u from core_pattern, got 1 argument(s)\n")
    # what earlier versions installed: `core -- ARGS`, through the fast entry
    assert fast_main(["core", "--", "1"]) == 2
    assert capsys.readouterr().err == fast


def test_error_is_one_line_no_traceback():
    r = run("board", "check", "/nonexistent.conf")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("crashkeep: Failed to read board config '/nonexistent.conf'")


def test_bad_config_names_file_and_line(tmp_path):
    p = tmp_path / "b.conf"
    p.write_text(open(QEMU_CONF).read() + "phram.bogus = 1\n")
    r = run("board", "check", str(p))
    assert r.returncode == 2
    assert "b.conf:%d: unknown key 'phram.bogus'" % (open(QEMU_CONF).read().count("\n") + 1) \
        in r.stderr


def test_board_show_json_matches_layout():
    import json
    r = run("board", "show", QEMU_CONF, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["ramoops"]["mem_address"] == 0x1f000000
    assert [z["address"] for z in d["ramoops"]["zones"]][:2] == [0x1f000000, 0x1f010000]
    assert d["phram"]["start"] == 0x1f080000


def test_board_outputs():
    r = run("board", "cmdline", QEMU_CONF)
    assert r.stdout.split()[0] == "memmap=0x100000$0x1f000000"
    assert "ramoops.mem_size=0x80000" in r.stdout
    assert "phram.phram=crashkeep,0x1f080000,0x80000" in r.stdout
    r = run("board", "modules", QEMU_CONF)
    lines = r.stdout.splitlines()
    assert [l.split(".ko")[0].rsplit("/", 1)[1] for l in lines] == \
        ["reed_solomon", "ramoops", "mtd", "phram"]
    r = run("board", "dts", os.path.join(ROOT, "board-configs", "beaglebone-black.conf"))
    assert "ecc-size = <16>;" in r.stdout
    assert 'compatible = "phram";' in r.stdout


def test_check_live_against_fake_root(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "iomem").write_text(
        "00000000-00000fff : Reserved\n00100000-1effffff : System RAM\n"
        "1f000000-1f0fffff : Reserved\n1f100000-1fffffff : System RAM\n")
    r = run("board", "check", "--live", "--root", str(tmp_path), QEMU_CONF)
    assert r.returncode == 0, r.stderr
    (tmp_path / "proc" / "iomem").write_text("00100000-1fffffff : System RAM\n")
    r = run("board", "check", "--live", "--root", str(tmp_path), QEMU_CONF)
    assert r.returncode == 2
    assert "overlaps System RAM" in r.stderr
    params = tmp_path / "sys" / "module" / "ramoops" / "parameters"
    params.mkdir(parents=True)
    (params / "mem_size").write_text("%d\n" % 0x100000)
    (tmp_path / "proc" / "iomem").write_text("1f000000-1f0fffff : Reserved\n")
    r = run("board", "check", "--live", "--root", str(tmp_path), QEMU_CONF)
    assert "ramoops is loaded with mem_size=0x100000, the board says 0x80000" in r.stderr


def test_fast_path_does_not_import_typer():
    code = ("import sys; from crashkeep.cli.main import main; main(['save', '--help']); "
            "main(['--version']); assert 'typer' not in sys.modules and 'click' not in sys.modules")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 0, r.stderr


def test_board_cmdline_of_the_qemu_targets_is_what_the_test_bed_boots_with():
    """The mem= words of board-configs/qemu-*.conf: virt's top MiB cut off; Malta's
    hole in the middle (its initrd sits at the top of low RAM)."""
    want = {"aarch64": ["mem=0x1ff00000@0x40000000"], "armhf": ["mem=0x1ff00000@0x40000000"],
            "mipsel": ["mem=0xe000000@0x0", "mem=0x1f00000@0xe100000"]}
    for target, words in want.items():
        r = run("board", "cmdline", os.path.join(ROOT, "board-configs", "qemu-%s.conf" % target))
        assert r.returncode == 0, r.stderr
        assert [w for w in r.stdout.split() if w.startswith("mem=")] == words
        assert "phram.phram=crashkeep," in r.stdout


def test_board_modules_of_a_dt_board_has_no_parameters():
    r = run("board", "modules", os.path.join(ROOT, "board-configs", "beaglebone-black.conf"))
    assert [l.split()[-1].rsplit("/", 1)[-1] for l in r.stdout.splitlines()] == \
        ["reed_solomon.ko", "ramoops.ko", "mtd.ko", "phram.ko"]
