# backup-operator: one image for the operator (`backup-operator run`) and for its backup
# Jobs (`backup-operator runner ...`). Build with `make image` (hack/image.sh).
#
#   BASE_IMAGE   a Debian bookworm with python3 (>= 3.11) and its venv module. Default: the
#                public python image. Offline, hack/base-image.sh makes one with debootstrap.
#   MONGO_TOOLS  `none` (default): no mongodump/mongorestore in the image; the runner then
#                uses its builtin dumper (archive format compatible with mongorestore).
#                `build`: compile mongodump and mongorestore from github.com/mongodb/mongo-tools
#                at MONGO_TOOLS_VERSION with GO_IMAGE. Needs github.com (not reachable here).
#
# Needs BuildKit (DOCKER_BUILDKIT=1, the default of current Docker): it skips the stages the
# final image does not use, so the default build pulls no Go image.
ARG BASE_IMAGE=python:3.11-slim-bookworm
ARG GO_IMAGE=golang:1.24-bookworm
ARG MONGO_TOOLS=none

# ---------------------------------------------------------------- builder: wheel and venv
# Two venvs: /opt/build holds pip and `build`; /opt/backup-operator (copied into the image)
# gets the wheel and its dependencies and never contains pip or any build tool.
FROM ${BASE_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 \
    PIP=/opt/build/bin/pip TARGET=/opt/backup-operator/bin/python
# Behind a TLS-intercepting proxy, hack/image.sh hands pip the host's CA bundle as the
# optional build secret `ca-bundle` (never stored in a layer); without it pip uses certifi.
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
 && python3 -m venv /opt/build \
 && $PIP install --quiet --upgrade pip build \
 && python3 -m venv --without-pip /opt/backup-operator
# Dependencies first (from pyproject.toml alone), so a code change reuses this layer.
COPY pyproject.toml /src/
RUN python3 -c 'import tomllib; print("\n".join(tomllib.load(open("/src/pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /tmp/requirements.txt
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
 && $PIP --python $TARGET install --quiet --only-binary=:all: -r /tmp/requirements.txt
COPY README.md /src/
COPY operator /src/operator
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
 && /opt/build/bin/python -m build --wheel --outdir /wheels /src \
 && $PIP --python $TARGET install --quiet --no-deps /wheels/*.whl \
 && $TARGET -m compileall -q -j 0 /opt/backup-operator/lib

# ---------------------------------------------------------------- optional: mongo-tools
FROM scratch AS mongo-tools-none
WORKDIR /out

FROM ${GO_IMAGE} AS mongo-tools-build
ARG MONGO_TOOLS_VERSION=100.10.0
RUN git clone --depth 1 --branch "${MONGO_TOOLS_VERSION}" https://github.com/mongodb/mongo-tools /src \
 && cd /src \
 && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o /out/mongodump ./mongodump/main \
 && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o /out/mongorestore ./mongorestore/main

FROM mongo-tools-${MONGO_TOOLS} AS mongo-tools

# ---------------------------------------------------------------- the image
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="backup-operator" \
      org.opencontainers.image.description="Kubernetes operator for MongoDB and volume backups as Jobs" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /opt/backup-operator /opt/backup-operator
COPY --from=mongo-tools /out/ /usr/local/bin/
# USER: uid 65532 has no passwd entry; getpass.getuser() (used by kopf) reads $USER first.
ENV PATH=/opt/backup-operator/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    USER=backup-operator
# The same uid as the Job pods (jobs.RUNNER_UID); numeric, so runAsNonRoot can verify it.
USER 65532:65532
ENTRYPOINT ["backup-operator"]
CMD ["run", "--all-namespaces"]
