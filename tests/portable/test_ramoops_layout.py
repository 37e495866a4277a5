"""Zone layout against the kernel's arithmetic (docs §9 worked examples)."""
from _util import raises

from crashkeep.errors import ConfigError
from crashkeep.formats.ramoops import Params, layout, ecc_geometry, rounddown_pow_of_two


def offsets(zones, kind):
    return [z.offset for z in zones if z.kind == kind]


def test_case_a_no_ftrace():
    z = layout(Params(0x100000, 0x10000, 0x10000, 0, 0x10000))
    assert offsets(z, "dmesg") == [i * 0x10000 for i in range(14)]
    assert offsets(z, "console") == [0xE0000]
    assert offsets(z, "pmsg") == [0xF0000]
    assert z[0].data_size == 65524
    assert z[0].label == "ramoops:dmesg(0/13)"


def test_case_b_per_cpu_ftrace_both_orders():
    z = layout(Params(0x100000, 0x10000, 0x10000, 0x1000, 0x10000, cpus=4, order="6.1"))
    assert z[1].offset == 0x11276 and z[1].size == 0x11276
    assert offsets(z, "dmesg")[-1] == 0xCDD88
    assert offsets(z, "console") == [0xDEFFE]
    assert offsets(z, "ftrace") == [0xEEFFE, 0xEF3FE, 0xEF7FE, 0xEFBFE]
    assert offsets(z, "pmsg") == [0xEFFFE]
    z = layout(Params(0x100000, 0x10000, 0x10000, 0x1000, 0x10000, cpus=4, order="6.2"))
    assert offsets(z, "pmsg") == [0xEEFFE]
    assert offsets(z, "ftrace") == [0xFEFFE, 0xFF3FE, 0xFF7FE, 0xFFBFE]
    assert z[-1].label == "ramoops:ftrace(3/3)"


def test_even_rounding_is_a_flag():
    # F/cpus odd: 0x1000 / 3 = 1365
    z = layout(Params(0x10000, 0x1000, 0x1000, 0x1000, 0, cpus=3, even_round=True))
    assert [x.size for x in z if x.kind == "ftrace"] == [1364] * 3
    z = layout(Params(0x10000, 0x1000, 0x1000, 0x1000, 0, cpus=3, even_round=False))
    assert [x.size for x in z if x.kind == "ftrace"] == [1365] * 3


def test_uboot_default_layout():
    # U-Boot's test region: 1 MiB, every size 0x1000: console at 253 * 0x1000
    z = layout(Params(0x100000, 0x1000, 0x1000, 0x1000, 0x1000, order="6.1"))
    assert offsets(z, "console") == [0xFD000]
    assert len(offsets(z, "dmesg")) == 253


def test_ecc_geometry():
    assert ecc_geometry(0x10000, 16) == (58228, 455)
    assert ecc_geometry(0x1000, 16) == (3604, 29)
    assert ecc_geometry(0x1000, 0) == (4084, 0)
    raises(ConfigError, ecc_geometry, 64, 40)


def test_sizes_round_down():
    assert rounddown_pow_of_two(0x3000) == 0x2000
    assert rounddown_pow_of_two(1) == 1
    assert rounddown_pow_of_two(0) == 0
    z = layout(Params(0x10000, 0x3000, 0, 0, 0))
    assert [x.size for x in z] == [0x2000] * 8


def test_probe_failures():
    raises(ConfigError, layout, Params(0))
    raises(ConfigError, layout, Params(0x1000, 0, 0, 0, 0))
    raises(ConfigError, layout, Params(0x2000, 0x4000, 0, 0, 0))
    raises(ConfigError, layout, Params(0x2000, 0x1000, 0x2000, 0x1000, 0))
