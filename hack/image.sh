#!/usr/bin/env bash
# `make image`: builds the operator image (the same image runs the operator and the backup
# Jobs) with Docker's BuildKit.
#   hack/image.sh                      builds backup-operator:dev
#   IMAGE=registry/x:tag hack/image.sh another tag
#   BASE_IMAGE=python:3.11-slim-bookworm hack/image.sh   force a base
#   MONGO_TOOLS=build hack/image.sh    also build mongodump/mongorestore (needs github.com)
#
# Base image: `python:3.11-slim-bookworm` when a registry serves it; otherwise (offline, as
# on the CI machines) a Debian base made by hack/base-image.sh with debootstrap, cached in
# ~/.cache/backup-operator/images/. Starts Debian's Docker engine (hack/docker-engine.sh)
# when none is running.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-backup-operator:dev}
PUBLIC_BASE=python:3.11-slim-bookworm
MONGO_TOOLS=${MONGO_TOOLS:-none}
export DOCKER_BUILDKIT=1

log() { printf '[image] %s\n' "$*" >&2; }
start=$(date +%s)

# ------------------------------------------------------------------ the engine
DOCKER=$(hack/docker-engine.sh)
export DOCKER

# ------------------------------------------------------------------ the base
if [[ -z ${BASE_IMAGE:-} ]]; then
    if $DOCKER image inspect "$PUBLIC_BASE" >/dev/null 2>&1 ||
        timeout 30 $DOCKER pull -q "$PUBLIC_BASE" >/dev/null 2>&1; then
        BASE_IMAGE=$PUBLIC_BASE
    else
        log "no registry serves $PUBLIC_BASE: using a debootstrap base (hack/base-image.sh)"
        BASE_IMAGE=$(hack/base-image.sh)
    fi
fi
log "base $BASE_IMAGE"

# ------------------------------------------------------------------ the image
# pip in the build trusts what the host trusts (a TLS-intercepting proxy's CA, if any):
# the bundle goes in as a build secret, so no layer keeps it. CA_BUNDLE= disables it.
CA_BUNDLE=${CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}
secret=()
[[ -n $CA_BUNDLE && -s $CA_BUNDLE ]] && secret=(--secret "id=ca-bundle,src=$CA_BUNDLE")
$DOCKER build "${secret[@]}" \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    --build-arg "MONGO_TOOLS=$MONGO_TOOLS" \
    --tag "$IMAGE" \
    .
size=$($DOCKER image inspect --format '{{.Size}}' "$IMAGE")
log "built $IMAGE: $(( size / 1000000 )) MB, in $(( $(date +%s) - start ))s"
