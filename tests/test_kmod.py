"""Module loading on a fake /sys + module tree, against both syscall twins."""
import errno
import os

import pytest

from crashkeep.formats import boardconf
from crashkeep.system import kmod, syscall, _syscall_py
from crashkeep.errors import DeviceError

BOARD = os.path.join(os.path.dirname(__file__), "..", "board-configs", "qemu-x86_64.conf")
TWINS = [_syscall_py]
try:
    from crashkeep.system import _syscall_c
    TWINS.append(_syscall_c)
except ImportError:   # pure run (CRASHKEEP_PUREPYTHON=1 CI leg has no .so)
    pass


class FakeImpl:
    """Records calls; fails finit_module with `finit_errno` when set."""

    def __init__(self, finit_errno=None, init_errno=None):
        self.calls = []
        self.finit_errno = finit_errno
        self.init_errno = init_errno

    def finit_module(self, path, params):
        self.calls.append(("finit", os.path.basename(path), params))
        if self.finit_errno:
            raise OSError(self.finit_errno, os.strerror(self.finit_errno), path)

    def init_module(self, image, params, path=""):
        self.calls.append(("init", image, params))
        if self.init_errno:
            raise OSError(self.init_errno, os.strerror(self.init_errno), path)


# depends= of the stock Debian x86_64 modules (pstore and mtd: built in / modules)
DEPENDS = {"reed_solomon": "", "ramoops": "reed_solomon", "mtd": "", "phram": "mtd",
           "pstore": "", "deflate": ""}


def ko(name, depends="", extra=()):
    """A minimal relocatable ELF32 with the .modinfo section kmod reads: the
    strings the kernel's modpost writes (name=, depends=, vermagic=...)."""
    import struct
    info = b"".join(s.encode() + b"\0" for s in
                    ["license=GPL", "depends=%s" % depends, "name=%s" % name,
                     "vermagic=6.1.0-test SMP mod_unload"] + list(extra))
    shstr = b"\0.modinfo\0.shstrtab\0"
    off_info = 52
    off_str = off_info + len(info)
    off_sh = (off_str + len(shstr) + 3) & ~3
    ehdr = b"\x7fELF" + bytes([1, 1, 1]) + bytes(9) + struct.pack(
        "<HHIIIIIHHHHHH", 1, 40, 1, 0, 0, off_sh, 0, 52, 0, 0, 40, 3, 2)
    sh = bytes(40)
    sh += struct.pack("<10I", 1, 1, 2, 0, off_info, len(info), 0, 0, 1, 0)
    sh += struct.pack("<10I", 10, 3, 0, 0, off_str, len(shstr), 0, 0, 1, 0)
    body = ehdr + info + shstr
    return body + bytes(off_sh - len(body)) + sh


def tree(tmp_path, release="6.1.0-test", modules=("reed_solomon", "ramoops", "mtd", "phram"),
         depends=None):
    root = tmp_path
    (root / "proc/sys/kernel").mkdir(parents=True)
    (root / "proc/sys/kernel/osrelease").write_text(release + "\n")
    (root / "sys/module").mkdir(parents=True)
    from crashkeep.formats.boardconf import KERNEL_MODULES
    places = dict(KERNEL_MODULES, pstore="fs/pstore/pstore.ko", deflate="crypto/deflate.ko")
    deps = dict(DEPENDS, **(depends or {}))
    base = root / "lib/modules" / release / "kernel"
    for name in modules:
        rel = places[name]
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_bytes(ko(name, deps[name]))
    return str(root)


@pytest.fixture
def board():
    return boardconf.load(BOARD)


def test_module_dir_expands_uname(tmp_path, board):
    root = tree(tmp_path)
    assert kmod.module_dir(board, root) == root + "/lib/modules/6.1.0-test/kernel"
    b2 = boardconf.parse(open(BOARD).read() + "\nboard.modules = /opt/mods/$(uname -r)\n")
    assert kmod.module_dir(b2, root) == root + "/opt/mods/6.1.0-test"


def test_find_standard_place_then_search(tmp_path):
    root = tree(tmp_path)
    mdir = root + "/lib/modules/6.1.0-test/kernel"
    assert kmod.find(mdir, "ramoops", "fs/pstore/ramoops.ko").endswith("fs/pstore/ramoops.ko")
    # moved (another distro's layout): found by searching the tree
    os.makedirs(mdir + "/extra")
    os.rename(mdir + "/fs/pstore/ramoops.ko", mdir + "/extra/ramoops.ko")
    assert kmod.find(mdir, "ramoops", "fs/pstore/ramoops.ko") == mdir + "/extra/ramoops.ko"
    assert kmod.find(mdir, "nosuch", None) is None


def test_missing_module_is_one_line_error(tmp_path, monkeypatch):
    root = tree(tmp_path, modules=("reed_solomon",))
    monkeypatch.setattr(syscall, "_impl", FakeImpl())
    e = pytest.raises(DeviceError, kmod.load, "ramoops", "", root + "/lib/modules/6.1.0-test/kernel",
                      "fs/pstore/ramoops.ko", root)
    assert str(e.value) == ("Failed to find module 'ramoops.ko' under '%s/lib/modules/6.1.0-test/kernel'"
                            % root)


def test_state_loaded_builtin_absent(tmp_path):
    root = tree(tmp_path)
    assert kmod.state("ramoops", root) is None
    os.makedirs(root + "/sys/module/ramoops/parameters")
    assert kmod.state("ramoops", root) == kmod.BUILTIN
    open(root + "/sys/module/ramoops/initstate", "w").write("live\n")
    assert kmod.state("ramoops", root) == kmod.ALREADY


def test_builtin_from_modules_builtin(tmp_path, monkeypatch):
    root = tree(tmp_path, modules=())
    os.makedirs(root + "/lib/modules/6.1.0-test/kernel")
    open(root + "/lib/modules/6.1.0-test/modules.builtin", "w").write(
        "kernel/lib/reed_solomon/reed_solomon.ko\nkernel/fs/pstore/ramoops.ko\n")
    monkeypatch.setattr(syscall, "_impl", FakeImpl())
    mdir = root + "/lib/modules/6.1.0-test/kernel"
    assert kmod.load("ramoops", "", mdir, "fs/pstore/ramoops.ko", root) == kmod.BUILTIN


def test_eexist_is_success(tmp_path, monkeypatch):
    root = tree(tmp_path)
    monkeypatch.setattr(syscall, "_impl", FakeImpl(finit_errno=errno.EEXIST))
    mdir = root + "/lib/modules/6.1.0-test/kernel"
    assert kmod.load("mtd", "", mdir, "drivers/mtd/mtd.ko", root) == kmod.ALREADY


def test_enosys_falls_back_to_init_module(tmp_path, monkeypatch):
    root = tree(tmp_path)
    fake = FakeImpl(finit_errno=errno.ENOSYS)
    monkeypatch.setattr(syscall, "_impl", fake)
    mdir = root + "/lib/modules/6.1.0-test/kernel"
    assert kmod.load("phram", "phram=x,0x1000,0x1000", mdir, "drivers/mtd/devices/phram.ko",
                     root) == kmod.LOADED
    assert fake.calls[1] == ("init", ko("phram", "mtd"), "phram=x,0x1000,0x1000")


def test_enosys_and_unreadable_file_is_a_device_error(tmp_path, monkeypatch):
    root = tree(tmp_path)
    monkeypatch.setattr(syscall, "_impl", FakeImpl(finit_errno=errno.ENOSYS))
    mdir = root + "/lib/modules/6.1.0-test/kernel"
    ko = mdir + "/drivers/mtd/mtd.ko"
    os.remove(ko)
    os.mkdir(ko)          # found by name, but read() fails (EISDIR)
    e = pytest.raises(DeviceError, kmod.insert, ko)
    assert str(e.value).startswith("Failed to read module '%s': " % ko)


def test_kernel_refusal_names_the_file(tmp_path, monkeypatch):
    root = tree(tmp_path)
    monkeypatch.setattr(syscall, "_impl", FakeImpl(finit_errno=errno.ENOEXEC))
    mdir = root + "/lib/modules/6.1.0-test/kernel"
    e = pytest.raises(DeviceError, kmod.load, "mtd", "", mdir, "drivers/mtd/mtd.ko", root)
    assert "Failed to load module '%s/drivers/mtd/mtd.ko'" % mdir in str(e.value)
    assert "another kernel" in str(e.value)


def test_load_for_board_order_and_parameters(tmp_path, monkeypatch, board):
    root = tree(tmp_path)
    fake = FakeImpl()
    monkeypatch.setattr(syscall, "_impl", fake)
    res = kmod.load_for_board(board, root)
    assert [c[1] for c in fake.calls] == ["reed_solomon.ko", "ramoops.ko", "mtd.ko", "phram.ko"]
    assert fake.calls[1][2] == ("mem_address=0x1f000000 mem_size=0x80000 record_size=0x10000 "
                                "console_size=0x10000 ftrace_size=0 pmsg_size=0x10000 ecc=0 "
                                "mem_type=0 max_reason=2")
    assert fake.calls[3][2] == "phram=crashkeep,0x1f080000,0x80000"
    assert res.status == {"reed_solomon": "loaded", "ramoops": "loaded", "mtd": "loaded",
                          "phram": "loaded"}
    assert not res.errors


def test_load_for_board_missing_ramoops_still_loads_phram(tmp_path, monkeypatch, board):
    root = tree(tmp_path, modules=("reed_solomon", "mtd", "phram"))
    monkeypatch.setattr(syscall, "_impl", FakeImpl())
    res = kmod.load_for_board(board, root)
    assert "ramoops.ko" in res.errors["ramoops"]
    assert res.ok("phram") and not res.ok("ramoops")


def test_failed_dependency_fails_its_user(tmp_path, monkeypatch, board):
    root = tree(tmp_path, modules=("ramoops", "mtd", "phram"))
    fake = FakeImpl()
    monkeypatch.setattr(syscall, "_impl", fake)
    res = kmod.load_for_board(board, root)
    assert "reed_solomon.ko" in res.errors["ramoops"]
    assert "ramoops.ko" not in [c[1] for c in fake.calls]


def test_loaded_with_other_parameters_is_a_warning(tmp_path, monkeypatch, board):
    root = tree(tmp_path)
    p = tmp_path / "sys/module/ramoops/parameters"
    p.mkdir(parents=True)
    (tmp_path / "sys/module/ramoops/initstate").write_text("live\n")
    (p / "mem_address").write_text("520093696\n")    # 0x1f000000: same
    (p / "record_size").write_text("4096\n")         # differs
    monkeypatch.setattr(syscall, "_impl", FakeImpl())
    res = kmod.load_for_board(board, root)
    assert res.status["ramoops"] == kmod.ALREADY
    assert res.warnings == ["ramoops is loaded with record_size=4096, the board says 0x10000"]


def test_phram_loaded_without_our_device_gets_it_through_sysfs(tmp_path, monkeypatch, board):
    root = tree(tmp_path)
    (tmp_path / "sys/module/phram/parameters").mkdir(parents=True)
    (tmp_path / "sys/module/phram/initstate").write_text("live\n")
    (tmp_path / "sys/module/phram/parameters/phram").write_text("")
    (tmp_path / "proc/mtd").write_text("dev:    size   erasesize  name\n")
    monkeypatch.setattr(syscall, "_impl", FakeImpl())
    res = kmod.load_for_board(board, root, want=("phram",))
    assert (tmp_path / "sys/module/phram/parameters/phram").read_text() == "crashkeep,0x1f080000,0x80000"
    assert not res.warnings


@pytest.mark.parametrize("twin", TWINS, ids=lambda m: m.IMPL)
def test_real_syscall_refuses_garbage(tmp_path, monkeypatch, twin):
    """Both twins really call finit_module (then init_module): the kernel refuses a
    non-module (EINVAL/ENOEXEC as root, EPERM otherwise, ENOSYS without modules)."""
    bad = tmp_path / "bad.ko"
    bad.write_bytes(b"not a module")
    monkeypatch.setattr(syscall, "_impl", twin)
    e = pytest.raises(DeviceError, kmod.insert, str(bad), "")
    assert str(e.value).startswith("Failed to load module '%s': " % bad)
    with pytest.raises(OSError) as oe:
        twin.finit_module(str(bad), "")
    assert oe.value.errno in (errno.EINVAL, errno.ENOEXEC, errno.EPERM, errno.ENOSYS,
                              errno.EFAULT)


@pytest.mark.parametrize("twin", TWINS, ids=lambda m: m.IMPL)
def test_mount_errors_are_oserrors(tmp_path, twin):
    with pytest.raises(OSError) as e:
        twin.mount(str(tmp_path / "no-such-dev"), str(tmp_path / "no-such-dir"), "ext4", 0, "")
    assert e.value.errno in (errno.ENOENT, errno.EPERM, errno.ENODEV, errno.ENOTDIR)
    with pytest.raises(OSError):
        twin.umount(str(tmp_path / "not-mounted"))


@pytest.mark.parametrize("twin", TWINS, ids=lambda m: m.IMPL)
def test_mount_tmpfs_round_trip(tmp_path, twin):
    """Mount and unmount for real where this process may (root in a VM)."""
    mp = tmp_path / "mnt"
    mp.mkdir()
    try:
        twin.mount("none", str(mp), "tmpfs", 0, "size=64k")
    except OSError as e:
        if e.errno == errno.EPERM:
            pytest.skip("not allowed to mount here")
        raise
    try:
        assert any(line.split()[1] == str(mp) for line in open("/proc/mounts"))
        (mp / "x").write_bytes(b"1")
    finally:
        twin.umount(str(mp))
    assert not (mp / "x").exists()


@pytest.mark.parametrize("impl", TWINS, ids=lambda m: m.IMPL)
def test_mmap_read_gives_the_bytes_at_an_unaligned_offset(tmp_path, impl):
    data = bytes(range(256)) * 64
    p = tmp_path / "mem"
    p.write_bytes(data)
    assert impl.mmap_read(str(p), 5000, 3000) == data[5000:8000]
    with pytest.raises(OSError):
        impl.mmap_read(str(tmp_path / "missing"), 0, 16)


def test_read_phys_maps_where_read_is_refused(tmp_path, monkeypatch):
    """armhf: read() of /dev/mem outside the linear map fails with EFAULT; the
    same range through a mapping is what the board holds."""
    data = bytes(range(256)) * 64
    p = tmp_path / "mem"
    p.write_bytes(data)
    assert kmod.read_phys(str(p), 4096, 100) == data[4096:4196]

    def efault(path, mode="r"):
        raise OSError(errno.EFAULT, "Bad address", path)
    monkeypatch.setattr(kmod, "open", efault, raising=False)
    assert kmod.read_phys(str(p), 4100, 200) == data[4100:4300]


def test_read_phys_short_read_is_an_error_not_a_mapping(tmp_path):
    p = tmp_path / "mem"
    p.write_bytes(b"x" * 100)
    with pytest.raises(OSError, match="short read"):
        kmod.read_phys(str(p), 50, 100)


def calls(fake):
    return [c[1][:-3] for c in fake.calls]


def test_openwrt_style_pstore_and_deflate_modules_load_before_ramoops(tmp_path, monkeypatch,
                                                                      board):
    """kmod-ramoops depends on kmod-pstore and kmod-reed-solomon; pstore asks for
    its compressor at run time; mtd built in."""
    root = tree(tmp_path, modules=("reed_solomon", "deflate", "pstore", "ramoops", "phram"),
                depends={"ramoops": "reed_solomon,pstore"})
    open(root + "/lib/modules/6.1.0-test/modules.builtin", "w").write("kernel/drivers/mtd/mtd.ko\n")
    fake = FakeImpl()
    monkeypatch.setattr(syscall, "_impl", fake)
    res = kmod.load_for_board(board, root)
    assert calls(fake) == ["reed_solomon", "deflate", "pstore", "ramoops", "phram"]
    assert res.status == {"reed_solomon": "loaded", "deflate": "loaded", "pstore": "loaded",
                          "ramoops": "loaded", "mtd": "builtin", "phram": "loaded"}
    assert fake.calls[3][2].startswith("mem_address=0x1f000000 ")
    assert not res.errors and not res.warnings


def test_missing_compressor_is_not_an_error(tmp_path, monkeypatch, board):
    root = tree(tmp_path, modules=("reed_solomon", "pstore", "ramoops", "mtd", "phram"),
                depends={"ramoops": "reed_solomon,pstore"})
    fake = FakeImpl()
    monkeypatch.setattr(syscall, "_impl", fake)
    res = kmod.load_for_board(board, root)
    assert calls(fake) == ["reed_solomon", "pstore", "ramoops", "mtd", "phram"]
    assert not res.errors


def test_modules_dep_wins_over_modinfo(tmp_path, monkeypatch, board):
    """An installed system's modules.dep (paths relative to lib/modules/<ver>)."""
    root = tree(tmp_path, depends={"ramoops": "nosuch"})
    base = root + "/lib/modules/6.1.0-test"
    os.makedirs(base + "/kernel/extra")
    os.rename(base + "/kernel/fs/pstore/ramoops.ko", base + "/kernel/extra/ramoops.ko")
    open(base + "/modules.dep", "w").write(
        "kernel/extra/ramoops.ko: kernel/lib/reed_solomon/reed_solomon.ko\n"
        "kernel/lib/reed_solomon/reed_solomon.ko:\n"
        "kernel/drivers/mtd/devices/phram.ko: kernel/drivers/mtd/mtd.ko\n"
        "kernel/drivers/mtd/mtd.ko:\n")
    fake = FakeImpl()
    monkeypatch.setattr(syscall, "_impl", fake)
    res = kmod.load_for_board(board, root)
    assert calls(fake) == ["reed_solomon", "ramoops", "mtd", "phram"]
    assert not res.errors


def test_softdep_pre_loads_first_and_may_be_absent(tmp_path, monkeypatch, board):
    root = tree(tmp_path, modules=("reed_solomon", "ramoops", "mtd", "phram", "deflate"))
    p = root + "/lib/modules/6.1.0-test/kernel/fs/pstore/ramoops.ko"
    open(p, "wb").write(ko("ramoops", "reed_solomon", ["softdep=pre: deflate nosuch post: x"]))
    fake = FakeImpl()
    monkeypatch.setattr(syscall, "_impl", fake)
    res = kmod.load_for_board(board, root)
    assert calls(fake)[:3] == ["deflate", "reed_solomon", "ramoops"]
    assert not res.errors


def test_dependency_cycle_is_bounded_error(tmp_path, monkeypatch, board):
    root = tree(tmp_path, depends={"reed_solomon": "ramoops"})
    monkeypatch.setattr(syscall, "_impl", FakeImpl())
    res = kmod.load_for_board(board, root)
    assert "deeper than" in res.errors["ramoops"]
    assert res.ok("phram")


def test_module_without_modinfo_is_one_line_error(tmp_path, monkeypatch, board):
    root = tree(tmp_path)
    open(root + "/lib/modules/6.1.0-test/kernel/fs/pstore/ramoops.ko", "wb").write(b"\x7fELFjunk")
    fake = FakeImpl()
    monkeypatch.setattr(syscall, "_impl", fake)
    res = kmod.load_for_board(board, root)
    assert res.errors["ramoops"].startswith("Failed to read module '%s/lib/modules/6.1.0-test/"
                                            "kernel/fs/pstore/ramoops.ko': " % root)
    assert "\n" not in res.errors["ramoops"] and res.ok("phram")


def test_dt_board_loads_without_parameters(tmp_path, monkeypatch):
    """reserve = dt: the DT nodes carry the parameters; passing them too would
    probe ramoops twice and give two MTD devices over the same memory."""
    root = tree(tmp_path)
    (tmp_path / "proc/mtd").write_text("dev:    size   erasesize  name\n")
    b = boardconf.parse(open(BOARD).read().replace("board.reserve = memmap", "board.reserve = dt"))
    fake = FakeImpl()
    monkeypatch.setattr(syscall, "_impl", fake)
    res = kmod.load_for_board(b, root)
    assert [(c[1], c[2]) for c in fake.calls] == [("reed_solomon.ko", ""), ("ramoops.ko", ""),
                                                  ("mtd.ko", ""), ("phram.ko", "")]
    assert not res.errors


def test_dt_board_never_adds_a_phram_device_through_sysfs(tmp_path, monkeypatch):
    root = tree(tmp_path)
    (tmp_path / "sys/module/phram/parameters").mkdir(parents=True)
    (tmp_path / "sys/module/phram/initstate").write_text("live\n")
    (tmp_path / "sys/module/phram/parameters/phram").write_text("")
    (tmp_path / "proc/mtd").write_text("dev:    size   erasesize  name\n")
    b = boardconf.parse(open(BOARD).read().replace("board.reserve = memmap", "board.reserve = dt"))
    monkeypatch.setattr(syscall, "_impl", FakeImpl())
    res = kmod.load_for_board(b, root, want=("phram",))
    assert (tmp_path / "sys/module/phram/parameters/phram").read_text() == ""
    assert "should create it" in res.warnings[0]


# ---- real modules from Debian's kernel packages (tests/e2e/kernels.py) -------------

def _kernel_tree(target):
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "e2e"))
    try:
        import kernels
    finally:
        sys.path.pop(0)
    return kernels.kernel_dir(target)


REAL = {
    # target: (ramoops depends=, phram depends=, load order for the board)
    "x86_64": (["reed_solomon"], ["mtd"], ["reed_solomon", "ramoops", "mtd", "phram"]),
    "aarch64": (["reed_solomon"], ["mtd"], ["reed_solomon", "ramoops", "mtd", "phram"]),
    "armhf": (["reed_solomon", "pstore"], [],
              ["reed_solomon", "deflate", "pstore", "ramoops", "phram"]),
    "mipsel": (["reed_solomon", "pstore"], [],
               ["reed_solomon", "deflate", "pstore", "ramoops", "phram"]),
}


@pytest.mark.parametrize("target", sorted(REAL))
def test_real_debian_modules_resolve_in_depends_order(tmp_path, monkeypatch, target):
    kdir = _kernel_tree(target)
    rel = os.listdir(os.path.join(kdir, "lib", "modules"))[0]
    mdir = os.path.join(kdir, "lib", "modules", rel, "kernel")
    ramoops_deps, phram_deps, order = REAL[target]
    assert sorted(kmod.depends_of(mdir + "/fs/pstore/ramoops.ko")[0]) == sorted(ramoops_deps)
    assert kmod.depends_of(mdir + "/drivers/mtd/devices/phram.ko")[0] == phram_deps
    info = kmod.modinfo(mdir + "/fs/pstore/ramoops.ko")
    assert info["vermagic"][0].startswith(rel + " ") and info["name"] == ["ramoops"]
    # the board's loader against the real tree (the kernel calls faked): a root
    # whose /lib/modules/<release> is the package's and /sys/module is empty
    (tmp_path / "sys/module").mkdir(parents=True)
    (tmp_path / "proc/sys/kernel").mkdir(parents=True)
    (tmp_path / "proc/sys/kernel/osrelease").write_text(rel + "\n")
    (tmp_path / "lib/modules").mkdir(parents=True)
    os.symlink(os.path.join(kdir, "lib", "modules", rel), str(tmp_path / "lib/modules" / rel))
    b = boardconf.load(os.path.join(os.path.dirname(BOARD), "qemu-%s.conf" % target))
    fake = FakeImpl()
    monkeypatch.setattr(syscall, "_impl", fake)
    res = kmod.load_for_board(b, str(tmp_path))
    assert calls(fake) == order, res.errors
    assert not res.errors
    if "pstore" not in order:      # built in: named by modules.builtin, no file
        assert kmod._builtin_listed("pstore", str(tmp_path), kmod.module_dir(b, str(tmp_path)))
