"""QEMU test bed: boot a real Debian kernel on a BusyBox initramfs, run shell
snippets across warm reboots, read the results back from the host.

Using it (pytest)
-----------------
    import pytest
    pytestmark = pytest.mark.e2e

    def test_something(testbed):                     # fixture from conftest.py
        disk = testbed.make_disk("16M", "ext4")      # attached as /dev/vda
        run = testbed.run(boots=[
            '''load_modules
               echo hello > /dev/mtd0             # any BusyBox sh
               emit proc_mtd /proc/mtd            # -> run.files["proc_mtd"]
               panic_now''',                      # or: reboot -f, or just end
            '''load_modules
               ls /sys/fs/pstore
               crashkeep --version''',            # last boot: harness powers off
        ], disk=disk)
        assert b"crashkeep" in run.files["proc_mtd"]
        assert "dmesg-ramoops-0" in run.boot_logs[1]
        assert run.rcs[1] == 0                    # exit status of boot 2's snippet
        data = run.read_disk_file("/crashkeep/x")  # bytes, read with debugfs

Testbed.run(boots, disk=None, ram_file=None, kill_on=None, timeout=None,
            append="", board=None, files=None, no_reboot=False) -> Run
  boots     list of BusyBox sh snippets; boots[i] runs as boot i+1 in ONE QEMU
            process. Warm reset between boots: reserved RAM (ramoops, phram)
            survives. A snippet ends its boot by panicking (`panic_now` or
            `echo c > /proc/sysrq-trigger`), by `reboot -f`, or by just ending
            (then the harness reboots into the next snippet, or powers off after
            the last). A panic in the last boot ends the run too.
  disk      image path (from make_disk) or a list of them: /dev/vda, /dev/vdb...
            The harness adds one more small raw disk (virtio serial "ckboot",
            the boot counter) after them: with disk=None it is /dev/vda, so
            attach a disk whenever the code under test may touch /dev/vda.
  ram_file  file-backed guest RAM (512 MiB file): guest physical address P is
            at offset P of the file; a second run() on the same file sees the
            same RAM (power-cut and fault-injection tests). See read_ram/poke_ram.
  kill_on   text: QEMU is killed (SIGKILL) the moment the console prints it.
            run.killed is then True.
  timeout   seconds for the whole run (default 60 + 45 per boot); on expiry
            TestbedTimeout (an AssertionError) is raised with the console tail.
  append    extra kernel command-line words (e.g. "pstore.compress=none").
  board     another board config file for /etc/crashkeep/board.conf and for
            load_modules (default board-configs/qemu-x86_64.conf). The memmap=
            reservation on the command line follows the board given.
  files     {path in guest: bytes} added to the initramfs for this run
            ({"init": b"..."} replaces the test-bed /init: a board-style init
            that runs as PID 1; /testbed/autoload lists the disk-stack modules
            as "name path" lines; no boot markers then, so use console text).
  no_reboot QEMU exits at the first reset (-no-reboot): stop after a panic.

Run (result of run()):
  console       the serial console text of all boots (\\r removed)
  boot_logs[i]  console text of boot i+1, from its start marker to the next
  rcs[i]        exit status of snippet i+1 (None when it panicked/rebooted)
  panicked[i]   True when boot i+1's log shows "Kernel panic - not syncing"
  started       number of boots that started
  files[NAME]   bytes sent with `emit NAME FILE` (last one wins);
                emits: list of (boot, name, bytes) in order
  killed        True when kill_on fired;  returncode: QEMU's exit status
  disks         the disk images given; ram_file
  read_disk_file(path, disk=None) -> bytes   (FileNotFoundError if absent)
  list_disk(dir="/", disk=None) -> sorted names (no . and ..)
  stat_disk(path, disk=None) -> {"size": n, "mode": m} or None
  fsck(disk=None) -> (exit status, output) of e2fsck -fn on a journal-replayed copy
  Disks are read from the host without mounting (debugfs / mtools). For ext4 the
  journal is first replayed into a copy (e2fsck -E journal_only), as the next
  mount would do; the image itself is never changed.

Testbed (the `testbed` fixture; `testbed.tmp` is a fresh directory per test):
  make_disk(size="16M", fstype="ext4", name=None, populate=None) -> path
                (ext4, vfat or raw; populate=DIR fills an ext4 from a host directory)
  read_ram(ram_file, addr, size) -> bytes ; poke_ram(ram_file, addr, data)
  board  -> the default board config path; binary -> the crashkeep binary or None
  kernel_version, modules (names in the image, load order)

Inside the guest (every snippet)
--------------------------------
  proc, sys, devtmpfs are mounted; sysrq is enabled; the disk stack (virtio_blk,
  ext4, crc32c) is loaded; $BOOT (1-based) and $NBOOTS are set;
  /bin/crashkeep is the static binary (when built), /etc/crashkeep/board.conf
  the board config, /etc/crashkeep/crashkeep-hook.sh the init hook.
  load_modules [ARGS] insmod ramoops and phram with the board's parameters (from
                      `crashkeep board modules`) after their depends= (pstore on
                      armhf/mipsel; built-ins skipped); ARGS are added to
                      ramoops's line (e.g. dyndbg=+p)
  load_module NAME [ARGS]  insmod any bundled module (mtdblock, block2mtd, ...)
  emit NAME FILE|-    send a file (or stdin) to the host: run.files[NAME]
  panic_now           sync, then echo c > /proc/sysrq-trigger
  mount_disk [DEV] [DIR]   mount /dev/vda on /mnt by default
  mount_pstore        mount -t pstore on /sys/fs/pstore (NOT done by the prologue:
                      crashkeep boot must do it itself)
  The kernel command line is console=<target's> quiet panic=1 plus the memmap=/mem=
  words `crashkeep board cmdline` prints for the board.

Targets (Env(target=...), the `target_testbed` fixture): x86_64 (the default),
aarch64, armhf, mipsel; the TARGETS table below holds each one's QEMU machine,
console, virtio transport, emit channel, board and module list. The kernels
come from tests/e2e/kernels.py (Debian 6.1 + the modules each lacks, cached
outside the repo); busybox-static is the target's Debian package.
CRASHKEEP_BINARY_<TARGET> names a prebuilt binary instead of make -C build.

Building blocks (shared between pytest processes with file locks): the kernel
from tests/e2e/kernels.py (Debian's package picked at run time from
`apt-cache depends linux-image-<flavour>`, `apt-get download` + `dpkg-deb -x`,
cached under ${CRASHKEEP_CACHE:-~/.cache/crashkeep}; CRASHKEEP_KERNEL_DIR
overrides for x86_64), or with Env(kernel="pstore") (the `testbed_pstore`
fixture) the x86_64 test kernel that tests/e2e/kernel/build.sh makes from
Debian's linux-source with the pstore console, pmsg and ftrace front-ends; the initramfs images under tests/e2e/work/; the binary from
`make -C build` (build/out/crashkeep); the initramfs from tests/e2e/mkinitramfs.py.
"""
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORK = os.path.join(ROOT, "tests", "e2e", "work")
CACHE = os.path.join(WORK, "cache")
INITRAMFS_DIR = os.path.join(ROOT, "initramfs")     # what ships: the init hook
TESTBED_DIR = os.path.dirname(os.path.abspath(__file__))   # mkinitramfs.py, testbed-*.sh
RAM_BYTES = 512 << 20

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kernels  # noqa: E402

# Modules bundled in the image (each with its depends=; names the kernel has
# built in are left out). The first group is loaded by /init in every boot
# (disk stack for the boot counter and the test disks); the rest wait for
# load_modules / load_module / crashkeep boot.
_DISK_STACK = ["virtio_blk", "crc32c_generic", "ext4"]
_CRASHKEEP = ["reed_solomon", "deflate", "pstore", "ramoops", "mtd", "phram", "mtdblock",
              "block2mtd", "vfat", "nls_cp437", "nls_ascii"]
# Bundled when the kernel has them (armmp has no block2mtd): the tests that
# need them run on x86_64.
OPTIONAL = {"block2mtd", "vfat", "nls_cp437", "nls_ascii", "deflate"}

# One row per target: how QEMU runs it (../shared/docs/cross-arch.md).
#   console    the kernel console (virt has one PL011 in QEMU 7.2)
#   virtio     pci: -device virtio-blk-pci (pci-fixed: at fixed slots);
#              mmio: virtio-blk-device (virt)
#   data       where `emit` writes: a second serial port, or the console
#              when the machine has only one UART
#   machine    -M value (file-backed RAM appends memory-backend=)
TARGETS = {
    "x86_64": {"qemu": "qemu-system-x86_64", "machine": "pc", "cpu": None, "ram": "512M",
               "console": "ttyS0", "virtio": "pci-fixed", "data": "/dev/ttyS1",
               "board": "qemu-x86_64.conf", "binary": "crashkeep",
               "autoload": ["virtio_pci"] + _DISK_STACK},
    "aarch64": {"qemu": "qemu-system-aarch64", "machine": "virt", "cpu": "cortex-a53",
                "ram": "512M", "console": "ttyAMA0", "virtio": "mmio", "data": "/dev/console",
                "board": "qemu-aarch64.conf", "binary": "crashkeep-aarch64",
                "autoload": ["virtio_mmio"] + _DISK_STACK},
    "armhf": {"qemu": "qemu-system-arm", "machine": "virt", "cpu": "cortex-a15", "ram": "512M",
              "console": "ttyAMA0", "virtio": "mmio", "data": "/dev/console",
              "board": "qemu-armhf.conf", "binary": "crashkeep-armhf",
              "autoload": ["virtio_mmio"] + _DISK_STACK},
    "mipsel": {"qemu": "qemu-system-mipsel", "machine": "malta", "cpu": "24Kf", "ram": "256M",
               "console": "ttyS0", "virtio": "pci", "data": "/dev/console",
               "board": "qemu-mipsel.conf", "binary": "crashkeep-mipsel",
               "autoload": ["virtio_pci"] + _DISK_STACK},
}
for _t in TARGETS.values():
    _t["modules"] = _t["autoload"] + _CRASHKEEP

BOARD = os.path.join(ROOT, "board-configs", TARGETS["x86_64"]["board"])
BINARY = os.path.join(ROOT, "build", "out", "crashkeep")
QEMU = TARGETS["x86_64"]["qemu"]
RAM = TARGETS["x86_64"]["ram"]
AUTOLOAD = TARGETS["x86_64"]["autoload"]
MODULES = TARGETS["x86_64"]["modules"]

COUNTER_SERIAL = "ckboot"


class TestbedError(Exception):
    pass


class TestbedTimeout(AssertionError):
    pass


def _log(msg):
    sys.stderr.write("[testbed] %s\n" % msg)


class _Lock:
    """An exclusive flock: other pytest processes may build the same cache."""

    def __init__(self, name):
        os.makedirs(CACHE, exist_ok=True)
        self.path = os.path.join(CACHE, name + ".lock")

    def __enter__(self):
        self.f = open(self.path, "w")
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *a):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


# ---- kernel ------------------------------------------------------------------

def kernel_dir(target="x86_64"):
    """Extracted test kernel tree (tests/e2e/kernels.py: cached outside the repo)."""
    if target == "x86_64" and os.environ.get("CRASHKEEP_KERNEL_DIR"):
        return os.environ["CRASHKEEP_KERNEL_DIR"]
    try:
        return kernels.kernel_dir(target)
    except (kernels.KernelError, subprocess.CalledProcessError) as e:
        raise TestbedError(str(e))


PSTORE_KERNEL_SCRIPT = os.path.join(ROOT, "tests", "e2e", "kernel", "build.sh")


def pstore_kernel_dir():
    """The test kernel with the pstore console/pmsg/ftrace front-ends that
    Debian's kernels lack: built once per machine by tests/e2e/kernel/build.sh
    (cached outside the repo; the first build takes minutes), laid out like an
    extracted linux-image package."""
    _log("pstore kernel: bash %s" % os.path.relpath(PSTORE_KERNEL_SCRIPT, ROOT))
    r = subprocess.run(["bash", PSTORE_KERNEL_SCRIPT], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0 or not lines or not os.path.exists(os.path.join(lines[-1], ".done")):
        raise TestbedError("%s failed (exit status %d):\n%s" % (
            PSTORE_KERNEL_SCRIPT, r.returncode, r.stderr[-3000:]))
    return lines[-1]


KERNELS = {"pstore": pstore_kernel_dir}


def vmlinuz(kdir):
    return kernels.vmlinuz(kdir)


# ---- binary ------------------------------------------------------------------

def build_binary(required=False, target="x86_64"):
    """`make -C build [TARGET=..]` (incremental) -> the target's binary, or None if no build yet."""
    env = os.environ.get("CRASHKEEP_BINARY_" + target.upper())
    if env:
        # a binary built elsewhere (CI artifact, another checkout)
        return env
    path = os.path.join(ROOT, "build", "out", TARGETS[target]["binary"])
    if not os.path.exists(os.path.join(ROOT, "build", "Makefile")):
        if required:
            raise TestbedError("build/Makefile is missing")
        return path if os.path.exists(path) else None
    argv = ["make", "-s", "-C", os.path.join(ROOT, "build")]
    if target != "x86_64":
        argv.append("TARGET=" + target)
    with _Lock("binary"):
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode != 0:
            raise TestbedError("%s failed:\n%s\n%s" % (" ".join(argv), r.stdout[-3000:],
                                                        r.stderr[-3000:]))
    if not os.path.exists(path):
        raise TestbedError("%s did not write %s" % (" ".join(argv), path))
    return path


# ---- initramfs ---------------------------------------------------------------

def _mkinitramfs():
    sys.path.insert(0, TESTBED_DIR)
    try:
        import mkinitramfs
    finally:
        sys.path.remove(TESTBED_DIR)
    return mkinitramfs


def _host_crashkeep(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, "-m", "crashkeep", *args], capture_output=True,
                       text=True, env=env, cwd=ROOT)
    if r.returncode != 0:
        raise TestbedError("crashkeep %s: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


# Modules a module asks for at run time (request_module), which depends= does
# not show: pstore asks the crypto API for its compressor when a backend
# registers. Loaded first when the image has them as modules.
RUNTIME_PRE = {"pstore": ["deflate"]}


def board_files(board, kdir):
    """{guest path: bytes} for a board config: the file and its insmod lines.

    The parameters come from `crashkeep board modules`; the order and the
    dependencies (pstore on the 32-bit test kernels, none for a built-in mtd)
    from the kernel tree's depends= strings."""
    with open(board, "rb") as f:
        conf = f.read()
    mk = _mkinitramfs()
    params, names = {}, []
    for line in _host_crashkeep("board", "modules", board).splitlines():
        m = re.match(r"insmod .*?([^/\s]+)\.ko(?:\s+(.*))?$", line)
        if not m:
            continue
        name = m.group(1).replace("-", "_")
        names.append(name)
        params[name] = m.group(2) or ""
    base, order = mk.resolve_modules(kdir, names)
    idx = dict(mk.module_index(kdir)[1])
    lines = []
    done = set()
    for name, rel in order:
        for pre in RUNTIME_PRE.get(name, []):
            if pre in idx and pre not in done:
                lines.append("insmod /lib/modules/$(uname -r)/kernel/%s" % idx[pre])
                done.add(pre)
        line = "insmod /lib/modules/$(uname -r)/kernel/%s" % rel
        if params.get(name):
            line += " " + params[name]
        lines.append(line)
        done.add(name)
    return {"etc/crashkeep/board.conf": conf,
            "etc/crashkeep/insmod.sh": ("\n".join(lines) + "\n").encode()}


def memmap_words(board):
    """The RAM-reservation words (memmap=, mem=) of `crashkeep board cmdline`: the
    test bed boots with exactly what the product tells a user to put there."""
    out = _host_crashkeep("board", "cmdline", board)
    return [w for w in out.split() if w.startswith("memmap=") or w.startswith("mem=")]


def _digest(paths, extra=""):
    h = hashlib.sha256(extra.encode())
    for p in paths:
        if p and os.path.exists(p):
            h.update(p.encode())
            with open(p, "rb") as f:
                h.update(f.read())
    return h.hexdigest()[:16]


def base_image(kdir, binary, target="x86_64"):
    """The cached base initramfs: busybox, modules, binary, default board, /init."""
    mk = _mkinitramfs()
    t = TARGETS[target]
    bb = kernels.busybox(target)
    sources = [os.path.join(TESTBED_DIR, f) for f in
               ("mkinitramfs.py", "testbed-init.sh", "testbed-lib.sh")]
    sources.append(os.path.join(INITRAMFS_DIR, "crashkeep-hook.sh"))
    key = _digest(sources + [binary, bb], kdir + repr(t["modules"]) + t["data"])
    out = os.path.join(WORK, "initramfs-%s-%s.cpio.gz" % (target, key))
    with _Lock("initramfs"):
        if not os.path.exists(out):
            # Other pytest sessions may still use theirs: drop only images
            # nobody has used for an hour (run() touches the one it uses).
            for old in os.listdir(WORK):
                p = os.path.join(WORK, old)
                if (old.startswith("initramfs-") and old.endswith(".cpio.gz")
                        and time.time() - os.path.getmtime(p) > 3600):
                    os.unlink(p)
            auto = mk.resolve_modules(kdir, t["autoload"])[1]
            files = [(os.path.join(TESTBED_DIR, "testbed-lib.sh"), "testbed/lib.sh"),
                     ("".join("%s %s\n" % m for m in auto).encode(), "testbed/autoload"),
                     (("%s\n" % t["data"]).encode(), "testbed/data-dev")]
            hook = os.path.join(INITRAMFS_DIR, "crashkeep-hook.sh")
            if os.path.exists(hook):
                files.append((hook, "etc/crashkeep/crashkeep-hook.sh"))
            # The applet list comes from the host's busybox-static (same Debian
            # version and config): a foreign binary cannot run here.
            mk.build(kdir, os.path.join(TESTBED_DIR, "testbed-init.sh"), out,
                     modules=image_modules(kdir, t["modules"]), binary=binary, files=files,
                     level=1, busybox=bb, applets_from="/bin/busybox")
    return out


def image_modules(kdir, names):
    """names without the OPTIONAL ones the kernel has neither as module nor built in."""
    mk = _mkinitramfs()
    idx = mk.module_index(kdir)[1]
    have = set(idx) | mk.builtin_modules(kdir)
    return [n for n in names if n not in OPTIONAL or n in have]


class Env:
    """What every run needs: kernel, binary, base initramfs (built once per session).

    target: a row of TARGETS (x86_64, aarch64, armhf, mipsel).
    kernel: None for the target's Debian kernel (x86_64: or $CRASHKEEP_KERNEL_DIR),
    a name from KERNELS ("pstore": the x86_64 test kernel with console/pmsg/ftrace),
    or the path of a directory laid out like an extracted linux-image package."""

    def __init__(self, need_binary=True, target="x86_64", kernel=None):
        if target not in TARGETS:
            raise TestbedError("unknown target %r (one of %s)" % (target, ", ".join(TARGETS)))
        self.target = target
        self.spec = TARGETS[target]
        if kernel is None:
            self.kdir = kernel_dir(target)
        elif kernel in KERNELS:
            self.kdir = KERNELS[kernel]()
        else:
            self.kdir = kernel
        self.kernel = vmlinuz(self.kdir)
        self.kernel_version = os.listdir(os.path.join(self.kdir, "lib", "modules"))[0]
        self.binary = build_binary(target=target) if need_binary else None
        self.base = base_image(self.kdir, self.binary, target)
        self.modules = [n for n, _ in _mkinitramfs().resolve_modules(
            self.kdir, image_modules(self.kdir, self.spec["modules"]))[1]]
        self.board_path = os.path.join(ROOT, "board-configs", self.spec["board"])
        self._board_cache = {}

    def board(self, path):
        path = os.path.abspath(path)
        if path not in self._board_cache:
            self._board_cache[path] = (board_files(path, self.kdir), memmap_words(path))
        return self._board_cache[path]


# ---- disks -------------------------------------------------------------------

def parse_size(s):
    if isinstance(s, int):
        return s
    m = re.match(r"^(\d+)([KMG]?)$", s.strip().upper())
    if not m:
        raise ValueError("bad size %r" % s)
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


def make_disk(path, size="16M", fstype="ext4", populate=None):
    with open(path, "wb") as f:
        f.truncate(parse_size(size))
    if fstype == "ext4":
        extra = ["-d", populate] if populate else []
        subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "crashkeep"] + extra + [path],
                       check=True, capture_output=True)
    elif fstype == "vfat":
        subprocess.run(["mformat", "-i", path, "-v", "CRASHKEEP", "::"], check=True,
                       capture_output=True)
    elif fstype not in (None, "raw"):
        raise ValueError("fstype must be ext4, vfat or raw")
    return path


def _fstype(img):
    with open(img, "rb") as f:
        head = f.read(2048)
    if head[1080:1082] == b"\x53\xef":
        return "ext4"
    if head[510:512] == b"\x55\xaa":
        return "vfat"
    return "raw"


class _DiskReader:
    """Reads a disk image from the host without mounting it."""

    def __init__(self, img, tmp):
        self.img = img
        self.tmp = tmp
        self.kind = _fstype(img)
        self._replayed = None
        self._stamp = None

    def _ext4(self):
        st = os.stat(self.img)
        stamp = (st.st_mtime_ns, st.st_size)
        if self._replayed is None or self._stamp != stamp:
            cp = os.path.join(self.tmp, "replayed-" + os.path.basename(self.img))
            shutil.copyfile(self.img, cp)
            # Replay the journal the way the next mount would (a panic may
            # leave committed metadata only in the journal).
            subprocess.run(["e2fsck", "-E", "journal_only", "-y", cp], capture_output=True)
            self._replayed, self._stamp = cp, stamp
        return self._replayed

    def _debugfs(self, req):
        r = subprocess.run(["debugfs", "-R", req, self._ext4()], capture_output=True)
        return r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")

    def read(self, path):
        if self.kind == "ext4":
            out = os.path.join(self.tmp, "debugfs-dump.tmp")
            if os.path.exists(out):
                os.unlink(out)
            _, err = self._debugfs("dump -p %s %s" % (_q(path), out))
            if not os.path.exists(out) or "not found" in err.lower():
                raise FileNotFoundError("%s: %s in %s" % (err.strip(), path, self.img))
            with open(out, "rb") as f:
                data = f.read()
            os.unlink(out)
            return data
        if self.kind == "vfat":
            r = subprocess.run(["mtype", "-i", self.img, "::" + path], capture_output=True)
            if r.returncode != 0:
                raise FileNotFoundError("%s in %s: %s" % (path, self.img, r.stderr.decode()))
            return r.stdout
        raise TestbedError("%s holds no file system" % self.img)

    def entries(self, d):
        """[(name, mode, size)] of a directory."""
        if self.kind == "ext4":
            out, err = self._debugfs("ls -p %s" % _q(d))
            ents = []
            for line in out.splitlines():
                # /inode/mode/uid/gid/name/size/
                parts = line.strip().split("/")
                if len(parts) < 7 or parts[5] in (".", ".."):
                    continue
                name = "/".join(parts[5:-2])
                size = int(parts[-2]) if parts[-2].isdigit() else 0
                ents.append((name, int(parts[2], 8), size))
            if not ents and "not found" in err.lower():
                raise FileNotFoundError("%s in %s" % (d, self.img))
            return sorted(ents)
        if self.kind == "vfat":
            r = subprocess.run(["mdir", "-b", "-i", self.img, "::" + d], capture_output=True,
                               text=True)
            if r.returncode != 0:
                raise FileNotFoundError("%s in %s" % (d, self.img))
            ents = []
            for line in r.stdout.splitlines():
                name = line.rstrip("/").split("/")[-1]
                if name not in (".", ".."):
                    ents.append((name, 0, 0))
            return sorted(ents)
        raise TestbedError("%s holds no file system" % self.img)

    def fsck(self):
        r = subprocess.run(["e2fsck", "-fn", self._ext4()], capture_output=True, text=True)
        return r.returncode, r.stdout + r.stderr


def _q(path):
    # debugfs takes one request string: quote paths with spaces.
    return '"%s"' % path if " " in path else path


# ---- a run -------------------------------------------------------------------

class Run:
    def __init__(self, console, data, nboots, disks, ram_file, killed, returncode, tmp):
        self.console = console
        self.nboots = nboots
        self.disks = disks
        self.ram_file = ram_file
        self.killed = killed
        self.returncode = returncode
        self._tmp = tmp
        self._readers = {}
        self.boot_logs = [""] * nboots
        self.rcs = [None] * nboots
        marks = [(m.start(), int(m.group(1))) for m in
                 re.finditer(r"^@@CKBOOT (\d+) START$", console, re.M)]
        self.started = len(marks)
        for k, (pos, n) in enumerate(marks):
            end = marks[k + 1][0] if k + 1 < len(marks) else len(console)
            if 1 <= n <= nboots:
                self.boot_logs[n - 1] = console[pos:end]
        self.panicked = ["Kernel panic - not syncing" in log for log in self.boot_logs]
        for m in re.finditer(r"^@@CKBOOT (\d+) END rc=(\d+)$", console, re.M):
            n = int(m.group(1))
            if 1 <= n <= nboots:
                self.rcs[n - 1] = int(m.group(2))
        self.emits = _parse_emits(data)
        self.files = {}
        for _, name, blob in self.emits:
            self.files[name] = blob

    def _reader(self, disk):
        if disk is None:
            if not self.disks:
                raise TestbedError("this run had no disk")
            disk = self.disks[0]
        if disk not in self._readers:
            self._readers[disk] = _DiskReader(disk, self._tmp)
        return self._readers[disk]

    def read_disk_file(self, path, disk=None):
        return self._reader(disk).read(path)

    def list_disk(self, d="/", disk=None):
        return [e[0] for e in self._reader(disk).entries(d)]

    def stat_disk(self, path, disk=None):
        d, name = os.path.split(path.rstrip("/"))
        try:
            for n, mode, size in self._reader(disk).entries(d or "/"):
                if n == name:
                    return {"size": size, "mode": mode}
        except FileNotFoundError:
            pass
        return None

    def fsck(self, disk=None):
        return self._reader(disk).fsck()

    def __repr__(self):
        return "<Run boots=%d started=%d rcs=%r killed=%s>" % (
            self.nboots, self.started, self.rcs, self.killed)


def _parse_emits(data):
    import base64
    out = []
    cur = None
    for line in data.replace(b"\r", b"").split(b"\n"):
        if line.startswith(b"@@EMIT-BEGIN "):
            _, boot, name = line.decode().split(" ", 2)
            cur = (int(boot), name, [])
        elif line.startswith(b"@@EMIT-END ") and cur is not None:
            out.append((cur[0], cur[1], base64.b64decode(b"".join(cur[2]))))
            cur = None
        elif cur is not None:
            cur[2].append(line.strip())
    return out


class Testbed:
    def __init__(self, env, tmp):
        self.env = env
        self.tmp = str(tmp)
        os.makedirs(self.tmp, exist_ok=True)
        self.board = env.board_path
        self.target = env.target
        self.binary = env.binary
        self.kernel_version = env.kernel_version
        self.modules = env.modules
        self._n = 0

    def make_disk(self, size="16M", fstype="ext4", name=None, populate=None):
        self._n += 1
        path = os.path.join(self.tmp, name or "disk%d.img" % self._n)
        return make_disk(path, size, fstype, populate)

    @staticmethod
    def read_ram(ram_file, addr, size):
        with open(ram_file, "rb") as f:
            f.seek(addr)
            return f.read(size)

    @staticmethod
    def poke_ram(ram_file, addr, data):
        with open(ram_file, "r+b") as f:
            f.seek(addr)
            f.write(data)

    def run(self, boots, disk=None, ram_file=None, kill_on=None, timeout=None, append="",
            board=None, files=None, no_reboot=False):
        if isinstance(boots, str):
            boots = [boots]
        nboots = len(boots)
        self._n += 1
        rdir = os.path.join(self.tmp, "run%d" % self._n)
        os.makedirs(rdir)
        bfiles, memmap = self.env.board(board or self.board)
        over = dict(bfiles)
        over["testbed/nboots"] = b"%d\n" % nboots
        for i, sh in enumerate(boots):
            over["testbed/boot%d.sh" % (i + 1)] = sh.encode() + b"\n"
        for k, v in (files or {}).items():
            over[k.lstrip("/")] = v if isinstance(v, bytes) else v.encode()
        initrd = os.path.join(rdir, "initrd.cpio.gz")
        try:
            os.utime(self.env.base)
        except FileNotFoundError:
            self.env.base = base_image(self.env.kdir, self.env.binary, self.env.target)
        with open(self.env.base, "rb") as src, open(initrd, "wb") as dst:
            shutil.copyfileobj(src, dst)
            dst.write(_mkinitramfs().overlay(over))
        ctr = os.path.join(rdir, "counter.img")
        with open(ctr, "wb") as f:
            f.truncate(1 << 20)   # sparse; big enough that partition probes stay quiet
        disks = [] if disk is None else ([disk] if isinstance(disk, str) else list(disk))
        data_log = os.path.join(rdir, "data.log")
        t = self.env.spec
        cmdline = " ".join(["console=" + t["console"], "quiet", "panic=1"] + memmap
                           + [append]).strip()
        machine = t["machine"]
        if ram_file:
            machine += ",memory-backend=ram0"
        argv = [t["qemu"], "-accel", "tcg", "-M", machine, "-m", t["ram"], "-smp", "1",
                "-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
                "-kernel", self.env.kernel, "-initrd", initrd, "-append", cmdline,
                "-serial", "stdio"]
        if t["cpu"]:
            argv += ["-cpu", t["cpu"]]
        if t["data"] != "/dev/console":
            argv += ["-serial", "file:" + data_log]
        argv += _disk_args(t["virtio"], disks, ctr)
        if ram_file:
            argv += ["-object", "memory-backend-file,id=ram0,size=%s,mem-path=%s,share=on"
                     % (t["ram"], ram_file)]
        if no_reboot:
            argv += ["-no-reboot"]
        if timeout is None:
            timeout = 60 + 45 * nboots
        console, killed, rc, timed_out = _run_qemu(argv, kill_on, nboots, timeout)
        with open(os.path.join(rdir, "console.log"), "w") as f:
            f.write(console)
        data = b""
        if os.path.exists(data_log):
            with open(data_log, "rb") as f:
                data = f.read()
        elif t["data"] == "/dev/console":
            data = console.encode()
        if timed_out:
            raise TestbedTimeout("QEMU run did not finish in %ss; console tail:\n%s"
                                 % (timeout, console[-4000:]))
        if rc and "@@CKBOOT" not in console:
            raise TestbedError("QEMU failed (exit status %s):\n%s\n%s"
                               % (rc, " ".join(argv), console[-4000:]))
        return Run(console, data, nboots, disks, ram_file, killed, rc, rdir)


def _disk_args(virtio, disks, ctr):
    """-drive/-device pairs: the test disks as /dev/vda, vdb..., then the counter."""
    drives = [("d%d" % i, d, None) for i, d in enumerate(disks)]
    drives.append(("ctr", ctr, COUNTER_SERIAL))
    out = []
    if virtio == "mmio":
        # virt hands out virtio-mmio slots top-down and Linux probes them
        # bottom-up: the device created last becomes /dev/vda, so create them
        # in reverse to keep the first disk at /dev/vda.
        for name, path, serial in reversed(drives):
            dev = "virtio-blk-device,drive=%s" % name
            if serial:
                dev += ",serial=" + serial
            out += ["-drive", "if=none,id=%s,file=%s,format=raw,cache=unsafe" % (name, path),
                    "-device", dev]
        return out
    for i, (name, path, serial) in enumerate(drives):
        dev = "virtio-blk-pci,drive=%s" % name
        if virtio == "pci-fixed":
            # Fixed slots on the PC: the counter at 0x1f stays out of the way
            # of tests that add disks. (Malta's GT-64120 does not see slot 0x1f.)
            dev += ",addr=0x%x" % (0x1f if serial else 4 + i)
        if serial:
            dev += ",serial=" + serial
        out += ["-drive", "if=none,id=%s,file=%s,format=raw,cache=unsafe" % (name, path),
                "-device", dev]
    return out


def _run_qemu(argv, kill_on, nboots, timeout):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    buf = bytearray()
    state = {"killed": False}
    last_start = ("@@CKBOOT %d START" % nboots).encode()
    kill_b = kill_on.encode() if kill_on else None

    def reader():
        while True:
            chunk = p.stdout.read1(65536)
            if not chunk:
                return
            tail_from = max(0, len(buf) - 256)
            buf.extend(chunk)
            if kill_b and not state["killed"] and kill_b in buf[tail_from:]:
                state["killed"] = True
                p.kill()
                return
            # A panic in the last boot ends the run: no need to boot again.
            i = buf.find(last_start)
            if i >= 0 and buf.find(b"---[ end Kernel panic", i) >= 0 and p.poll() is None:
                p.kill()
                return

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    timed_out = False
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        p.kill()
        p.wait()
    t.join(5)
    console = bytes(buf).decode("utf-8", errors="replace").replace("\r", "")
    return console, state["killed"], p.returncode, timed_out
