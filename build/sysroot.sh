#!/bin/sh
# sysroot.sh TARGET: make sure TARGET's cross toolchain is installed and its
# sysroot exists; print the sysroot's path on stdout (nothing else).
#
#   TARGET: aarch64 | armhf | mipsel | x86_64
#
# The sysroot holds the target's static CPython (libpython3.11.a, headers,
# config.c), zlib and a static BusyBox, taken from Debian packages with
# `apt-get download` + `dpkg-deb -x`. Never a multiarch install: the foreign
# libpython3.11 must match the host's version exactly, apt refuses ("held
# broken packages") and forcing it replaces the host's Python.
#
# Cached outside the repo, keyed by the exact .deb files (name, version,
# sha256), so clones on one machine share it:
#   ${CRASHKEEP_CACHE:-$HOME/.cache/crashkeep}/sysroot-<target>-<hash>/
set -eu

target=${1:?usage: sysroot.sh aarch64|armhf|mipsel|x86_64}
case $target in
    aarch64) debarch=arm64; triplet=aarch64-linux-gnu ;;
    armhf)   debarch=armhf; triplet=arm-linux-gnueabihf ;;
    mipsel)  debarch=mipsel; triplet=mipsel-linux-gnu ;;
    x86_64)  debarch=amd64; triplet=x86_64-linux-gnu ;;
    *) echo "sysroot.sh: unknown target '$target' (aarch64, armhf, mipsel, x86_64)" >&2; exit 2 ;;
esac
PKGS="libpython3.11-dev libpython3.11 zlib1g-dev zlib1g libexpat1-dev busybox-static"
cache=${CRASHKEEP_CACHE:-$HOME/.cache/crashkeep}
# Bump when what goes into a sysroot (not the packages) changes.
layout=v1

say() { echo "sysroot.sh: $*" >&2; }

apt_install() {
    # Another apt may be running (setup, other builds): wait for its lock.
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq \
        --no-install-recommends "$@" >/dev/null
}

apt_update() {
    # One foreign index may fail ("File has unexpected size ... Mirror sync in
    # progress?") while the main archive is fine: go on if the packages we
    # need resolve; the caller checks that.
    if ! apt-get -o DPkg::Lock::Timeout=900 update -qq >/dev/null 2>"$cache/apt-update.err"; then
        say "apt-get update failed for some index (going on if the packages resolve):"
        grep -E '^(E|W):' "$cache/apt-update.err" | head -5 >&2 || true
    fi
}

# ---- the host side: cross compiler and libc -------------------------------
mkdir -p "$cache"
host_arch=$(dpkg --print-architecture)
if [ "$debarch" = "$host_arch" ]; then
    tools="gcc libc6-dev"
else
    # libc6-dev-*-cross is only a Recommends of gcc-<triplet>: name it.
    tools="gcc-$triplet libc6-dev-$debarch-cross"
fi
missing=""
for p in $tools; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    say "installing$missing"
    apt_install $missing || { apt_update; apt_install $missing; }
fi

# ---- the target packages ------------------------------------------------------
if [ "$debarch" != "$host_arch" ] && ! dpkg --print-foreign-architectures | grep -qx "$debarch"; then
    say "dpkg --add-architecture $debarch (index only: nothing of $debarch is installed)"
    dpkg --add-architecture "$debarch"
    apt_update
fi
pkgs=""
for p in $PKGS; do pkgs="$pkgs $p:$debarch"; done

uris() {
    # 'URI' FILE SIZE SHA256:... per package, the candidate versions.
    apt-get download --print-uris $pkgs 2>/dev/null
}
list=$(uris) || list=""
if [ "$(printf '%s\n' "$list" | grep -c '\.deb')" -ne "$(echo $PKGS | wc -w)" ]; then
    apt_update
    list=$(uris) || {
        say "cannot resolve$pkgs (apt-get download --print-uris failed; see $cache/apt-update.err)"
        exit 1
    }
fi
key=$(printf '%s\n%s\n' "$layout" "$list" | awk '{print $2, $4}' | sha256sum | cut -c1-16)
dest="$cache/sysroot-$target-$key"
if [ -f "$dest/.done" ]; then
    echo "$dest"
    exit 0
fi
# Builds of several targets/clones at once: one builder per sysroot.
exec 9>"$cache/sysroot-$target.lock"
flock 9
if [ -f "$dest/.done" ]; then
    echo "$dest"
    exit 0
fi

say "building $dest"
tmp="$dest.tmp$$"
rm -rf "$tmp"
mkdir -p "$tmp/debs" "$tmp/root"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp/debs" && apt-get download $pkgs >/dev/null 2>"$tmp/download.err") || {
    cat "$tmp/download.err" >&2
    say "failed to download$pkgs"
    exit 1
}
for deb in "$tmp"/debs/*.deb; do
    dpkg-deb -x "$deb" "$tmp/root"
done
lib="$tmp/root/usr/lib/python3.11/config-3.11-$triplet/libpython3.11.a"
[ -f "$lib" ] || { say "no libpython3.11.a in the packages (looked for $lib)"; exit 1; }
# Debian 12 merged /usr; tools that look under /lib need the link.
[ -e "$tmp/root/lib" ] || ln -s usr/lib "$tmp/root/lib"
printf '%s\n' "$list" | awk '{print $2}' > "$tmp/root/PACKAGES"
echo "$triplet" > "$tmp/root/TRIPLET"
touch "$tmp/root/.done"
rm -rf "$dest"
mv -T "$tmp/root" "$dest"
echo "$dest"
