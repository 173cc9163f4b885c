#!/usr/bin/env bash
# Builds the offline base image `local/debian-python:<version>`: Debian bookworm (minbase,
# debootstrap from the Debian mirror apt uses on this machine) + python3, python3-venv and
# ca-certificates. Needed only where no registry serves `python:3.11-slim-bookworm`.
#
# The root filesystem is cached outside the repo as a tarball keyed by BASE_VERSION
# (~/.cache/backup-operator/images/); a warm run only `docker import`s it when the
# engine lacks the image, and does nothing at all when the engine has it.
#   hack/base-image.sh            prints the image reference on stdout (logs on stderr)
# Needs root, debootstrap and a running Docker engine (hack/image.sh starts one).
set -euo pipefail

# Bump when the package list or the recipe changes: a new key means a new base.
BASE_VERSION=${BASE_VERSION:-bookworm-py311-1}
BASE_IMAGE_REF=${BASE_IMAGE_REF:-local/debian-python:${BASE_VERSION}}
PACKAGES=python3,python3-venv,ca-certificates
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

tarball=$CACHE/debian-python-${BASE_VERSION}.tar
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
