#!/usr/bin/env bash
# The README's test command (`make test`) and what CI runs: install what the tests need,
# build the cluster parts (cached outside the repo, keyed by version), lint, then run every
# test tier: unit, integration (real control plane + FerretDB), e2e (pods really run).
#   hack/test.sh          everything
#   hack/test.sh lint     only the static checks
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}

step() { printf '\n=== %s (%s)\n' "$*" "$(date +%T)"; }

step "install the package and test tools"
$python -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e '.[test]'

step "static checks"
ruff check .
ruff format --check .
mypy
lint-imports
backup-operator crds --check

[[ ${1:-} == lint ]] && exit 0

# Debian packages: Docker's engine and debootstrap (the images), containerd, runc and the CNI
# plugins (the e2e node), jq (hack/docker-engine.sh). Installed once; later runs find them.
packages=(docker.io debootstrap containerd runc containernetworking-plugins iptables iproute2 jq)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if (( ${#missing[@]} )); then
    step "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

step "build the cluster parts (cached in ${BACKUP_OPERATOR_CACHE:-$HOME/.cache/backup-operator})"
start=$(date +%s)
hack/build-tools.sh >/dev/null
hack/build-tools.sh node kind kind-node >/dev/null
echo "tools ready in $(( $(date +%s) - start ))s"

step "unit and integration tests"
$python -m pytest tests/unit tests/integration -p no:cacheprovider

step "the operator image"
hack/image.sh

step "e2e tests: the image on a cluster whose pods really run (this host as the node)"
$python -m pytest tests/e2e -p no:cacheprovider

step "e2e tests again, on kind (a node image assembled here, unless KIND_NODE_IMAGE names one)"
KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-$(hack/kind-node-image.sh)}
export KIND_NODE_IMAGE
E2E_CLUSTER=kind $python -m pytest tests/e2e -p no:cacheprovider
