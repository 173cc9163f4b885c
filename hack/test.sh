#!/usr/bin/env bash
# The README's test command (`make test`) and what CI runs: install what the tests need,
# build the control-plane parts (cached outside the repo), lint, then run every test tier.
#   hack/test.sh          everything
#   hack/test.sh lint     only the static checks
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}

step() { printf '\n=== %s\n' "$*"; }

step "install the package and test tools"
$python -m pip install --quiet --disable-pip-version-check -e '.[test]'

step "static checks"
ruff check .
ruff format --check .
mypy
lint-imports
backup-operator crds --check

[[ ${1:-} == lint ]] && exit 0

step "build the test cluster parts (cached in ${BACKUP_OPERATOR_CACHE:-$HOME/.cache/backup-operator})"
start=$(date +%s)
hack/build-tools.sh >/dev/null
echo "tools ready in $(( $(date +%s) - start ))s"

step "unit and integration tests"
$python -m pytest tests/unit tests/integration -p no:cacheprovider "$@"
