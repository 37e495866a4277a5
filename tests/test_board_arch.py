"""board.arch against `uname -m` (board check --live): what each target's kernel says."""
import pytest

from crashkeep.commands import board as board_cmd
from crashkeep.formats import boardconf

BASE = "board.name = t\nboard.arch = %s\nramoops.mem_address = 0x1f000000\n" \
       "ramoops.mem_size = 0x80000\n"


def conf(tmp_path, arch):
    p = tmp_path / ("%s.conf" % arch)
    p.write_text(BASE % arch)
    return boardconf.load(str(p))


@pytest.mark.parametrize("arch,machine,order", [
    ("x86_64", "x86_64", "little"),
    ("arm64", "aarch64", "little"),
    ("arm", "armv7l", "little"),            # armhf under an ARMv7 kernel, and qemu-arm
    ("arm", "armv5tel", "little"),
    ("arm", "aarch64", "little"),           # a 32-bit userland on an arm64 kernel
    ("mipsel", "mips", "little"),           # a mipsel kernel says mips
    ("mips", "mips", "big"),                # TP-Link Archer C7 (ath79)
    ("mips", "mips", "little"),
    ("x86", "i686", "little"),
])
def test_accepts_the_machine_of_its_kernels(tmp_path, arch, machine, order):
    assert board_cmd.arch_problems(conf(tmp_path, arch), machine, order) == []


@pytest.mark.parametrize("arch,machine,order,says", [
    ("arm64", "armv7l", "little", "board.arch is arm64 but this machine is armv7l (uname -m)"),
    ("arm", "x86_64", "little", "board.arch is arm but this machine is x86_64 (uname -m)"),
    ("mipsel", "aarch64", "little", "board.arch is mipsel but this machine is aarch64"),
    ("mipsel", "mips", "big", "board.arch is mipsel (little-endian) but this machine is "
     "big-endian"),
    ("x86_64", "i686", "little", "board.arch is x86_64 but this machine is i686"),
    ("mips", "armv7l", "little", "board.arch is mips but this machine is armv7l"),
])
def test_rejects_another_machine_naming_the_line(tmp_path, arch, machine, order, says):
    got = board_cmd.arch_problems(conf(tmp_path, arch), machine, order)
    assert len(got) == 1 and says in got[0], got
    assert got[0].startswith(str(tmp_path / ("%s.conf" % arch)) + ":2: "), got


def test_every_board_arch_value_has_its_machines():
    import re
    src = open(boardconf.__file__).read()
    allowed = re.search(r'arch not in \(([^)]*)\)', src).group(1)
    values = re.findall(r'"([a-z0-9_]+)"', allowed)
    assert values and sorted(values) == sorted(board_cmd.UNAME_PREFIXES)
