#!/usr/bin/env bash
# Assembles a kind node image offline: what `kind build node-image` makes, from parts built
# here, for machines where kind's public images cannot be pulled. (`kind build node-image`
# itself cannot run offline: it pulls kindest/base, whose Dockerfile clones containerd, runc
# and the CNI plugins from github.com, and it `ctr content fetch`es etcd, CoreDNS, pause,
# kindnetd and the local-path images with no way to skip that.)
#
#   hack/kind-node-image.sh     prints the image reference (logs on stderr)
#   kind create cluster --image "$(hack/kind-node-image.sh)" --config hack/kind-config.yaml
#
# The image, like kind's own:
# - a Debian bookworm root filesystem with systemd (hack/base-image.sh kind-node) plus the
#   files of kind's base image (images/base/files in the sigs.k8s.io/kind module: the
#   entrypoint, the containerd and kubelet units, containerd's config);
# - kubeadm, kubelet, kubectl and crictl in /usr/bin and /usr/local/bin, /kind/version;
# - the images kubeadm runs (kube-apiserver, kube-controller-manager, kube-scheduler,
#   kube-proxy, etcd, CoreDNS, pause) and the local-path provisioner behind the default
#   StorageClass, all built here (hack/build-tools.sh) and preloaded into the node's
#   containerd, so nothing is ever pulled;
# Different from kind's: Debian's containerd 1.6, runc 1.1 and CNI plugins; instead of
# kindnetd, a static ptp CNI config for the first node's pod range (10.244.0.0/24), so the
# image makes single-node clusters only; and containerd's `restrict_oom_score_adj` on (as
# kind sets it for rootless nodes): lowering a pod's oom_score_adj below containerd's needs
# CAP_SYS_RESOURCE, which some hosts (these VMs) keep out of every container.
#
# Cached in the Docker engine under a tag keyed by the Kubernetes version and the recipe
# revision below: a warm run prints the tag at once.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

# Bump when the recipe below changes: a new revision means a new image.
NODE_IMAGE_REVISION=1
REF=backup-operator.local/kind-node:$KUBERNETES_VERSION-$NODE_IMAGE_REVISION
# Where the images of our own naming are tagged (kubeadm's keep kubeadm's names).
LOCAL=backup-operator.local
DOCKER=$("$here/docker-engine.sh")
export DOCKER

log() { printf '[kind-node-image] %s\n' "$*" >&2; }

if $DOCKER image inspect "$REF" >/dev/null 2>&1; then
    echo "$REF"
    exit 0
fi
start=$(date +%s)

bin=$("$here/build-tools.sh" kubernetes etcd node kind-node)
k8s=$bin/kubernetes-$KUBERNETES_VERSION
rootfs=$("$here/base-image.sh" kind-node)
kind_files=$(cd "$bin/.." && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')/images/base/files

context=$(mktemp -d)
container=""
cleanup() {
    rm -rf "$context"
    if [[ -n $container ]]; then $DOCKER rm -f -v "$container" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

# ------------------------------------------------------------------ the images it preloads
# image REF FILE ENTRYPOINT... : an image FROM the node's root filesystem (glibc, a
# shell) with FILE at /usr/local/bin; they share that one base layer.
image_refs=()
image() {
    local ref=$1 file=$2
    shift 2
    local dir=$context/images/${ref//[\/:]/_}
    mkdir -p "$dir"
    cp "$file" "$dir/"
    local entrypoint
    entrypoint=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "$@")
    printf 'FROM %s\nENV PATH=%s\nCOPY %s /usr/local/bin/\nENTRYPOINT %s\n' \
        "$rootfs" /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        "$(basename "$file")" "$entrypoint" >"$dir/Dockerfile"
    $DOCKER build -q -t "$ref" "$dir" >/dev/null
    image_refs+=("$ref")
}

kubeadm=$k8s/kubeadm
wanted=$("$kubeadm" config images list --kubernetes-version "$KUBERNETES_VERSION")
tag_of() { grep -E "/$1:" <<<"$wanted" | head -1; }
log "building the node's images from $rootfs"
for cmd in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
    image "$(tag_of "$cmd")" "$k8s/$cmd" "/usr/local/bin/$cmd"
done
image "$(tag_of etcd)" "$bin/etcd-$ETCD_VERSION/etcd" /usr/local/bin/etcd
image "$(tag_of coredns)" "$(ls "$bin"/coredns-*/coredns | tail -1)" /usr/local/bin/coredns
pause=$(ls "$bin"/e2e-static-*/pause | tail -1)
image "$(tag_of pause)" "$pause" /usr/local/bin/pause
# containerd's sandbox image (kind's containerd config names its own pause tag).
sandbox=$(grep -oE 'sandbox_image = "[^"]+"' "$kind_files/etc/containerd/config.toml" | cut -d'"' -f2)
[[ $sandbox == "$(tag_of pause)" ]] || image "$sandbox" "$pause" /usr/local/bin/pause
provisioner=$LOCAL/local-path-provisioner:$LOCAL_PATH_PROVISIONER_VERSION
image "$provisioner" "$bin/local-path-provisioner-$LOCAL_PATH_PROVISIONER_VERSION/local-path-provisioner" \
    /usr/local/bin/local-path-provisioner
# The provisioner's helper pods run its setup/teardown scripts with sh: the root filesystem.
helper=$LOCAL/local-path-helper:$NODE_IMAGE_REVISION
$DOCKER tag "$rootfs" "$helper"
image_refs+=("$helper")

# ------------------------------------------------------------------ the node
node=$context/node
mkdir -p "$node/bin" "$node/manifests"
cp -r "$kind_files" "$node/files"
chmod -R u+w "$node/files"
cp "$k8s/kubeadm" "$k8s/kubelet" "$k8s/kubectl" "$bin/crictl-$CRI_TOOLS_VERSION/crictl" "$node/bin/"
echo "$KUBERNETES_VERSION" >"$node/version"
# kind applies these at cluster creation; see the header for the CNI.
cat >"$node/manifests/default-cni.yaml" <<'YAML'
# Pods are networked by the static CNI config /etc/cni/net.d/10-ptp.conflist baked into
# this node image (hack/kind-node-image.sh): single-node clusters only.
apiVersion: v1
kind: ConfigMap
metadata:
  name: kind-static-cni
  namespace: kube-system
data:
  conflist: /etc/cni/net.d/10-ptp.conflist
YAML
cat >"$node/10-ptp.conflist" <<'JSON'
{
  "cniVersion": "0.4.0",
  "name": "kind-static",
  "plugins": [
    {
      "type": "ptp",
      "ipMasq": true,
      "mtu": 1500,
      "ipam": {
        "type": "host-local",
        "dataDir": "/run/cni-ipam-state",
        "routes": [{"dst": "0.0.0.0/0"}],
        "ranges": [[{"subnet": "10.244.0.0/24"}]]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
# kind's default StorageClass manifest, verbatim but for the two images built here.
python3 - "$kind_files/../../../pkg/build/nodeimage/const_storage.go" "$provisioner" "$helper" \
    >"$node/manifests/default-storage.yaml" <<'PY'
import re, sys
source, provisioner, helper = sys.argv[1:]
text = open(source).read()
manifest = re.search(r"const defaultStorageManifest = `(.*?)\n`", text, re.S).group(1)
manifest = manifest.replace("` + storageProvisionerImage + `", provisioner)
manifest = manifest.replace("` + storageHelperImage + `", helper)
assert "`" not in manifest, "unexpected template in kind's storage manifest"
print(manifest.strip())
PY

cat >"$node/Dockerfile" <<DOCKERFILE
FROM $rootfs
# kind's base image (images/base/Dockerfile), minus what Debian's packages already provide.
COPY files/usr/local/bin/ /usr/local/bin/
COPY files/kind/ /kind/
COPY files/etc/ /etc/
RUN chmod 755 /kind /kind/bin /kind/bin/* /usr/local/bin/* \\
    && find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete \\
    && rm -f /lib/systemd/system/multi-user.target.wants/* \\
    && rm -f /etc/systemd/system/*.wants/* \\
    && rm -f /lib/systemd/system/local-fs.target.wants/* \\
    && rm -f /lib/systemd/system/sockets.target.wants/*udev* \\
    && rm -f /lib/systemd/system/sockets.target.wants/*initctl* \\
    && rm -f /lib/systemd/system/basic.target.wants/* \\
    && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \\
    && ln -sf /usr/lib/systemd/systemd /sbin/init \\
    && ln -s /usr/bin/containerd /usr/local/bin/containerd \\
    && mkdir -p /opt/cni/bin /etc/cni/net.d /etc/kubernetes/manifests \\
    && ln -s /usr/lib/cni/* /opt/cni/bin/ \\
    && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \\
    && systemctl mask systemd-binfmt.service \\
    && ctr oci spec \\
        | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \\
        | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json \\
    && sed -i 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' /etc/containerd/config.toml
COPY bin/kubeadm bin/kubelet bin/kubectl /usr/bin/
COPY bin/crictl /usr/local/bin/
COPY version /kind/version
COPY manifests/ /kind/manifests/
COPY 10-ptp.conflist /etc/cni/net.d/
STOPSIGNAL SIGRTMIN+3
DOCKERFILE
log "building the node image"
$DOCKER build -q -t "$REF-stage" "$node" >/dev/null

# ------------------------------------------------------------------ preload the images
# As kind does: run the node's containerd in a build container, import, commit.
container=$($DOCKER run -d --entrypoint=sleep --security-opt seccomp=unconfined "$REF-stage" infinity)
$DOCKER exec "$container" bash -c 'nohup containerd >/dev/null 2>&1 &'
$DOCKER exec "$container" bash -c 'for i in $(seq 50); do ctr version >/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1'
log "preloading ${image_refs[*]}"
$DOCKER save "${image_refs[@]}" | $DOCKER exec -i "$container" \
    ctr --namespace=k8s.io images import --all-platforms --no-unpack --digests - >/dev/null
$DOCKER exec "$container" ctr --namespace=k8s.io images list -q >&2
$DOCKER exec "$container" pkill containerd
# (sleep is PID 1 and reaps nothing: wait for the socket to go, not for the process.)
$DOCKER exec "$container" bash -c 'while ctr version >/dev/null 2>&1; do sleep 0.1; done'
$DOCKER commit \
    --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' \
    "$container" "$REF" >/dev/null
$DOCKER rm -f -v "$container" >/dev/null && container=""
$DOCKER rmi "$REF-stage" >/dev/null
log "built $REF in $(($(date +%s) - start))s"
echo "$REF"
