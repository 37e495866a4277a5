"""pstore filesystem interface on a fake tree (the root path is a parameter)."""
import os

from _util import raises, tmpdir, write

from crashkeep.system import pstore
from crashkeep.errors import DeviceError


def fake_pstore():
    root = tmpdir()
    for name, data in (("pmsg-ramoops-0", b"p"), ("dmesg-ramoops-10", b"d10"),
                       ("console-ramoops-0", b"console"), ("dmesg-ramoops-2.enc.z", b"zz"),
                       ("dmesg-ramoops-0", b"Oops#1 Part1\n"), ("ftrace-ramoops-0", b"")):
        write(root + "/" + name, data)
    os.mkdir(root + "/subdir")          # not a record
    return root


def test_names():
    assert pstore.parse_name("dmesg-ramoops-3") == ("dmesg", "ramoops", 3, False)
    assert pstore.parse_name("dmesg-ramoops-3.enc.z") == ("dmesg", "ramoops", 3, True)
    assert pstore.parse_name("powerpc-ofw-nvram-1") == ("powerpc-ofw", "nvram", 1, False)
    assert pstore.parse_name("odd") == ("odd", "", None, False)
    assert pstore.parse_name("a-b-c") == ("a", "b", None, False)


def test_list_in_kernel_order():
    root = fake_pstore()
    recs = pstore.list_records(root)
    assert [r.name for r in recs] == ["dmesg-ramoops-0", "dmesg-ramoops-2.enc.z",
                                      "dmesg-ramoops-10", "console-ramoops-0",
                                      "pmsg-ramoops-0", "ftrace-ramoops-0"]
    r = recs[0]
    assert (r.size, r.path, r.kind, r.id) == (13, root + "/dmesg-ramoops-0", "dmesg", 0)
    assert r.mtime > 0
    assert pstore.read(r) == b"Oops#1 Part1\n"
    assert pstore.read(root + "/pmsg-ramoops-0") == b"p"
    raises(DeviceError, pstore.read, recs[2], 2)        # larger than the limit


def test_unlink():
    root = fake_pstore()
    recs = pstore.list_records(root)
    assert pstore.unlink(recs[0]) is True
    assert pstore.unlink(recs[0]) is False              # already gone
    assert "dmesg-ramoops-0" not in [r.name for r in pstore.list_records(root)]


def test_missing_root():
    raises(DeviceError, pstore.list_records, "/nonexistent/pstore")
    raises(DeviceError, pstore.read, "/nonexistent/pstore/x")


def test_mounting():
    proc = tmpdir()
    root = tmpdir()
    write(proc + "/mounts", "sysfs /sys sysfs rw 0 0\npstore %s pstore rw 0 0\n" % root)
    calls = []

    def mount(src, target, fstype):
        calls.append((src, target, fstype))

    assert pstore.is_mounted(root, proc)
    assert pstore.ensure_mounted(root, proc, mount) is False and calls == []
    write(proc + "/mounts", "sysfs /sys sysfs rw 0 0\n")
    assert not pstore.is_mounted(root, proc)
    assert pstore.ensure_mounted(root, proc, mount) is True
    assert calls == [("pstore", root, "pstore")]

    def failing(src, target, fstype):
        raise OSError(19, "No such device")

    e = raises(DeviceError, pstore.ensure_mounted, root, proc, failing)
    assert "Failed to mount pstore" in str(e)

    def busy(src, target, fstype):
        raise OSError(16, "busy")

    assert pstore.ensure_mounted(root, proc, busy) is False
    assert not pstore.is_mounted(root, proc + "/nothere")
