"""Integration tests: the operator against a real kube-apiserver, etcd, controllers and FerretDB."""
