# backup-operator: the commands a developer (and CI) runs. `make help` lists them.
PYTHON ?= python3

.PHONY: help test deps tools lint unit integration crds

help:  ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

test:  ## Everything CI runs: install, build the test cluster parts, lint, unit and integration tests
	hack/test.sh

deps:  ## Install the package and its test tools
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e '.[test]'

tools:  ## Build kube-apiserver, kube-controller-manager, etcd, FerretDB (cached, keyed by version)
	hack/build-tools.sh

lint:  ## ruff, mypy (strict), import layering, CRD drift
	hack/test.sh lint

unit:  ## Unit tests only (no cluster)
	$(PYTHON) -m pytest tests/unit

integration:  ## Integration tests on a real control plane and FerretDB
	$(PYTHON) -m pytest tests/integration

crds:  ## Regenerate crds/ from the API models
	backup-operator crds

.PHONY: image manifests

image:  ## Build the operator image backup-operator:dev (offline: a debootstrap base, cached)
	hack/image.sh

manifests:  ## Render the kustomize overlays into build/manifests/{namespaced,cluster}.yaml
	@mkdir -p build/manifests
	kubectl kustomize manifests/overlays/namespaced > build/manifests/namespaced.yaml
	kubectl kustomize manifests/overlays/cluster > build/manifests/cluster.yaml

.PHONY: e2e e2e-kind
e2e: image  ## e2e tests: the operator image on a cluster whose pods run (this host as node, or E2E_KUBECONFIG)
	$(PYTHON) -m pytest tests/e2e

e2e-kind: image  ## The same e2e tests on a kind cluster made for the run (deleted after)
	E2E_CLUSTER=kind $(PYTHON) -m pytest tests/e2e

.PHONY: demo
demo: image  ## A kind cluster, the operator, a DatabaseBackup and a FilesBackup shown to Succeeded (DEMO_ARGS=--keep keeps it up)
	$(PYTHON) hack/demo.py $(DEMO_ARGS)
