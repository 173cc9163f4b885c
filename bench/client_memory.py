"""Which Kubernetes client the operator uses: resident memory of each, imported beside kopf.

Not a test: prints a table. Each variant runs in a fresh interpreter that imports kopf,
then the client, then builds one API object the way the operator does, and reports its
peak RSS (ru_maxrss). Run: ``python bench/client_memory.py``.
"""

from __future__ import annotations

import subprocess
import sys

VARIANTS = {
    "kopf alone (baseline)": "import kopf",
    "kopf + kubernetes (sync, official)": (
        "import kopf, kubernetes.client as c; c.BatchV1Api(c.ApiClient()); c.CoordinationV1Api()"
    ),
    "kopf + kubernetes_asyncio (ours)": (
        "import asyncio, kopf, kubernetes_asyncio.client as c\n"
        "async def main():\n"
        "    api = c.ApiClient(); c.BatchV1Api(api); c.CoordinationV1Api(api); await api.close()\n"
        "asyncio.run(main())"
    ),
}

PROBE = "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"


def peak_rss_mib(code: str) -> float:
    """Peak RSS in MiB of a fresh interpreter running ``code``."""
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\n{PROBE}"], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1]) / 1024


def main() -> None:
    rows = {name: min(peak_rss_mib(code) for _ in range(3)) for name, code in VARIANTS.items()}
    base = rows["kopf alone (baseline)"]
    print(f"{'variant':40} {'peak RSS MiB':>12} {'over kopf':>10}")
    for name, mib in rows.items():
        print(f"{name:40} {mib:12.1f} {mib - base:+10.1f}")


if __name__ == "__main__":
    main()
