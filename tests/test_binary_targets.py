"""Every target's static binary (make -C build TARGET=T) on this host: the right
ELF, static, runs in an empty chroot under qemu-user, and every CLI scenario of
tests/cli_scenarios.py gives byte for byte the host binary's stdout, stderr,
exit status and files.

qemu-<arch>-static is called directly (copied into the chroot for the chroot
test): nothing depends on binfmt_misc. CRASHKEEP_TARGETS=aarch64,armhf limits
the targets (default: all four).
"""
import os
import shutil
import subprocess

import pytest

import cli_scenarios as cs
import targets

# Slow (a cross build per target, QEMU): outside the quick `-m "not e2e"` set.
pytestmark = pytest.mark.e2e

SELECTED = [t for t in os.environ.get("CRASHKEEP_TARGETS", ",".join(targets.NAMES)).split(",")
            if t]
BOARD = os.path.join(cs.BOARDS, "qemu-x86_64.conf")


@pytest.fixture(scope="session")
def host_binary():
    return targets.build_host()


@pytest.fixture(scope="session")
def built():
    """{target: binary}, each built on first use."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = targets.build(name)
        return cache[name]
    return get


@pytest.fixture(scope="session")
def inputs(tmp_path_factory):
    return cs.Inputs(str(tmp_path_factory.mktemp("scenario-inputs")))


@pytest.fixture(scope="session")
def reference(host_binary, inputs, tmp_path_factory):
    """The host binary's transcript of each scenario, made once."""
    cache = {}

    def get(sc):
        if sc.id not in cache:
            d = os.path.join(str(tmp_path_factory.mktemp("ref")), sc.id)
            cache[sc.id] = cs.run(sc, [host_binary], inputs, d)
        return cache[sc.id]
    return get


@pytest.mark.parametrize("target", SELECTED)
def test_static_elf_of_the_target(built, target):
    t = targets.TARGETS[target]
    ei_class, ei_data, machine, types = targets.elf_header(built(target))
    assert (ei_class, ei_data, machine) == (t.ei_class, targets.ELFDATA2LSB, t.e_machine)
    assert 3 not in types                 # no PT_INTERP: no dynamic loader
    assert 2 not in types                 # no PT_DYNAMIC
    assert 1 in types                     # PT_LOAD: a real executable, not a stub


def in_empty_chroot(root, argv):
    ch = shutil.which("chroot") or "/usr/sbin/chroot"
    pre = [ch, root] if os.geteuid() == 0 else [shutil.which("unshare"), "-r", ch, root]
    return subprocess.run(pre + argv, capture_output=True, env={"PATH": "/nonexistent"},
                          timeout=120)


@pytest.mark.parametrize("target", SELECTED)
def test_runs_in_an_empty_chroot(built, host_binary, target, tmp_path):
    """Only the binary, the emulator and a board config: no libraries, no /proc."""
    binary = built(target)
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(binary, str(root / "crashkeep"))
    shutil.copy(BOARD, str(root / "board.conf"))
    run = ["/crashkeep"]
    if not targets.TARGETS[target].native:
        shutil.copy(targets.qemu_path(target), str(root / "qemu"))
        run = ["/qemu", "/crashkeep"]
    before = sorted(os.listdir(root))
    for args in (["--version"], ["board", "show", "/board.conf"], ["board", "dts", "/board.conf"],
                 ["board", "show", "/missing.conf"]):
        r = in_empty_chroot(str(root), run + args)
        h = subprocess.run([host_binary] + [str(root) + a if a.startswith("/") else a
                                            for a in args], capture_output=True)
        assert (r.returncode, r.stderr) == (h.returncode, h.stderr.replace(bytes(root), b"")), args
        assert r.stdout == h.stdout.replace(bytes(root), b""), args
    assert sorted(os.listdir(root)) == before          # wrote nothing


@pytest.mark.parametrize("scenario", cs.SCENARIOS, ids=lambda s: s.id)
@pytest.mark.parametrize("target", SELECTED)
def test_scenario_same_as_host_binary(built, reference, inputs, target, scenario, tmp_path):
    got = cs.run(scenario, targets.prefix(target, built(target)), inputs,
                 str(tmp_path / "run"))
    cs.assert_same(got, reference(scenario), "%s under %s" % (scenario.id, target))


def _board_for(arch, tmp_path):
    with open(BOARD) as f:
        conf = f.read()
    p = tmp_path / ("board-%s.conf" % arch)
    p.write_text(conf.replace("board.arch = x86_64", "board.arch = %s" % arch))
    return str(p)


@pytest.mark.parametrize("target", SELECTED)
def test_board_check_live_accepts_the_running_target(built, target, tmp_path):
    """`board check --live` compares board.arch with uname -m, which qemu-user
    reports as the emulated machine (armv7l, mips, aarch64)."""
    t = targets.TARGETS[target]
    run = targets.prefix(target, built(target))
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    (root / "proc" / "iomem").write_text("")
    good = _board_for(t.board_arch, tmp_path)
    r = subprocess.run(run + ["board", "check", "--live", "--root", str(root), good],
                       capture_output=True, text=True)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    assert r.stdout == "%s: ok\n" % good
    other = "mips" if t.board_arch != "mipsel" else "arm"
    bad = _board_for(other, tmp_path)
    r = subprocess.run(run + ["board", "check", "--live", "--root", str(root), bad],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "board.arch is %s but this machine is %s (uname -m)" % (other, t.uname) in r.stderr, \
        r.stderr
