"""The test bed itself, on the real kernel: modules load with the reference
board's addresses, a real panic warm-reboots and the next boot finds the
pstore record and the phram bytes; the zone layout `crashkeep board show`
computes is the one the kernel reports; file-backed RAM and kill_on work; the
static binary runs in the initramfs.
"""
import json
import os
import random
import re
import subprocess
import sys

import pytest

import harness

pytestmark = pytest.mark.e2e

ROOT = harness.ROOT
PHRAM_START = 0x1f080000   # board-configs/qemu-x86_64.conf


def host_crashkeep(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, "-m", "crashkeep", *args], capture_output=True,
                       text=True, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return r.stdout


def pattern(n, seed):
    rnd = random.Random(seed)
    return bytes(rnd.getrandbits(8) for _ in range(n))


def test_modules_load_with_board_addresses(testbed):
    run = testbed.run(["""
        load_modules
        emit proc_mtd /proc/mtd
        cat /sys/class/mtd/mtd0/name /sys/class/mtd/mtd0/size /sys/class/mtd/mtd0/type \\
            | emit mtd0 -
        emit params_mem_address /sys/module/ramoops/parameters/mem_address
        emit params_record_size /sys/module/ramoops/parameters/record_size
        dmesg | emit dmesg -
    """])
    assert run.rcs == [0], run.console
    assert run.files["mtd0"].split() == [b"crashkeep", b"%d" % (512 << 10), b"ram"]
    assert b'mtd0: 00080000 00001000 "crashkeep"' in run.files["proc_mtd"]
    assert int(run.files["params_mem_address"]) == 0x1f000000
    assert int(run.files["params_record_size"]) == 0x10000
    dmesg = run.files["dmesg"].decode()
    assert "ramoops: using 0x80000@0x1f000000, ecc: 0" in dmesg
    assert "phram: crashkeep device: 0x80000 at 0x1f080000" in dmesg
    assert "pstore: Registered ramoops as persistent store backend" in dmesg


def test_panic_warm_reboot_keeps_pstore_record_and_phram_bytes(testbed):
    blob = pattern(8192, 3)
    disk = testbed.make_disk("16M", "ext4")
    run = testbed.run([
        """
        load_modules
        dd if=/testbed/blob.bin of=/dev/mtd0 bs=4096 seek=3 conv=fsync 2>/dev/null
        mount_disk
        cp /testbed/blob.bin /mnt/before-panic.bin
        umount /mnt
        echo "CKMARK-before-panic-$BOOT" > /dev/kmsg
        panic_now
        echo "still alive after the panic"
        """,
        """
        load_modules
        mount_pstore
        ls /sys/fs/pstore | emit pstore_ls -
        emit record /sys/fs/pstore/dmesg-ramoops-0
        dd if=/dev/mtd0 bs=4096 skip=3 count=2 2>/dev/null | emit phram -
        """], disk=disk, files={"testbed/blob.bin": blob})
    assert run.started == 2, run.console
    assert run.rcs == [None, 0], run.console
    assert run.panicked == [True, False]
    assert "still alive" not in run.console
    assert "Kernel panic - not syncing: sysrq triggered crash" in run.boot_logs[0]
    assert run.files["pstore_ls"].split() == [b"dmesg-ramoops-0"]
    rec = run.files["record"].decode(errors="replace")
    assert rec.startswith("Panic#1 Part1\n"), rec[:200]
    assert "CKMARK-before-panic-1" in rec
    assert "sysrq triggered crash" in rec
    assert run.files["phram"] == blob
    # The disk was written before the panic and is read back without mounting.
    assert run.read_disk_file("/before-panic.bin") == blob
    assert "before-panic.bin" in run.list_disk("/")
    assert run.stat_disk("/before-panic.bin")["size"] == len(blob)
    with pytest.raises(FileNotFoundError):
        run.read_disk_file("/absent")


def _board_variant(tmp, name, changes):
    """The reference board with some keys replaced (a config file path)."""
    with open(_reference_board()) as f:
        lines = f.read().splitlines()
    out = []
    for line in lines:
        key = line.split("=", 1)[0].strip()
        if key in changes:
            continue
        out.append(line)
    out += ["%s = %s" % kv for kv in changes.items()]
    path = os.path.join(tmp, name + ".conf")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return path


def _reference_board():
    return harness.BOARD


ATTACHED = re.compile(r"ramoops: attached (\S+) 0x([0-9a-f]+)@0x([0-9a-f]+): "
                      r"(\d+) header, (\d+) data, (\d+) ecc")


def test_board_show_layout_is_the_kernels(testbed):
    """`board show --json` gives every zone where ramoops (6.1) really puts it:
    label, address, size and data size, for the reference board and variants
    (ECC, ftrace, sizes that leave a remainder)."""
    variants = [("reference", {}),
                ("ecc", {"ramoops.ecc": "16"}),
                ("ftrace-odd", {"ramoops.record_size": "0x3000", "ramoops.console_size": "0x5000",
                                "ramoops.ftrace_size": "0x2000", "ramoops.pmsg_size": "0x1800",
                                "ramoops.mem_size": "0x3f000"})]
    script = ["load_module reed_solomon"]
    expect = {}
    for name, changes in variants:
        conf = _board_variant(testbed.tmp, name, changes)
        show = json.loads(host_crashkeep("board", "show", "--json", conf))
        expect[name] = show["ramoops"]
        line = [ln for ln in host_crashkeep("board", "modules", conf).splitlines()
                if "/ramoops.ko" in ln][0]
        args = line.split("ramoops.ko", 1)[1]
        script += ["dmesg -c > /dev/null",
                   "load_module ramoops %s dyndbg=+p" % args,
                   "dmesg | emit %s -" % name,
                   "rmmod ramoops"]
    run = testbed.run(["\n".join(script)])
    assert run.rcs == [0], run.console
    for name, _ in variants:
        got = []
        for m in ATTACHED.finditer(run.files[name].decode()):
            label, size, addr, hdr, data, ecc = m.groups()
            got.append({"label": label, "size": int(size, 16), "address": int(addr, 16),
                        "data_size": int(data)})
        want = [{"label": z["label"], "size": z["size"], "address": z["address"],
                 "data_size": z["data_size"]} for z in expect[name]["zones"]]
        assert got, (name, run.files[name])
        key = lambda z: z["address"]
        assert sorted(got, key=key) == sorted(want, key=key), name


def test_ram_file_and_kill_on(testbed):
    """File-backed RAM: guest physical P is at offset P of the file; a second
    run on the same file sees it, including bytes changed from the host."""
    ram = os.path.join(testbed.tmp, "ram.img")
    blob = pattern(512, 7)
    run1 = testbed.run(["""
        load_modules
        dd if=/testbed/blob.bin of=/dev/mtd0 bs=512 seek=8 2>/dev/null
        echo CK-KILL-NOW
        sleep 60
        """], ram_file=ram, kill_on="CK-KILL-NOW", files={"testbed/blob.bin": blob})
    assert run1.killed
    assert run1.rcs == [None]
    addr = PHRAM_START + 8 * 512
    assert testbed.read_ram(ram, addr, len(blob)) == blob
    testbed.poke_ram(ram, addr, b"POKED")
    run2 = testbed.run(["""
        load_modules
        dd if=/dev/mtd0 bs=512 skip=8 count=1 2>/dev/null | emit back -
        """], ram_file=ram)
    assert not run2.killed
    assert run2.files["back"] == b"POKED" + blob[5:]


def test_binary_runs_in_initramfs(testbed):
    """The static binary in a bare BusyBox initramfs (no Python, no libraries)."""
    assert testbed.binary, "build/out/crashkeep was not built"
    run = testbed.run(["""
        ls /usr/lib /lib 2>&1 | emit ls -
        crashkeep --version > /tmp/v 2>&1; echo "rc=$?" >> /tmp/v; emit version /tmp/v
        crashkeep board show /etc/crashkeep/board.conf > /tmp/s 2>&1; echo "rc=$?" >> /tmp/s
        emit show /tmp/s
        crashkeep boot --help > /tmp/h 2>&1; echo "rc=$?" >> /tmp/h; emit boot_help /tmp/h
        set -eu
        . /etc/crashkeep/crashkeep-hook.sh
        echo "HOOK-DONE"
        """], disk=testbed.make_disk())
    assert run.rcs == [0], run.console
    assert b"python" not in run.files["ls"]
    from crashkeep import __version__
    assert run.files["version"] == b"crashkeep %s\nrc=0\n" % __version__.encode()
    assert run.files["show"] == (host_crashkeep("board", "show", harness.BOARD).encode()
                                 + b"rc=0\n")
    assert run.files["boot_help"] == host_crashkeep("boot", "--help").encode() + b"rc=0\n"
    # The init hook with the real binary: whatever `boot` did, the boot went on.
    assert "\nHOOK-DONE\n" in run.boot_logs[0]


def test_qemu_failure_is_reported(testbed):
    """A QEMU that cannot start raises with its message, not an empty Run."""
    with pytest.raises(harness.TestbedError, match="QEMU failed"):
        testbed.run(["true"], ram_file=os.path.join(testbed.tmp, "no", "such", "dir", "ram"))


def _readelf_depends(ko):
    """The depends= modinfo string as readelf prints the .modinfo section."""
    out = subprocess.run(["readelf", "-p", ".modinfo", ko], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        if "depends=" in line:
            val = line.split("depends=", 1)[1].strip()
            return [d.replace("-", "_") for d in val.split(",") if d]
    return []


def test_module_closure_loads_dependencies_first(testbed_env):
    """mkinitramfs resolves depends= like modprobe would: every module after its
    dependencies, nothing missing (oracle: readelf's view of .modinfo)."""
    import mkinitramfs
    base, mods = mkinitramfs.resolve_modules(testbed_env.kdir, harness.MODULES)
    order = [n for n, _ in mods]
    assert len(order) == len(set(order))
    for i, (name, rel) in enumerate(mods):
        deps = _readelf_depends(os.path.join(base, rel))
        assert deps == mkinitramfs.modinfo_depends(os.path.join(base, rel)), name
        for d in deps:
            assert d in order[:i], (name, d)
    for want in ("reed_solomon", "ramoops", "mtd", "phram", "mtdblock", "virtio_blk", "ext4",
                 "jbd2", "mbcache", "crc16", "virtio_ring"):
        assert want in order
    assert order.index("reed_solomon") < order.index("ramoops")
    assert order.index("mtd") < order.index("phram")


BOARD_INIT = r"""#!/bin/busybox sh
# A board's BusyBox /init: mount, find the real root, run crashkeep's hook, switch_root.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r name rel; do insmod "/lib/modules/$(uname -r)/kernel/$rel"; done < /testbed/autoload
mkdir -p /newroot
mount -t ext4 /dev/vda /newroot
set -eu
%s
. /etc/crashkeep/crashkeep-hook.sh
echo "BOARD-INIT: switching root"
exec switch_root /newroot /sbin/init
"""
REAL_INIT = b"""#!/bin/busybox sh
/bin/busybox echo "REAL-ROOT-REACHED pid=$$"
/bin/busybox poweroff -f
"""


def _real_root(testbed):
    root = os.path.join(testbed.tmp, "rootfs")
    os.makedirs(os.path.join(root, "bin"))
    os.makedirs(os.path.join(root, "sbin"))
    import shutil
    shutil.copy("/bin/busybox", os.path.join(root, "bin", "busybox"))
    with open(os.path.join(root, "sbin", "init"), "wb") as f:
        f.write(REAL_INIT)
    os.chmod(os.path.join(root, "sbin", "init"), 0o755)
    return testbed.make_disk("16M", "ext4", populate=root)


@pytest.mark.parametrize("setup,expect", [
    ("", None),                                         # the real binary
    ("CRASHKEEP_BIN=/bin/hang CRASHKEEP_BOOT_TIMEOUT=1 CRASHKEEP_HOOK_GRACE=1",
     "exited with status 137"),                         # a binary that hangs
    ("CRASHKEEP_BIN=/bin/absent", "not found, skipping"),
])
def test_hook_in_board_init_reaches_the_real_root(testbed, setup, expect):
    """The hook sourced by a board-style /init (PID 1, set -eu) never stops
    the boot: switch_root into the real root happens whatever crashkeep does."""
    hang = b"#!/bin/busybox sh\ntrap '' TERM INT\nexec sleep 600\n"
    run = testbed.run(["unused"], disk=_real_root(testbed), timeout=120,
                      files={"init": (BOARD_INIT % setup).encode(), "bin/hang": hang})
    assert "BOARD-INIT: switching root" in run.console, run.console[-3000:]
    assert "REAL-ROOT-REACHED pid=1" in run.console, run.console[-3000:]
    if expect:
        assert expect in run.console
    assert "Kernel panic" not in run.console
