#!/usr/bin/env python3
"""Assemble a bootable test initramfs (gzip'd cpio "newc") without root.

Parts:
- busybox-static (/bin/busybox and one symlink per applet),
- kernel modules taken from an extracted Debian kernel package (`dpkg-deb -x`,
  not installed), with every dependency named in their `depends=` modinfo
  string, at /lib/modules/<version>/kernel/<same path as in the package>,
- the crashkeep binary at /bin/crashkeep (optional),
- a board config at /etc/crashkeep/board.conf,
- an /init script, and any extra files.

The cpio archive is written here (not by cpio(1)) so that device nodes such as
/dev/console can be created by an unprivileged user and every file is owned by
root with a fixed mtime: the same inputs give the same bytes.

Usage:
  mkinitramfs.py --kernel-dir DIR --init FILE -o OUT.cpio.gz
                 [--module NAME]... [--binary FILE] [--board FILE]
                 [--file SRC:DST]... [--busybox /bin/busybox]

Layout source: the kernel's Documentation/driver-api/early-userspace/buffer-format.rst

  newc header, 110 ASCII bytes, then the name (NUL-terminated), padded to 4,
  then the data, padded to 4:
  offset  size  field
  0       6     c_magic "070701"
  6       8     c_ino        (each 8-byte field is hex)
  14      8     c_mode
  22      8     c_uid
  30      8     c_gid
  38      8     c_nlink
  46      8     c_mtime
  54      8     c_filesize
  62      8     c_devmajor
  70      8     c_devminor
  78      8     c_rdevmajor
  86      8     c_rdevminor
  94      8     c_namesize   (including the NUL)
  102     8     c_check      (0)
  The archive ends with an entry named "TRAILER!!!".
"""
import argparse
import gzip
import os
import stat
import subprocess
import sys

MTIME = 0x60000000   # fixed: reproducible archives


class Cpio:
    """An in-memory newc archive; directories are added for every parent path."""

    def __init__(self):
        self.out = bytearray()
        self.ino = 1
        self.dirs = set()

    def _entry(self, name, mode, data=b"", rdev=(0, 0), nlink=1):
        name_b = name.encode() + b"\0"
        hdr = "070701" + "".join("%08X" % v for v in (
            self.ino, mode, 0, 0, nlink, MTIME, len(data), 0, 0, rdev[0], rdev[1],
            len(name_b), 0))
        self.ino += 1
        self.out += hdr.encode() + name_b
        self.out += b"\0" * (-len(self.out) % 4)
        self.out += data
        self.out += b"\0" * (-len(self.out) % 4)

    def mkdir(self, path, mode=0o755):
        path = path.strip("/")
        if not path or path in self.dirs:
            return
        parent = os.path.dirname(path)
        if parent:
            self.mkdir(parent)
        self.dirs.add(path)
        self._entry(path, stat.S_IFDIR | mode, nlink=2)

    def file(self, path, data, mode=0o644):
        path = path.strip("/")
        self.mkdir(os.path.dirname(path))
        self._entry(path, stat.S_IFREG | mode, data)

    def copy(self, src, path, mode=None):
        with open(src, "rb") as f:
            data = f.read()
        if mode is None:
            mode = stat.S_IMODE(os.stat(src).st_mode)
        self.file(path, data, mode)

    def symlink(self, path, target):
        path = path.strip("/")
        self.mkdir(os.path.dirname(path))
        self._entry(path, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, path, major, minor, mode=0o600):
        path = path.strip("/")
        self.mkdir(os.path.dirname(path))
        self._entry(path, stat.S_IFCHR | mode, rdev=(major, minor))

    def finish(self):
        self._entry("TRAILER!!!", 0)
        return bytes(self.out)


def gzip_bytes(data, level=6):
    # mtime=0: reproducible. Padded to 4 so that archives can be concatenated
    # (the kernel unpacks one segment after another).
    z = gzip.compress(data, compresslevel=level, mtime=0)
    return z + b"\0" * (-len(z) % 4)


# ---- kernel modules -------------------------------------------------------

def kernel_version(kernel_dir):
    vers = sorted(os.listdir(os.path.join(kernel_dir, "lib", "modules")))
    if len(vers) != 1:
        raise SystemExit("expected one kernel version under %s/lib/modules, found %r"
                         % (kernel_dir, vers))
    return vers[0]


def module_index(kernel_dir):
    """{module name: path relative to lib/modules/<ver>/kernel}."""
    base = os.path.join(kernel_dir, "lib", "modules", kernel_version(kernel_dir), "kernel")
    idx = {}
    for root, _, files in os.walk(base):
        for f in files:
            if f.endswith(".ko"):
                idx[f[:-3].replace("-", "_")] = os.path.relpath(os.path.join(root, f), base)
    return base, idx


def modinfo_depends(path):
    """The module's `depends=` modinfo string as a list of module names."""
    with open(path, "rb") as f:
        data = f.read()
    # .modinfo holds NUL-separated key=value strings; depends= appears once.
    i = data.find(b"\0depends=")
    if i < 0:
        return []
    j = data.index(b"\0", i + 1)
    val = data[i + len(b"\0depends="):j].decode()
    return [d.replace("-", "_") for d in val.split(",") if d]


def builtin_modules(kernel_dir):
    """Names the kernel has built in (modules.builtin of the package), as a set."""
    p = os.path.join(kernel_dir, "lib", "modules", kernel_version(kernel_dir), "modules.builtin")
    try:
        with open(p) as f:
            return {os.path.basename(l.strip())[:-3].replace("-", "_") for l in f
                    if l.strip().endswith(".ko")}
    except FileNotFoundError:
        return set()


def resolve_modules(kernel_dir, names):
    """Names (with dependencies first) in a load order, and their relative paths.
    Names the kernel has built in (modules.builtin) are left out."""
    base, idx = module_index(kernel_dir)
    builtin = builtin_modules(kernel_dir)
    order = []

    def visit(n, stack=()):
        n = n.replace("-", "_")
        if n in order or (n in builtin and n not in idx):
            return
        if n in stack:
            raise SystemExit("module dependency cycle: %s" % " -> ".join(stack + (n,)))
        if n not in idx:
            raise SystemExit("module %s not found under %s (built in? check the config)"
                             % (n, base))
        for d in modinfo_depends(os.path.join(base, idx[n])):
            visit(d, stack + (n,))
        order.append(n)

    for n in names:
        visit(n)
    return base, [(n, idx[n]) for n in order]


# ---- the image --------------------------------------------------------------

def busybox_applets(busybox):
    """Applet paths of a busybox that runs here (a foreign one cannot)."""
    out = subprocess.run([busybox, "--list-full"], check=True, capture_output=True,
                         text=True).stdout
    return [a for a in out.split() if a and not a.endswith("/busybox")]


def build(kernel_dir, init, out, modules=(), binary=None, board=None, files=(),
          busybox="/bin/busybox", level=6, applets_from=None):
    """Write OUT (gzip'd newc cpio); returns the ordered module list [(name, relpath)]."""
    ver = kernel_version(kernel_dir)
    base, mods = resolve_modules(kernel_dir, modules)
    c = Cpio()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "mnt",
              "run", "root", "etc/crashkeep"):
        c.mkdir(d)
    c.chardev("dev/console", 5, 1)
    c.chardev("dev/null", 1, 3, 0o666)
    c.copy(busybox, "bin/busybox", 0o755)
    for applet in busybox_applets(applets_from or busybox):
        if applet.strip("/") in ("bin/busybox",):
            continue
        c.symlink(applet, "/bin/busybox")
    c.copy(init, "init", 0o755)
    mdir = "lib/modules/%s/kernel" % ver
    for name, rel in mods:
        c.copy(os.path.join(base, rel), "%s/%s" % (mdir, rel), 0o644)
    # Load order for scripts that want every bundled module: "name relpath" lines.
    c.file("etc/modules.list", "".join("%s %s\n" % m for m in mods).encode())
    if binary:
        c.copy(binary, "bin/crashkeep", 0o755)
    if board:
        c.copy(board, "etc/crashkeep/board.conf", 0o644)
    for src, dst in files:
        if isinstance(src, bytes):
            c.file(dst, src, _mode_for(dst, src))
        else:
            c.copy(src, dst)
    data = gzip_bytes(c.finish(), level)
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, out)
    return mods


def _mode_for(dst, data):
    # Scripts and programs are executable, the rest is not.
    exe = dst.endswith(".sh") or data[:2] == b"#!" or data[:4] == b"\x7fELF"
    return 0o755 if exe else 0o644


def overlay(files):
    """A small extra segment to append to a built image: {dst: bytes}."""
    c = Cpio()
    for dst, data in sorted(files.items()):
        c.file(dst, data, _mode_for(dst, data))
    return gzip_bytes(c.finish(), 1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kernel-dir", required=True, help="extracted Debian linux-image package")
    ap.add_argument("--init", required=True, help="the /init script")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--module", action="append", default=[], help="module name (repeat)")
    ap.add_argument("--binary", help="crashkeep executable for /bin/crashkeep")
    ap.add_argument("--board", help="board config for /etc/crashkeep/board.conf")
    ap.add_argument("--file", action="append", default=[], metavar="SRC:DST")
    ap.add_argument("--busybox", default="/bin/busybox")
    a = ap.parse_args(argv)
    files = [tuple(f.split(":", 1)) for f in a.file]
    mods = build(a.kernel_dir, a.init, a.out, a.module, a.binary, a.board, files, a.busybox)
    sys.stdout.write("%s: %d modules (%s)\n" % (a.out, len(mods), " ".join(n for n, _ in mods)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
