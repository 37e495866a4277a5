"""tests/e2e/mkinitramfs.py's newc writer, checked with GNU cpio as the oracle:
listing (types, modes, owners, device numbers, link targets) and extracted bytes."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import mkinitramfs  # noqa: E402


def archive():
    c = mkinitramfs.Cpio()
    c.file("etc/crashkeep/board.conf", b"board.name = x\n")
    c.file("bin/tool", b"\x7fELF" + bytes(range(256)) * 3, 0o755)
    c.file("empty", b"")
    c.symlink("bin/sh", "/bin/busybox")
    c.chardev("dev/console", 5, 1)
    c.mkdir("proc")
    return c.finish()


def test_gnu_cpio_lists_what_was_written(tmp_path):
    data = archive()
    assert len(data) % 4 == 0
    r = subprocess.run(["cpio", "-t", "-v", "--quiet", "--numeric-uid-gid"], input=data,
                       capture_output=True, check=True)
    lines = r.stdout.decode().splitlines()
    by_name = {ln.split()[-1] if "->" not in ln else ln.split()[-3]: ln for ln in lines}
    assert sorted(by_name) == sorted(["etc", "etc/crashkeep", "etc/crashkeep/board.conf",
                                      "bin", "bin/tool", "empty", "bin/sh", "dev",
                                      "dev/console", "proc"])
    assert by_name["bin/tool"].startswith("-rwxr-xr-x")
    assert by_name["etc/crashkeep/board.conf"].startswith("-rw-r--r--")
    assert by_name["dev/console"].startswith("crw-------")
    assert "5,   1" in by_name["dev/console"] or "5, 1" in by_name["dev/console"]
    assert by_name["bin/sh"].startswith("lrwxrwxrwx") and by_name["bin/sh"].endswith(
        "bin/sh -> /bin/busybox")
    assert by_name["proc"].startswith("drwxr-xr-x")
    for ln in lines:
        assert ln.split()[2:4] == ["0", "0"], ln        # owned by root


def test_gnu_cpio_extracts_the_same_bytes(tmp_path):
    data = mkinitramfs.gzip_bytes(archive())
    assert len(data) % 4 == 0
    raw = subprocess.run(["gzip", "-dc"], input=data, capture_output=True, check=True).stdout
    subprocess.run(["cpio", "-i", "-d", "--quiet", "--no-absolute-filenames",
                    "--nonmatching", "dev/console"], input=raw, cwd=str(tmp_path), check=True)
    assert (tmp_path / "etc/crashkeep/board.conf").read_bytes() == b"board.name = x\n"
    assert (tmp_path / "bin/tool").read_bytes() == b"\x7fELF" + bytes(range(256)) * 3
    assert (tmp_path / "empty").read_bytes() == b""
    assert os.readlink(str(tmp_path / "bin/sh")) == "/bin/busybox"


def test_same_inputs_same_bytes():
    assert archive() == archive()
    assert mkinitramfs.gzip_bytes(archive()) == mkinitramfs.gzip_bytes(archive())
