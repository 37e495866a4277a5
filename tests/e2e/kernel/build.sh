#!/usr/bin/env bash
# Build (once per machine) the x86_64 test kernel with the pstore console, pmsg
# and ftrace front-ends, from Debian's linux-source-6.1 and x86_64-pstore.config.
#
#   bash tests/e2e/kernel/build.sh        # prints the kernel directory last
#
# The result has the layout of an extracted Debian linux-image package, so the
# test bed uses it like one: DIR/boot/vmlinuz-VER, DIR/lib/modules/VER/kernel/.
# It is cached in ${CRASHKEEP_CACHE:-$HOME/.cache/crashkeep}/
#   kernel-x86_64-pstore-<source version>-<hash of this script + the fragment>/
# so CI (a fresh clone) and every pytest process reuse one build.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
FRAGMENT=$HERE/x86_64-pstore.config
CACHE=${CRASHKEEP_CACHE:-$HOME/.cache/crashkeep}
SRC_PKG=linux-source-6.1
JOBS=${CRASHKEEP_KERNEL_JOBS:-2}

log() { echo "kernel: $*" >&2; }
die() { echo "kernel: $*" >&2; exit 1; }

need_packages() {
    local p missing=""
    for p in build-essential bc flex bison libelf-dev libssl-dev xz-utils; do
        dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        log "installing$missing"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null \
            || die "Failed to install$missing"
    fi
}

source_version() {
    apt-cache policy "$SRC_PKG" 2>/dev/null | awk '/Candidate:/ { print $2 }'
}

mkdir -p "$CACHE"
KEY=$(cat "$0" "$FRAGMENT" | sha256sum | cut -c1-12)
exec 9>"$CACHE/kernel-x86_64-pstore.lock"
flock 9

VERSION=$(source_version)
if [ -z "$VERSION" ] || [ "$VERSION" = "(none)" ]; then
    # Offline or the archive moved on: a build of the same inputs will do.
    found=$(ls -d "$CACHE"/kernel-x86_64-pstore-*-"$KEY" 2>/dev/null | tail -1 || true)
    [ -n "$found" ] && [ -e "$found/.done" ] || die "no $SRC_PKG in apt and no cached build"
    echo "$found"
    exit 0
fi
OUT=$CACHE/kernel-x86_64-pstore-$VERSION-$KEY
if [ -e "$OUT/.done" ]; then
    echo "$OUT"
    exit 0
fi

need_packages
WORK=$OUT.build
rm -rf "$WORK" "$OUT"
mkdir -p "$WORK"
start=$(date +%s)
log "building from $SRC_PKG $VERSION in $WORK"
(cd "$WORK" && apt-get download -q "$SRC_PKG=$VERSION" >/dev/null 2>&1) \
    || die "Failed to download $SRC_PKG=$VERSION"
dpkg-deb -x "$WORK"/"$SRC_PKG"_*.deb "$WORK/pkg"
tar -C "$WORK" -xaf "$WORK"/pkg/usr/src/"$SRC_PKG".tar.*
rm -rf "$WORK/pkg" "$WORK"/*.deb
KSRC=$WORK/$SRC_PKG
[ -d "$KSRC" ] || die "$SRC_PKG's tarball did not unpack to $KSRC"

make -s -C "$KSRC" allnoconfig KCONFIG_ALLCONFIG="$FRAGMENT"
# Kconfig drops a symbol whose dependencies are unmet without a word: insist.
bad=0
while IFS= read -r line; do
    case "$line" in ''|'# CONFIG_'*' is not set') ;; '#'*) continue ;; esac
    [ -n "$line" ] || continue
    grep -qxF "$line" "$KSRC/.config" || { log "not in .config: $line"; bad=1; }
done < "$FRAGMENT"
[ "$bad" = 0 ] || die "the config fragment does not apply to $SRC_PKG $VERSION"

nice -n 10 make -s -C "$KSRC" -j"$JOBS" bzImage modules
KVER=$(make -s -C "$KSRC" kernelrelease)
mkdir -p "$WORK/out/boot"
make -s -C "$KSRC" modules_install INSTALL_MOD_PATH="$WORK/out" INSTALL_MOD_STRIP=1
# The build/source links point into the build tree, which is removed below.
rm -f "$WORK/out/lib/modules/$KVER/build" "$WORK/out/lib/modules/$KVER/source"
cp "$KSRC/arch/x86/boot/bzImage" "$WORK/out/boot/vmlinuz-$KVER"
cp "$KSRC/.config" "$WORK/out/boot/config-$KVER"
cp "$KSRC/System.map" "$WORK/out/boot/System.map-$KVER"
echo "$SRC_PKG $VERSION, $(basename "$FRAGMENT") $KEY, built in $(( $(date +%s) - start )) s" \
    > "$WORK/out/BUILD-INFO"
touch "$WORK/out/.done"
mv "$WORK/out" "$OUT"
rm -rf "$WORK"
log "$(cat "$OUT/BUILD-INFO")"
echo "$OUT"
