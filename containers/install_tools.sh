#!/usr/bin/env bash
# Install what containers/build.sh needs on a Debian/Ubuntu machine without a Docker engine (root):
# podman with runc, and mmdebstrap for `--base local` (a Debian base built from Debian's package mirror when
# no image registry is reachable). No-op for tools already present.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "install_tools.sh: must run as root (apt-get)" >&2; exit 1; }
missing=()
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
command -v mmdebstrap >/dev/null || command -v debootstrap >/dev/null || missing+=(mmdebstrap)
if [ ${#missing[@]} -eq 0 ]; then echo "install_tools.sh: podman, runc, mmdebstrap present"; exit 0; fi
command -v apt-get >/dev/null || { echo "install_tools.sh: apt-get not found; install ${missing[*]} by hand" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install_tools.sh: installed ${missing[*]} ($(podman --version))"
