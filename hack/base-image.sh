#!/usr/bin/env bash
# Builds an offline Debian bookworm base image (debootstrap minbase from the Debian mirror apt
# uses on this machine), for where no registry serves the public base:
#   hack/base-image.sh            local/debian-python:<version>  python3, python3-venv,
#                                 ca-certificates: the operator image's base (hack/image.sh)
#   hack/base-image.sh kind-node  local/kind-node-rootfs:<version>  systemd, containerd, runc,
#                                 CNI plugins, iptables...: a kind node (hack/kind-node-image.sh)
#
# The root filesystem is cached outside the repo as a tarball keyed by the flavour's version
# (~/.cache/backup-operator/images/); a warm run only `docker import`s it when the
# engine lacks the image, and does nothing at all when the engine has it.
# Prints the image reference on stdout (logs on stderr).
# Needs root, debootstrap and a running Docker engine (hack/image.sh starts one).
set -euo pipefail

# Bump a version when its package list or the recipe changes: a new key means a new base.
case ${1:-python} in
python)
    BASE_VERSION=${BASE_VERSION:-bookworm-py311-1}
    NAME=debian-python
    PACKAGES=python3,python3-venv,ca-certificates
    ;;
kind-node)
    # What kind's own base image installs (images/base/Dockerfile), with Debian's containerd,
    # runc and CNI plugins instead of ones cloned from github.com.
    BASE_VERSION=bookworm-kind-1
    NAME=kind-node-rootfs
    PACKAGES=systemd,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,bash,ca-certificates,curl,jq,procps,containerd,runc,containernetworking-plugins
    ;;
*)
    echo "usage: $0 [python|kind-node]" >&2
    exit 2
    ;;
esac
BASE_IMAGE_REF=${BASE_IMAGE_REF:-local/$NAME:${BASE_VERSION}}
CACHE=${BACKUP_OPERATOR_CACHE:-$HOME/.cache/backup-operator}/images
DOCKER=${DOCKER:-docker}

log() { printf '[base-image] %s\n' "$*" >&2; }

# The mirror apt uses here (deb822 `URIs:` or one-line `deb URL bookworm ...`).
debian_mirror() {
    local uri
    uri=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1 | awk '{print $2}')
    if [[ -z $uri ]]; then
        uri=$(grep -hsE '^deb .*debian/? +bookworm( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | head -1 | awk '{print $2}')
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

if $DOCKER image inspect "$BASE_IMAGE_REF" >/dev/null 2>&1; then
    log "$BASE_IMAGE_REF is already in the engine"
    echo "$BASE_IMAGE_REF"
    exit 0
fi

tarball=$CACHE/$NAME-${BASE_VERSION}.tar
if [[ ! -s $tarball ]]; then
    command -v debootstrap >/dev/null || {
        log "debootstrap missing: apt-get install -y debootstrap"
        exit 1
    }
    mkdir -p "$CACHE"
    root=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    trap 'rm -rf "$root"' EXIT
    mirror=$(debian_mirror)
    log "debootstrap --variant=minbase --include=$PACKAGES bookworm from $mirror"
    start=$(date +%s)
    debootstrap --variant=minbase --include="$PACKAGES" bookworm "$root" "$mirror" >&2
    # What an image does not need: package caches, docs, man pages, locales but C.
    chroot "$root" apt-get clean
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/* \
        "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
        "$root"/tmp/* "$root"/debootstrap
    find "$root"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'C*' -exec rm -rf {} + 2>/dev/null || true
    tar --numeric-owner -C "$root" -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
    log "root filesystem cached in $tarball ($(( $(date +%s) - start ))s)"
fi

log "docker import $tarball as $BASE_IMAGE_REF"
$DOCKER import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    "$tarball" "$BASE_IMAGE_REF" >/dev/null
echo "$BASE_IMAGE_REF"
