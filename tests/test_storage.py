"""Durable writes, the flash target and retention helpers (CPython; real tmpfs
mounts where this process may mount, for full and read-only filesystems)."""
import errno
import os

import pytest

from crashkeep.formats import boardconf
from crashkeep.system import storage, syscall
from crashkeep.errors import DeviceError, NoSpaceError


def test_write_durable_round_trip(tmp_path):
    n = storage.write_durable(str(tmp_path), "rec", b"abc" * 1000)
    assert n == 3000
    assert (tmp_path / "rec").read_bytes() == b"abc" * 1000
    assert os.listdir(tmp_path) == ["rec"]
    storage.write_durable(str(tmp_path), "rec", b"new")     # replaces atomically
    assert (tmp_path / "rec").read_bytes() == b"new"


def test_write_failure_removes_temp_and_names_path(tmp_path, monkeypatch):
    def boom(f):
        raise OSError(errno.EIO, "Input/output error")
    monkeypatch.setattr(storage, "fsync_file", boom)
    with pytest.raises(DeviceError) as e:
        storage.write_durable(str(tmp_path), "rec", b"x")
    assert str(e.value) == "Failed to write '%s/rec': Input/output error" % tmp_path
    assert os.listdir(tmp_path) == []


def test_enospc_is_nospace_error(tmp_path, monkeypatch):
    def full(f):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(storage, "fsync_file", full)
    with pytest.raises(NoSpaceError):
        storage.write_durable(str(tmp_path), "rec", b"x")


def test_read_back_mismatch(tmp_path):
    (tmp_path / "f").write_bytes(b"abd")
    with pytest.raises(DeviceError) as e:
        storage.check_file(str(tmp_path / "f"), b"abc")
    assert "Failed to verify" in str(e.value)


def test_parse_options():
    assert storage.parse_options("ro,noatime,data=journal,commit=1") == (
        storage.MS_RDONLY | storage.MS_NOATIME, "data=journal,commit=1")
    assert storage.parse_options("") == (0, "")


def test_mounted_at(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/mounts").write_text("/dev/vda /run/crashkeep/flash ext4 rw,relatime 0 0\n")
    assert storage.mounted_at("/run/crashkeep/flash", str(tmp_path)) == ("/dev/vda", "ext4",
                                                                         "rw,relatime")
    assert storage.mounted_at("/mnt", str(tmp_path)) is None


def board(text):
    return boardconf.parse("board.name = t\nphram.name = k\nphram.start = 0x1000\n"
                           "phram.len = 0x1000\n" + text)


def test_open_target_directory_without_device(tmp_path):
    (tmp_path / "data").mkdir()
    t = storage.open_target(board("flash.mountpoint = /data\nflash.dir = ck\n"), str(tmp_path))
    assert t.path == str(tmp_path) + "/data/ck" and os.path.isdir(t.path) and not t.mounted
    with pytest.raises(DeviceError) as e:
        storage.open_target(board("flash.mountpoint = /nothere\n"), str(tmp_path))
    assert "Failed to find flash directory" in str(e.value)


def test_open_target_missing_device(tmp_path):
    with pytest.raises(DeviceError) as e:
        storage.open_target(board("flash.device = /dev/vda\nflash.fstype = ext4\n"), str(tmp_path))
    assert str(e.value) == ("Failed to find flash device '%s/dev/vda': No such file or directory"
                            % tmp_path)


def test_open_target_mounts_and_unmounts(tmp_path, monkeypatch):
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev/vda").write_bytes(b"")
    calls = []
    monkeypatch.setattr(syscall, "mount", lambda *a: calls.append(("mount",) + a))
    monkeypatch.setattr(syscall, "umount", lambda *a: calls.append(("umount",) + a))
    t = storage.open_target(board("flash.device = /dev/vda\nflash.fstype = ext4\n"
                                  "flash.options = noatime,commit=1\n"), str(tmp_path))
    mp = str(tmp_path) + "/run/crashkeep/flash"
    assert calls == [("mount", str(tmp_path) + "/dev/vda", mp, "ext4", storage.MS_NOATIME,
                      "commit=1")]
    t.close()
    assert calls[-1] == ("umount", mp)


def test_open_target_read_only_device(tmp_path, monkeypatch):
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev/vda").write_bytes(b"")

    def erofs(*a):
        raise OSError(errno.EROFS, "Read-only file system", a[1])
    monkeypatch.setattr(syscall, "mount", erofs)
    with pytest.raises(DeviceError) as e:
        storage.open_target(board("flash.device = /dev/vda\nflash.fstype = ext4\n"), str(tmp_path))
    assert "read-only device" in str(e.value)


def test_already_mounted_is_reused(tmp_path, monkeypatch):
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev/vda").write_bytes(b"")
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/mounts").write_text("/dev/vda /run/crashkeep/flash ext4 rw 0 0\n")
    monkeypatch.setattr(syscall, "mount", lambda *a: pytest.fail("mounted twice"))
    t = storage.open_target(board("flash.device = /dev/vda\nflash.fstype = ext4\n"), str(tmp_path))
    assert not t.mounted


def test_compress_round_trip_and_deterministic():
    data = b"<4>[ 1.0] line\n" * 500
    z = storage.compress(data)
    assert z[:2] == b"\x1f\x8b" and len(z) < len(data) // 10
    assert storage.compress(data) == z
    import gzip
    assert gzip.decompress(z) == data            # a plain gzip file: zcat reads it
    assert storage.decompress(z) == data


def test_tree_bytes_and_remove_tree(tmp_path):
    (tmp_path / "b/phram").mkdir(parents=True)
    (tmp_path / "b/x").write_bytes(b"1" * 10)
    (tmp_path / "b/phram/y").write_bytes(b"2" * 5)
    assert storage.tree_bytes(str(tmp_path / "b")) == 15
    storage.remove_tree(str(tmp_path / "b"))
    assert not (tmp_path / "b").exists()


@pytest.fixture
def tmpfs(tmp_path):
    """A real 64 KiB tmpfs, or skip where mounting is not allowed."""
    mp = tmp_path / "mnt"
    mp.mkdir()
    try:
        syscall.mount("none", str(mp), "tmpfs", 0, "size=64k")
    except OSError as e:
        if e.errno == errno.EPERM:
            pytest.skip("not allowed to mount here")
        raise
    yield str(mp)
    syscall.umount(str(mp))


def test_full_filesystem_for_real(tmpfs):
    assert storage.free_bytes(tmpfs) <= 64 * 1024
    with pytest.raises(NoSpaceError) as e:
        storage.write_durable(tmpfs, "big", b"z" * (256 * 1024))
    assert "No space left" in str(e.value)
    assert os.listdir(tmpfs) == []


def test_read_only_filesystem_for_real(tmpfs):
    syscall.mount("none", tmpfs, "tmpfs", storage.MS_RDONLY | 32, "")   # 32 = MS_REMOUNT
    with pytest.raises(DeviceError) as e:
        storage.write_durable(tmpfs, "x", b"1")
    assert "Read-only file system" in str(e.value)
