"""The static binary (make -C build -> build/out/crashkeep): a static ELF that
runs in an empty chroot and behaves like `python -m crashkeep` from the tree.

The build is incremental; the first one in a fresh clone takes a few minutes.
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402

import cli_scenarios as cs  # noqa: E402
import targets  # noqa: E402
from crashkeep import __version__  # noqa: E402
from crashkeep.cli import registry  # noqa: E402

BOARD = os.path.join(ROOT, "board-configs", "qemu-x86_64.conf")


@pytest.fixture(scope="module")
def binary():
    return harness.build_binary(required=True)


@pytest.fixture(scope="module")
def chroot(binary, tmp_path_factory):
    """An empty directory holding only the binary (and a board config to read)."""
    d = str(tmp_path_factory.mktemp("chroot"))
    shutil.copy(binary, os.path.join(d, "crashkeep"))
    shutil.copy(BOARD, os.path.join(d, "board.conf"))
    return d


def in_chroot(root, *args):
    # chroot(2) needs root; an unprivileged user gets it in a user namespace.
    ch = shutil.which("chroot") or "/usr/sbin/chroot"
    pre = [ch, root] if os.geteuid() == 0 else [shutil.which("unshare"), "-r", ch, root]
    return subprocess.run(pre + ["/crashkeep", *args], capture_output=True, text=True,
                          env={"PATH": "/nonexistent", "PYTHONPATH": "/usr/lib/python3.11",
                               "PYTHONHOME": "/usr"})


def host(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "crashkeep", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT)


def test_static_elf(binary):
    out = subprocess.run(["file", "-L", binary], capture_output=True, text=True).stdout
    assert "statically linked" in out, out
    assert "x86-64" in out
    ei_class, ei_data, machine, types = targets.elf_header(binary)
    assert (ei_class, ei_data, machine) == (targets.ELFCLASS64, targets.ELFDATA2LSB,
                                            targets.EM_X86_64)
    assert 3 not in types                 # no PT_INTERP: no dynamic loader
    assert 2 not in types                 # no PT_DYNAMIC


def test_version_in_empty_chroot(chroot):
    r = in_chroot(chroot, "--version")
    assert (r.returncode, r.stdout, r.stderr) == (0, "crashkeep %s\n" % __version__, "")
    assert sorted(os.listdir(chroot)) == ["board.conf", "crashkeep"]   # wrote nothing


@pytest.mark.parametrize("args", [
    ["board", "show", "/board.conf"],            # typer path
    ["board", "show", "--json", "/board.conf"],
    ["board", "check", "/board.conf"],
    ["board", "modules", "/board.conf"],
    ["--help"],
    ["boot", "--help"],                          # fast path
    ["board", "show", "/missing.conf"],          # an error: one line, exit code
    ["no-such-command"],
])
def test_same_as_python_in_empty_chroot(chroot, args):
    r = in_chroot(chroot, *args)
    # The host reads the same file under its own path.
    hargs = [os.path.join(chroot, a[1:]) if a.startswith("/") else a for a in args]
    h = host(*hargs)
    assert r.returncode == h.returncode, (r.stderr, h.stderr)
    assert r.stdout == h.stdout.replace(chroot, "")
    assert r.stderr == h.stderr.replace(chroot, "")
    if r.returncode == 0:
        assert r.stdout


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return cs.Inputs(str(tmp_path_factory.mktemp("scenario-inputs")))


@pytest.mark.parametrize("scenario", cs.SCENARIOS, ids=lambda s: s.id)
def test_scenario_same_as_python(binary, inputs, scenario, tmp_path):
    """The CLI scenarios (tests/cli_scenarios.py; the other targets' binaries run
    the same list in test_binary_targets.py): byte for byte what the source tree does."""
    want = cs.run(scenario, [sys.executable, "-m", "crashkeep"], inputs, str(tmp_path / "py"),
                  env={"PYTHONPATH": ROOT})
    got = cs.run(scenario, [binary], inputs, str(tmp_path / "bin"))
    cs.assert_same(got, want, "%s: binary against python -m crashkeep" % scenario.id)


def test_every_command_help_in_empty_chroot(chroot):
    """Every command's help, both entries: the frozen closure is complete."""
    for cmd in registry.all_commands():
        words = list(cmd.path)
        r = in_chroot(chroot, *words, "--help")
        h = host(*words, "--help")
        assert (r.returncode, r.stderr) == (0, ""), (words, r.stderr[-2000:])
        assert r.stdout == h.stdout, words


def test_ignores_python_environment(binary, tmp_path):
    """Isolated: PYTHON* variables and the current directory change nothing."""
    (tmp_path / "crashkeep").mkdir()
    (tmp_path / "crashkeep" / "__init__.py").write_text("raise SystemExit('shadowed')\n")
    (tmp_path / "sitecustomize.py").write_text("raise SystemExit('site ran')\n")
    env = {"PYTHONPATH": str(tmp_path), "PYTHONSTARTUP": str(tmp_path / "x"),
           "PYTHONWARNINGS": "error", "PATH": os.environ.get("PATH", "")}
    r = subprocess.run([binary, "--version"], capture_output=True, text=True, env=env,
                       cwd=str(tmp_path))
    assert (r.returncode, r.stdout, r.stderr) == (0, "crashkeep %s\n" % __version__, "")


def _getrandom_sizes(trace):
    return [int(m) for m in re.findall(r"getrandom\(.*?, (\d+), ", trace)]


def test_no_randomness_at_start(binary, tmp_path):
    """No hash-seed getrandom()/urandom at start-up: early in boot the CRNG is not
    ready, Python falls back to /dev/urandom and the kernel first generates
    entropy (~1 s under QEMU TCG, more on a quiet board). glibc's own 8-byte
    GRND_NONBLOCK call for malloc stays (it never waits)."""
    log = tmp_path / "trace"
    r = subprocess.run(["strace", "-f", "-qq", "-o", str(log), "-e",
                        "trace=getrandom,open,openat", binary, "--version"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    calls = log.read_text()
    assert all(n <= 8 for n in _getrandom_sizes(calls)), calls
    assert "urandom" not in calls and "/dev/random" not in calls
    # The oracle sees python3.11 itself read its 24-byte hash seed.
    log2 = tmp_path / "trace2"
    subprocess.run(["strace", "-f", "-qq", "-o", str(log2), "-e", "trace=getrandom",
                    "/usr/bin/python3.11", "-I", "-S", "-c", "pass"], check=True)
    assert 24 in _getrandom_sizes(log2.read_text())


def test_pth_and_pyvenv_next_to_the_binary_change_nothing(binary, tmp_path):
    """getpath() looks for crashkeep._pth and pyvenv.cfg beside the executable it
    finds on PATH: neither may put a directory on sys.path. (_compat tries
    `import micropython`: a shadowing one there would end the program.)"""
    d = tmp_path / "bin"
    (d / "lib" / "typer").mkdir(parents=True)
    (d / "lib" / "typer" / "__init__.py").write_text("raise SystemExit('shadowed typer')\n")
    (d / "lib" / "micropython.py").write_text("raise SystemExit('shadowed micropython')\n")
    shutil.copy(binary, str(d / "crashkeep"))
    (d / "crashkeep._pth").write_text(str(d / "lib") + "\n")
    (d / "pyvenv.cfg").write_text("home = %s\ninclude-system-site-packages = true\n" % (d / "lib"))
    r = subprocess.run([str(d / "crashkeep"), "board", "check", BOARD], capture_output=True,
                       text=True, env={"PATH": str(d)})
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    assert r.stdout == "%s: ok\n" % BOARD
