"""MTD device lookup and geometry on a fake /proc and /sys tree."""
import errno

import pytest

from crashkeep.system import mtd
from crashkeep.errors import DeviceError

PROC_MTD = ('dev:    size   erasesize  name\n'
            'mtd0: 00040000 00010000 "u-boot"\n'
            'mtd1: 00080000 00001000 "crashkeep"\n')


def fake_root(tmp_path, proc=True):
    if proc:
        (tmp_path / "proc").mkdir()
        (tmp_path / "proc" / "mtd").write_text(PROC_MTD)
    d = tmp_path / "sys" / "class" / "mtd" / "mtd1"
    d.mkdir(parents=True)
    for k, v in {"name": "crashkeep", "type": "ram", "size": "524288", "erasesize": "4096",
                 "flags": "0x1c00", "writesize": "1"}.items():
        (d / k).write_text(v + "\n")
    (tmp_path / "sys" / "class" / "mtd" / "mtd1ro").mkdir()
    return str(tmp_path)


def test_parse_proc_mtd():
    assert mtd.parse_proc_mtd(PROC_MTD) == [(0, 0x40000, 0x10000, "u-boot"),
                                           (1, 0x80000, 0x1000, "crashkeep")]


def test_resolve_by_name_proc_then_sysfs(tmp_path):
    root = fake_root(tmp_path)
    assert mtd.resolve("mtd:crashkeep", root) == "/dev/mtd1"
    assert mtd.resolve("/dev/mtd4", root) == "/dev/mtd4"
    assert mtd.resolve("img.bin", root) == "img.bin"
    (tmp_path / "proc" / "mtd").unlink()
    assert mtd.resolve("mtd:crashkeep", root) == "/dev/mtd1"
    with pytest.raises(DeviceError, match="Failed to find MTD device 'nope'"):
        mtd.resolve("mtd:nope", root)


def test_sysfs_info(tmp_path):
    root = fake_root(tmp_path)
    i = mtd.info_from_sysfs("/dev/mtd1", 1, root)
    assert (i.kind, i.size, i.erasesize, i.flags, i.name, i.needs_erase) == \
        ("ram", 524288, 4096, 0x1c00, "crashkeep", False)
    with pytest.raises(DeviceError, match="sysfs"):
        mtd.info_from_sysfs("/dev/mtd5", 5, root)


def test_mtd_index():
    assert mtd.mtd_index("/dev/mtd3") == 3
    assert mtd.mtd_index("/dev/mtd12ro") == 12
    assert mtd.mtd_index("/dev/mtdblock3") is None
    assert mtd.mtd_index("/tmp/phram.img") is None


def test_ioctl_numbers_by_arch():
    # _IOR('M', 1, 32) / _IOW('M', 2, 8) under each _IOC encoding (mtd-abi.h, asm/ioctl.h)
    def ioc(d, nr, size, dshift=30):
        return (d << dshift) | (size << 16) | (ord("M") << 8) | nr
    assert mtd.ioctl_numbers("x86_64") == (ioc(2, 1, 32), ioc(1, 2, 8)) == (0x80204D01, 0x40084D02)
    assert mtd.ioctl_numbers("aarch64") == (0x80204D01, 0x40084D02)
    assert mtd.ioctl_numbers("mips") == (ioc(2, 1, 32, 29), ioc(4, 2, 8, 29))
    assert mtd.ioctl_numbers("ppc64le") == (0x40204D01, 0x80084D02)


def test_file_info_and_errors(tmp_path):
    p = tmp_path / "img"
    p.write_bytes(bytes(8192))
    with mtd.open_device(str(p)) as f:
        i = mtd.device_info(str(p), f)
    assert (i.kind, i.size, i.is_mtd, i.needs_erase) == ("file", 8192, False, False)
    with pytest.raises(DeviceError, match="Failed to open '.*missing'"):
        mtd.open_device(str(tmp_path / "missing"))


def test_read_only_device_message(monkeypatch):
    def ro_open(path, write=False, chardev="mtd"):
        raise OSError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(mtd, "open_checked", ro_open)
    with pytest.raises(DeviceError, match="for writing: .*read-only device"):
        mtd.open_device("/dev/mtd0ro")


def test_by_name_reads_proc_mtd(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/mtd").write_text('dev:    size   erasesize  name\nmtd0: 00100000 00001000 "other"\n'
                                       'mtd1: 00080000 00001000 "crashkeep"\n')
    assert mtd.by_name("crashkeep", str(tmp_path)) == (1, 0x80000)
    assert mtd.by_name("nope", str(tmp_path)) is None
