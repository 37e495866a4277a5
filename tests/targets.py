"""The binary's targets: what each one is, how to build it and run it on this host.

  build(target)  -> build/out/crashkeep-<target> (make -C build TARGET=<target>)
  prefix(target) -> the argv prefix that runs it here: [binary] for the host's
                    arch, [qemu-<arch>-static, binary] for the others (qemu-user,
                    called directly: no binfmt_misc registration needed)
"""
import os
import platform
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "build", "out")
HOST_BINARY = os.path.join(OUT, "crashkeep")

EM_X86_64, EM_AARCH64, EM_ARM, EM_MIPS = 62, 183, 40, 8
ELFCLASS32, ELFCLASS64 = 1, 2
ELFDATA2LSB = 1


class Target:
    def __init__(self, name, qemu, e_machine, ei_class, uname, board_arch):
        self.name = name
        self.qemu = qemu                # qemu-user binary
        self.e_machine = e_machine
        self.ei_class = ei_class
        self.uname = uname              # `uname -m` on this target (under qemu-user too)
        self.board_arch = board_arch    # its board.arch value

    @property
    def binary(self):
        return os.path.join(OUT, "crashkeep-" + self.name)

    @property
    def native(self):
        return platform.machine() == self.uname

    def __repr__(self):
        return self.name


TARGETS = {t.name: t for t in [
    Target("aarch64", "qemu-aarch64-static", EM_AARCH64, ELFCLASS64, "aarch64", "arm64"),
    Target("armhf", "qemu-arm-static", EM_ARM, ELFCLASS32, "armv7l", "arm"),
    Target("mipsel", "qemu-mipsel-static", EM_MIPS, ELFCLASS32, "mips", "mipsel"),
    Target("x86_64", "qemu-x86_64-static", EM_X86_64, ELFCLASS64, "x86_64", "x86_64"),
]}
NAMES = list(TARGETS)


def build(name):
    """make -C build TARGET=name (incremental); the binary's path."""
    r = subprocess.run(["make", "-s", "-C", os.path.join(ROOT, "build"), "TARGET=" + name],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("make -C build TARGET=%s failed:\n%s\n%s"
                           % (name, r.stdout[-3000:], r.stderr[-3000:]))
    return TARGETS[name].binary


def build_host():
    r = subprocess.run(["make", "-s", "-C", os.path.join(ROOT, "build")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("make -C build failed:\n%s\n%s" % (r.stdout[-3000:], r.stderr[-3000:]))
    return HOST_BINARY


def qemu_path(name):
    t = TARGETS[name]
    p = shutil.which(t.qemu) or os.path.join("/usr/bin", t.qemu)
    if not os.path.exists(p):
        raise RuntimeError("%s is missing (Debian package qemu-user-static; tests/setup.sh "
                           "installs it)" % t.qemu)
    return p


def prefix(name, binary=None):
    t = TARGETS[name]
    binary = binary or t.binary
    return [binary] if t.native else [qemu_path(name), binary]


def elf_header(path):
    """(EI_CLASS, EI_DATA, e_machine, [p_type...]) of an ELF file."""
    import struct
    with open(path, "rb") as f:
        data = f.read(1 << 16)
    if data[:4] != b"\x7fELF":
        raise ValueError("%s is not an ELF file" % path)
    ei_class, ei_data = data[4], data[5]
    end = "<" if ei_data == ELFDATA2LSB else ">"
    e_machine, = struct.unpack_from(end + "H", data, 18)
    if ei_class == ELFCLASS64:
        e_phoff, = struct.unpack_from(end + "Q", data, 32)
        e_phentsize, e_phnum = struct.unpack_from(end + "HH", data, 54)
    else:
        e_phoff, = struct.unpack_from(end + "I", data, 28)
        e_phentsize, e_phnum = struct.unpack_from(end + "HH", data, 42)
    types = [struct.unpack_from(end + "I", data, e_phoff + i * e_phentsize)[0]
             for i in range(e_phnum)]
    return ei_class, ei_data, e_machine, types
