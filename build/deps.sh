#!/bin/sh
# Debian packages the static build needs (idempotent; installs only what is missing).
#   python3.11-dev: /usr/bin/python3.11 and the static libpython3.11.a it links
#   python3.11-venv: the build venv (Cython and the frozen CLI packages live there)
#   zlib1g-dev: libz.a (zlib is a builtin module); gcc, binutils, make: the toolchain
set -eu
PKGS="python3.11-dev python3.11-venv zlib1g-dev libc6-dev gcc binutils make file"
missing=""
for p in $PKGS; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "build/deps.sh: installing$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq $missing >/dev/null
fi
