"""Test harness: starts real components on 127.0.0.1 for integration tests and hack/.

Why it exists: integration tests must run against the real Kubernetes control plane
(etcd, kube-apiserver, kube-controller-manager) and a real MongoDB-wire server (FerretDB),
never against mocks. These modules build/locate those binaries and run them as child
processes of the test session:

- ``tools``: locate (and build once, through ``hack/build-tools.sh``) the binaries.
- ``controlplane``: ``ControlPlane``, etcd + kube-apiserver (TLS, RBAC, PodSecurity) +
  kube-controller-manager (Job, GC, namespace, ... controllers).
- ``ferretdb``: ``FerretDB``, a MongoDB-wire server with the SQLite backend.
- ``podplayer``: ``PodPlayer``, plays the kubelet's part for Job pods (there is no node).
- ``dump``: YAML dump of a namespace for failure reports.
- ``kube``: ``Kube``, plain-JSON requests to the API (any group, custom resources too).
- ``waiting``: ``wait_for``, the one way to wait for a condition (never a bare sleep).
- ``pki``, ``processes``: certificates and child-process plumbing used by the above.
"""
