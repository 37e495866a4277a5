#!/usr/bin/env bash
# Install what the tests need on a fresh Debian 12 machine (idempotent).
# Debian packages: the QEMU test bed, the static-binary toolchain, the oracles (gdb, dd, busybox),
# the kernel build (tests/e2e/kernel/build.sh), qemu-user-static (the other targets'
# binaries run under it on this host).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="qemu-system-x86 busybox-static cpio e2fsprogs mtools gdb hyperfine time strace
  python3.11-dev python3.11-venv zlib1g-dev libexpat1-dev gcc make file libc6-dbg
  build-essential bc flex bison libelf-dev libssl-dev xz-utils qemu-user-static shellcheck"

missing=""
for p in $APT_PACKAGES; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq $missing >/dev/null
fi

# The test bed of the other targets (tests/e2e/kernels.py): their QEMU machines,
# the cross compilers the out-of-tree modules are built with, and apt knowing
# the foreign architectures so `apt-get download linux-image-*:ARCH` works
# (nothing foreign is installed). An index that fails to update (mirror sync)
# does not stop the rest.
TESTBED_PACKAGES="qemu-system-arm qemu-system-mips gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf
  gcc-mipsel-linux-gnu xz-utils"
missing=""
for p in $TESTBED_PACKAGES; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
foreign=$(dpkg --print-foreign-architectures)
newarch=""
for a in arm64 armhf mipsel; do
    case " $foreign " in *" $a "*) ;; *) dpkg --add-architecture "$a"; newarch=1 ;; esac
done
if [ -n "$missing" ] || [ -n "$newarch" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || true
    [ -z "$missing" ] || apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

PY=${PYTHON:-python3}
$PY -m pip install -q --disable-pip-version-check -e '.[test]'
# The accelerators, compiled in place so the source tree tests both twins.
$PY -m pip install -q --disable-pip-version-check 'Cython>=3.0,<3.3'
$PY setup.py -q build_ext --inplace
# The static binary (build/out/crashkeep) that the e2e tests boot with; incremental.
make -s -C build
# The same for every target (build/out/crashkeep-{aarch64,armhf,mipsel,x86_64}): installs the
# cross compilers and builds the target sysroots once per machine (build/sysroot.sh, cached
# under ${CRASHKEEP_CACHE:-~/.cache/crashkeep}); Cython's output is shared with the host build.
make -s -C build all-targets
# The pstore test kernel (console/pmsg/ftrace front-ends) for the e2e tests:
# built once per machine (minutes, nice -j2), cached under $CRASHKEEP_CACHE.
bash tests/e2e/kernel/build.sh >/dev/null
