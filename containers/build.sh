#!/usr/bin/env bash
# Build the mtl-repro image (containers/Containerfile) with podman or Docker, offline-capable.
#
#   bash containers/build.sh [--target cuda|cpu] [--base IMAGE|local] [--engine podman|docker]
#                            [--tag NAME] [--no-wheelhouse] [--prune] [--sif FILE]
#
#   --target      cuda (default): for GPU hosts; cpu: same stack, no GPU request (see the Containerfile)
#   --base        base image (default: the Containerfile's pinned Debian bookworm); `local` builds a Debian
#                 bookworm rootfs with mmdebstrap/debootstrap and imports it as localhost/mtl-base:bookworm,
#                 for machines that reach Debian's and Python's package registries but no image registry
#   --engine      podman (default when installed; uses containers/containers.conf) or docker
#   --tag         image name (default: mtl-repro:<pipelines version>-<target>)
#   --no-wheelhouse  let pip inside the build use the package index instead of the host-made wheelhouse
#   --prune       afterwards remove dangling images (earlier builds' layers no tag refers to; each holds
#                 a multi-GB Python stack)
#   --sif FILE    also convert the image to an Apptainer SIF file (needs apptainer; see containers/mtl.def)
#
# The wheelhouse (containers/wheelhouse/) is `pip download` of the pinned stack (torch==2.14.1,
# torchvision==0.29.1, requirements/constraints.txt) by the host's Python 3.11, so the image build needs no
# network and installs exactly what the README install gets. Downloaded wheels and the local base rootfs are
# cached in $MTL_CONTAINER_CACHE (default /var/cache/mtl-containers) and reused while the requirement list
# and the lock are unchanged; podman/docker cache the image layers.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=cuda BASE="" ENGINE="" TAG="" WHEELHOUSE=1 SIF="" PRUNE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --target) TARGET=$2; shift 2 ;;
        --base) BASE=$2; shift 2 ;;
        --engine) ENGINE=$2; shift 2 ;;
        --tag) TAG=$2; shift 2 ;;
        --no-wheelhouse) WHEELHOUSE=0; shift ;;
        --prune) PRUNE=1; shift ;;
        --sif) SIF=$2; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ {print; next} NR > 1 {exit}' "$0"; exit 0 ;;
        *) echo "build.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$TARGET" in cuda|cpu) ;; *) echo "build.sh: --target must be cuda or cpu, got '$TARGET'" >&2; exit 2 ;; esac
if [ -z "$ENGINE" ]; then
    if command -v podman >/dev/null; then ENGINE=podman; else ENGINE=docker; fi
fi
case "$ENGINE" in podman|docker) ;; *) echo "build.sh: --engine must be podman or docker, got '$ENGINE'" >&2; exit 2 ;; esac
command -v "$ENGINE" >/dev/null || { echo "build.sh: $ENGINE not found" >&2; exit 1; }
[ "$ENGINE" = podman ] && export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/containers/containers.conf}
PY=${PYTHON:-python3}
CACHE=${MTL_CONTAINER_CACHE:-/var/cache/mtl-containers}
LOCK=requirements/constraints.txt
[ -f "$LOCK" ] || { echo "build.sh: $LOCK (the lock file of the README install) is missing" >&2; exit 1; }
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' pipelines/pyproject.toml | head -1)
TAG=${TAG:-mtl-repro:$VERSION-$TARGET}
log() { echo "build.sh: $*" >&2; }

local_base() {
    # A Debian bookworm rootfs with Python 3.11 and git, imported as an image (no registry needed).
    local image=localhost/mtl-base:bookworm tarball=$CACHE/debian-bookworm-mtl-base.tar
    if "$ENGINE" image inspect "$image" >/dev/null 2>&1; then echo "$image"; return; fi
    mkdir -p "$CACHE"
    if [ ! -s "$tarball" ]; then
        local pkgs=python3,python3-venv,ca-certificates,git
        if command -v mmdebstrap >/dev/null; then
            log "mmdebstrap bookworm -> $tarball"
            mmdebstrap --quiet --variant=minbase --include=$pkgs --format=tar bookworm "$tarball.tmp" >&2
        elif command -v debootstrap >/dev/null; then
            log "debootstrap bookworm -> $tarball"
            local root
            root=$(mktemp -d "$CACHE/rootfs.XXXXXX")
            debootstrap --variant=minbase --include=$pkgs bookworm "$root" >&2
            tar -C "$root" -cf "$tarball.tmp" .
            rm -rf "$root"
        else
            log "--base local needs mmdebstrap or debootstrap (apt-get install mmdebstrap)"; exit 1
        fi
        mv "$tarball.tmp" "$tarball"
    fi
    "$ENGINE" import --change 'CMD ["/bin/bash"]' "$tarball" "$image" >/dev/null
    echo "$image"
}

fill_wheelhouse() {
    # Wheels for one requirement list + lock live in $CACHE/wheelhouse-<hash> (kept between builds and
    # clones on one machine) and are hard-linked into the build context's containers/wheelhouse/.
    local dir=containers/wheelhouse reqs stamp store
    reqs=$(mktemp)
    "$PY" containers/requirements.py >"$reqs"
    stamp=$(cat "$reqs" "$LOCK" | sha256sum | cut -c1-16)
    store=$CACHE/wheelhouse-$stamp
    if [ -f "$store/.complete" ]; then
        log "wheelhouse $store is up to date"
    else
        local pyver
        pyver=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
        local -a platform=()
        if [ "$pyver" != 3.11 ] || [ "$(uname -s)" != Linux ]; then
            # Wheels for the image's interpreter (CPython 3.11, glibc Linux), whatever the host runs.
            platform=(--python-version 3.11 --implementation cp --only-binary=:all:
                      --platform "manylinux_2_28_$(uname -m)" --platform "manylinux_2_17_$(uname -m)")
        fi
        log "pip download of the pinned stack into $store (python $pyver)"
        mkdir -p "$store"
        "$PY" -m pip download --quiet --disable-pip-version-check "${platform[@]}" -d "$store" \
            -c "$LOCK" -r "$reqs" 2> >(grep -v "^WARNING: Location" >&2)
        touch "$store/.complete"
        # Wheelhouses of earlier locks are not needed any more (3 GB each).
        find "$CACHE" -mindepth 1 -maxdepth 1 -name 'wheelhouse-*' ! -path "$store" -exec rm -rf {} +
    fi
    rm -f "$reqs"
    find "$dir" -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
    cp -al "$store"/. "$dir"/ 2>/dev/null || cp -a "$store"/. "$dir"/
}

args=(build -f containers/Containerfile --target "$TARGET" -t "$TAG" --network host)
[ "$ENGINE" = podman ] && args+=(--ignorefile containers/Containerfile.dockerignore)
if [ "$BASE" = local ]; then BASE=$(local_base); fi
[ -n "$BASE" ] && args+=(--build-arg "BASE_IMAGE=$BASE")
if [ "$WHEELHOUSE" = 1 ]; then
    fill_wheelhouse
else
    find containers/wheelhouse -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
fi
log "$ENGINE ${args[*]} ."
start=$SECONDS
"$ENGINE" "${args[@]}" .
log "built $TAG in $((SECONDS - start)) s"
[ "$PRUNE" = 1 ] && "$ENGINE" image prune -f >/dev/null

if [ -n "$SIF" ]; then
    command -v apptainer >/dev/null || { log "--sif needs apptainer"; exit 1; }
    archive=$(mktemp --suffix=.tar)
    "$ENGINE" save --format docker-archive -o "$archive" "$TAG" 2>/dev/null || "$ENGINE" save -o "$archive" "$TAG"
    apptainer build --force --build-arg "ARCHIVE=$archive" "$SIF" containers/mtl.def
    rm -f "$archive"
    log "wrote $SIF"
fi
echo "$TAG"
