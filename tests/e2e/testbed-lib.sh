# Helpers for test-bed boot snippets (sourced before /testbed/bootN.sh).
# BOOT (1-based) and NBOOTS are set; the board config is /etc/crashkeep/board.conf.

# Load reed_solomon/ramoops/mtd/phram with the board's parameters (the lines
# `crashkeep board modules` printed on the host when the image was built).
# Arguments are added to ramoops's insmod line (e.g. dyndbg=+p).
load_modules() {
    sed "s|/ramoops.ko|/ramoops.ko $*|" /etc/crashkeep/insmod.sh > /tmp/.insmod.sh
    . /tmp/.insmod.sh
}

# Load one bundled module by name (e.g. mtdblock, block2mtd) with parameters.
load_module() {
    _m=$1
    shift
    _rel=$(awk -v m="$_m" '$1 == m { print $2 }' /etc/modules.list)
    [ -n "$_rel" ] || { echo "load_module: $_m is not in the image" >&2; return 1; }
    insmod "/lib/modules/$(uname -r)/kernel/$_rel" "$@"
}

# emit NAME FILE|-  : send a file (or stdin) to the host: run.files[NAME].
# The channel is /testbed/data-dev: a second serial port where the machine has
# one (x86_64), else the console (virt and Malta boards under QEMU: one UART).
# Closing the serial port waits until every byte is sent, so a panic right
# after emit loses nothing.
emit() {
    {
        echo "@@EMIT-BEGIN $BOOT $1"
        if [ "$2" = - ] || [ -z "$2" ]; then base64; else base64 "$2"; fi
        echo "@@EMIT-END $BOOT $1"
    } > "$(cat /testbed/data-dev 2>/dev/null || echo /dev/ttyS1)"
}

# Panic now (the kernel reboots after panic=1 seconds; RAM survives).
panic_now() {
    sync
    echo c > /proc/sysrq-trigger
}

# mount_disk [DEV] [DIR]: mount the test disk (default /dev/vda on /mnt).
mount_disk() {
    mount "${1:-/dev/vda}" "${2:-/mnt}"
}

# The prologue leaves pstore unmounted on purpose (crashkeep boot mounts it).
mount_pstore() {
    grep -q " /sys/fs/pstore " /proc/mounts || mount -t pstore pstore /sys/fs/pstore
}
