"""BusyBox init without an initramfs (issue 15): a root file system on the virtual
disk with /sbin/init -> inittab -> rcS -> /etc/init.d/S01crashkeep (the shipped
script), BusyBox syslogd and S99crashkeep-export.

boot 1: S01crashkeep loads ramoops/phram (crashkeep boot, cold) and mirrors the
        system log into phram; the test panics the kernel.
boot 2: S01crashkeep's `crashkeep boot` salvages the panic and the log record to
        the flash disk before anything mounts it; its export finds no syslogd and
        no uplink yet (the hook refuses) and leaves the bundle spooled; syslogd
        starts; S99crashkeep-export hands the bundle over: syslogd logs the
        line, the hook gets the bundle. The test powers off through init:
        `::shutdown:/etc/init.d/S01crashkeep stop` writes the clean-shutdown
        marker, which the host reads from the guest's RAM (a file) afterwards.

Disks: vda the root file system (mounted read-only), vdb the flash for bundles
(the board's flash.device), vdc a data partition for syslogd's file and the
hook's uploads (read back by the host).

Stand-in: Debian's kernel has virtio-blk and ext4 as modules, so a minimal
initramfs /init loads those two and switch_roots to /dev/vda; a router's kernel
has its flash drivers built in and boots the root directly. crashkeep is not in
that initramfs' path: everything above runs from the disk's root.
"""
import os
import shutil
import subprocess

import pytest

import harness
from crashkeep.formats import boardconf
from crashkeep.system import keeparea

pytestmark = pytest.mark.e2e

LOADER_INIT = r"""#!/bin/busybox sh
# stand-in for built-in disk drivers: load them, then the real root's /sbin/init
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r name rel; do insmod "/lib/modules/$(uname -r)/kernel/$rel"; done < /testbed/autoload
mkdir -p /newroot
mount -t ext4 -o ro /dev/vda /newroot
umount /proc /sys
umount -l /dev
exec switch_root /newroot /sbin/init
"""

INITTAB = """\
::sysinit:/bin/mount -t proc proc /proc
::sysinit:/bin/mount -t sysfs sysfs /sys
::sysinit:/bin/mount -t devtmpfs devtmpfs /dev
::sysinit:/bin/mount -t tmpfs tmpfs /run
::sysinit:/bin/mount -t tmpfs tmpfs /tmp
::sysinit:/etc/init.d/rcS
::once:/etc/ck-test
::shutdown:/etc/init.d/S01crashkeep stop
::shutdown:/bin/umount -a -r
"""

RCS = """#!/bin/sh
for i in /etc/init.d/S??*; do
    [ -x "$i" ] && "$i" start
done
"""

SYSLOGD = """#!/bin/sh
# the data partition, syslogd writing to it, and the "uplink" the hook needs
case $1 in
    start)
        mount -t ext4 /dev/vdc /data
        syslogd -O /data/messages
        mkdir -p /data/hooks
        ;;
esac
"""

UPLOAD = """#!/bin/sh
# export.command: "uploads" the bundle when the uplink is there
[ -d /data/hooks ] || { echo "no uplink" >&2; exit 1; }
cp -r "$1" /data/hooks/ || exit 1
echo "$CRASHKEEP_BUNDLE $CRASHKEEP_EXPORT_ATTEMPT $(basename "$2")" >> /data/hooks/seen
sync
"""

TEST = """#!/bin/sh
echo 1 > /proc/sys/kernel/sysrq
if [ ! -e /data/boot1 ]; then
    touch /data/boot1
    sleep 3                     # save --follow copies the log tail into phram
    echo "CK-TEST: boot 1 panics"
    sync
    echo c > /proc/sysrq-trigger
fi
if [ ! -e /data/boot2 ]; then
    touch /data/boot2
    i=0
    while [ $i -lt 60 ] && ! grep -q . /data/hooks/seen 2>/dev/null; do
        sleep 1
        i=$((i + 1))
    done
    sleep 1
    echo "CK-TEST: boot 2 powers off through init"
    sync
    poweroff
    exit 0
fi
echo "CK-TEST: unexpected third boot"
poweroff -f
"""


def _rootfs(testbed, board_text):
    env = testbed.env
    r = os.path.join(testbed.tmp, "rootfs")
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc/init.d", "etc/crashkeep",
              "etc/default", "proc", "sys", "dev", "run", "tmp", "data", "var"):
        os.makedirs(os.path.join(r, d), exist_ok=True)
    os.symlink("/run", os.path.join(r, "var/run"))
    os.symlink("/tmp", os.path.join(r, "var/log"))
    shutil.copy("/bin/busybox", os.path.join(r, "bin/busybox"))
    applets = subprocess.run(["/bin/busybox", "--list-full"], capture_output=True,
                             text=True).stdout.split()
    for a in applets:
        p = os.path.join(r, a)
        if not os.path.lexists(p):
            os.makedirs(os.path.dirname(p), exist_ok=True)
            os.symlink("/bin/busybox", p)
    shutil.copy(env.binary, os.path.join(r, "usr/bin/crashkeep"))
    ship = os.path.join(harness.ROOT, "initscripts")
    for name in ("S01crashkeep", "S99crashkeep-export"):
        shutil.copy(os.path.join(ship, name), os.path.join(r, "etc/init.d", name))
    shutil.copy(os.path.join(harness.ROOT, "initramfs", "crashkeep-hook.sh"),
                os.path.join(r, "etc/crashkeep/crashkeep-hook.sh"))
    files = {"etc/inittab": INITTAB, "etc/init.d/rcS": RCS, "etc/init.d/S01syslogd": SYSLOGD,
             "usr/bin/ck-upload": UPLOAD, "etc/ck-test": TEST,
             "etc/crashkeep/board.conf": board_text,
             "etc/default/crashkeep": "CRASHKEEP_LOG=/data/messages\n"}
    for rel, text in files.items():
        p = os.path.join(r, rel)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, 0o755)
    mk = harness._mkinitramfs()
    base, mods = mk.resolve_modules(env.kdir, ["reed_solomon", "ramoops", "mtd", "phram"])
    for _, rel in mods:
        dst = os.path.join(r, "lib/modules", env.kernel_version, "kernel", rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy(os.path.join(base, rel), dst)
    return testbed.make_disk("48M", "ext4", name="root.img", populate=r)


def test_busybox_init_salvages_and_hands_the_bundle_over(testbed):
    if testbed.binary is None:
        pytest.fail("build/out/crashkeep missing: make -C build")
    with open(testbed.board) as f:
        board_text = f.read().replace("flash.device = /dev/vda", "flash.device = /dev/vdb")
    assert "flash.device = /dev/vdb" in board_text
    board_text += ('export.command = /usr/bin/ck-upload "$1" "$2"\n'
                   "export.timeout = 20\n")
    board = os.path.join(testbed.tmp, "board.conf")
    with open(board, "w") as f:
        f.write(board_text)
    root = _rootfs(testbed, board_text)
    flash = testbed.make_disk("16M", "ext4", name="flash.img")
    data = testbed.make_disk("16M", "ext4", name="data.img")
    ram = os.path.join(testbed.tmp, "ram.img")
    run = testbed.run(["unused"], disk=[root, flash, data], board=board, timeout=180,
                      ram_file=ram, files={"init": LOADER_INIT.encode()})
    con = run.console
    assert "CK-TEST: boot 1 panics" in con, con[-3000:]
    assert "Kernel panic - not syncing" in con
    assert "CK-TEST: boot 2 powers off through init" in con, con[-4000:]
    assert "unexpected third boot" not in con
    lines = [l for l in con.splitlines() if l.startswith("crashkeep: boot #")]
    assert len(lines) == 2, lines
    assert "boot #2 after panic (warm)" in lines[1] and "salvaged" in lines[1], lines
    # boot's own export came too early for both transports and left the bundle spooled
    assert "export: 2 deferred" in lines[1], lines
    # the ::shutdown: hook wrote the clean-shutdown marker into phram
    b = boardconf.load(board)
    img = os.path.join(testbed.tmp, "phram.img")
    with open(img, "wb") as f:
        f.write(testbed.read_ram(ram, b.get("phram.start"), b.get("phram.len")))
    area = keeparea.open_area(img, write=False)
    try:
        assert area.boot_state()["clean_shutdown"] is True
    finally:
        area.close()
    # the panic's bundle; boot 3 salvages boot 2's log record (save --follow) as a second
    bundles = [n for n in run.list_disk("/crashkeep", disk=flash) if n[0].isdigit()]
    panics = [n for n in bundles if n.endswith("-panic")]
    assert len(panics) == 1, bundles
    name = panics[0]
    files = run.list_disk("/crashkeep/" + name, disk=flash)
    assert "dmesg-ramoops-0" in files or "dmesg-ramoops-0.gz" in files, files
    assert ".export-syslog" in files and ".export-command" in files, files
    # syslogd logged the export line; the hook got the bundle, once, on the second try
    messages = run.read_disk_file("/messages", disk=data).decode(errors="replace")
    mine = [l for l in messages.splitlines() if "bundle=%s " % name in l]
    assert len(mine) == 1, messages[-3000:]
    assert " daemon.crit crashkeep[" in mine[0]
    assert "bundle=%s board=qemu-x86_64 reason=panic" % name in mine[0]
    assert "Kernel panic - not syncing: sysrq triggered crash" in mine[0]
    seen = run.read_disk_file("/hooks/seen", disk=data).decode().splitlines()
    assert [l for l in seen if l.startswith(name + " ")] == ["%s 2 meta.json" % name], seen
    assert run.read_disk_file("/hooks/%s/meta.json" % name, disk=data) == \
        run.read_disk_file("/crashkeep/%s/meta.json" % name, disk=flash)
