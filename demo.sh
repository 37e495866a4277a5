#!/usr/bin/env bash
# crashkeep demo on a QEMU reference board (board-configs/qemu-<arch>.conf).
#
#   ./demo.sh [--arch x86_64|aarch64|armhf|mipsel]     (default x86_64)
#
# The other targets boot Debian's kernel for that architecture under QEMU TCG
# (virt/cortex-a53, virt/cortex-a15, Malta/24Kf) with the modules it lacks built
# out of tree (tests/e2e/kernels.py; the first run builds and caches them) and
# the target's static binary (make -C build TARGET=<arch>).
#
# On a fresh Debian 12 machine this installs what it needs (tests/setup.sh:
# QEMU, BusyBox, the build toolchain), builds the static binary (make -C build),
# fetches the Debian kernel and builds the initramfs (tests/e2e/harness.py), then
# boots the board twice in one QEMU process with a virtual flash disk:
#   boot 1: saves an application log tail to phram, then the kernel panics;
#   boot 2: `crashkeep boot` (through the initramfs hook) salvages the panic
#           record and the phram record to the flash disk, and we look at them
#           with `crashkeep list` and `crashkeep show`, as a user at the console.
# CRASHKEEP_DEMO_SETUP=0 skips tests/setup.sh (already set up).
set -euo pipefail
cd "$(dirname "$0")"

ARCH=x86_64
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) ARCH=${2:-}; shift 2 || { echo "demo.sh: --arch needs a value" >&2; exit 2; } ;;
        --arch=*) ARCH=${1#--arch=}; shift ;;
        *) echo "usage: ./demo.sh [--arch x86_64|aarch64|armhf|mipsel]" >&2; exit 2 ;;
    esac
done
case "$ARCH" in
    x86_64|aarch64|armhf|mipsel) ;;
    *) echo "demo.sh: unknown arch '$ARCH' (x86_64, aarch64, armhf, mipsel)" >&2; exit 2 ;;
esac
export CRASHKEEP_DEMO_ARCH=$ARCH

if [ "${CRASHKEEP_DEMO_SETUP:-1}" = 1 ]; then
    echo "== setting up (packages, Python deps; quick when present)"
    bash tests/setup.sh >/dev/null
fi

echo "== building the static binary, fetching the kernel, building the initramfs"
PYTHON=${PYTHON:-python3}
exec "$PYTHON" - <<'EOF'
import os, sys, tempfile
sys.path.insert(0, "tests/e2e")
import harness

env = harness.Env(target=os.environ["CRASHKEEP_DEMO_ARCH"])
tmp = tempfile.mkdtemp(prefix="crashkeep-demo-")
tb = harness.Testbed(env, tmp)
disk = tb.make_disk("16M", "ext4")
print("== booting the QEMU reference board %s (two boots, 30-90 s under TCG)"
      % os.path.basename(env.board_path))
run = tb.run([
    r"""
    crashkeep boot
    for i in 1 2 3 4 5; do echo "$(date -u +%T) demo-app: processed batch $i" >> /tmp/app.log; done
    echo "$(date -u +%T) demo-app: about to dereference a bad pointer" >> /tmp/app.log
    crashkeep save /tmp/app.log --name app-log
    echo "demo: boot 1 is about to panic" > /dev/kmsg
    panic_now
    """,
    r"""
    echo '$ . /etc/crashkeep/crashkeep-hook.sh    # what the initramfs runs: crashkeep boot'
    . /etc/crashkeep/crashkeep-hook.sh
    echo '$ crashkeep list'
    crashkeep list
    echo '$ crashkeep show 1'
    crashkeep show 1
    echo '$ crashkeep show 1 --file phram/app-log'
    crashkeep show 1 --file phram/app-log
    echo '$ crashkeep show 1 --file dmesg-ramoops-0 | grep -A8 "Kernel panic"'
    crashkeep show 1 --file dmesg-ramoops-0 | grep -A8 "Kernel panic"
    """], disk=disk)

def show(log):
    for line in log.splitlines():
        if line.startswith("@@") or line.startswith("[testbed]"):
            continue
        print("  | " + line)

print("\n== boot 1 (console, abridged):")
show("\n".join(l for l in run.boot_logs[0].splitlines()
               if l.startswith("crashkeep") or "demo" in l or "Kernel panic" in l
               or "Rebooting" in l))
print("\n== boot 2 (console):")
show(run.boot_logs[1])
print("\n== on the flash disk (read from the host, not mounted):")
for b in [n for n in run.list_disk("/crashkeep") if n[:1].isdigit()]:
    print("  /crashkeep/%s: %s" % (b, " ".join(run.list_disk("/crashkeep/" + b))))
ok = any(l.startswith("crashkeep: boot #") and "salvaged" in l for l in run.boot_logs[1].splitlines())
print("\n== demo %s (work files in %s)" % ("OK" if ok else "FAILED", tmp))
sys.exit(0 if ok else 1)
EOF
