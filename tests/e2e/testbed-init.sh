#!/bin/busybox sh
# /init of the QEMU test bed (tests/e2e/harness.py). One QEMU process runs
# several boots (warm resets keep RAM); this script finds out which boot it is
# in from a counter on a small raw virtio disk (serial "ckboot"), then runs
# /testbed/bootN.sh with the helpers of /testbed/lib.sh. Markers on the console
# (@@CKBOOT N START / END rc=) let the host split the log per boot.
# PID 1 must never exit: every path ends in reboot -f or poweroff -f.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /tmp /run
echo 1 > /proc/sys/kernel/sysrq

# The disk stack (virtio-blk, ext4 and what they need) for the counter and the
# test disks. ramoops/phram are NOT loaded here: that is load_modules's or
# crashkeep boot's job.
while read -r name rel; do
    insmod "/lib/modules/$(uname -r)/kernel/$rel"
done < /testbed/autoload

ctr=""
i=0
while [ -z "$ctr" ] && [ $i -lt 100 ]; do
    for b in /sys/block/vd*; do
        [ "$(cat "$b/serial" 2>/dev/null)" = ckboot ] && ctr=/dev/${b##*/}
    done
    [ -n "$ctr" ] || usleep 50000
    i=$((i + 1))
done
if [ -z "$ctr" ]; then
    echo "@@CKBOOT ERROR no counter disk"
    poweroff -f
fi
n=$(dd if="$ctr" bs=16 count=1 2>/dev/null | tr -dc 0-9)
n=$((${n:-0} + 1))
printf '%-15s\n' "$n" | dd of="$ctr" bs=16 count=1 conv=notrunc,fsync 2>/dev/null
nboots=$(cat /testbed/nboots)
export BOOT=$n NBOOTS=$nboots

if [ "$n" -gt "$nboots" ]; then
    # The last snippet panicked or rebooted: the run is over.
    echo "@@CKBOOT $n EXTRA"
    poweroff -f
fi
echo "@@CKBOOT $n START"
sh -c '. /testbed/lib.sh; . /testbed/boot$BOOT.sh' < /dev/console > /dev/console 2>&1
rc=$?
sync
echo "@@CKBOOT $n END rc=$rc"
if [ "$n" -lt "$nboots" ]; then
    reboot -f
fi
poweroff -f
# not reached; never let PID 1 exit
while :; do sleep 1; done
