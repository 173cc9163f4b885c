"""Benchmark of the backup runner's data path (a script, not a test).

Files: ``runner files --compression zstd`` against ``tar -cf - DIR | gzip`` and
``restic backup`` (first, full backup) on the same generated mixed data, at two sizes to
show that the runner's memory does not grow with the data. Also zlib level 1 vs 6, which
decides the gzip default. Database: the builtin dumper against a plain pymongo ``find()``
read of the same FerretDB data (bare mongodump is not available here).

Run from the repository root: ``PYTHONPATH=. python bench/runner.py [--sizes 200,800]``.
Every figure is measured in this run; the data sits in the page cache for all tools alike.
Peak RSS is the largest single process of each command (``RUSAGE_CHILDREN`` of a wrapper).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

MIB = 1 << 20
WORDS = [
    "backup",
    "operator",
    "kubernetes",
    "mongo",
    "archive",
    "volume",
    "restore",
    "status",
    "job",
    "lock",
    "queue",
    "phase",
    "succeeded",
    "failed",
    "pending",
    "running",
    "storage",
    "claim",
    "checksum",
    "stream",
    "compress",
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "for",
    "on",
    "with",
    "as",
    "by",
    "at",
    "from",
    "this",
    "that",
    "be",
    "are",
    "or",
    "it",
]

_WRAPPER = (
    "import resource, subprocess, sys, time\n"
    "t = time.monotonic()\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "wall = time.monotonic() - t\n"
    "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(f'{code} {wall} {rss}', file=sys.stderr)\n"
)


def measure(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one command run under a fresh wrapper process."""
    proc = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        check=False,
    )
    code, wall, rss = proc.stderr.strip().splitlines()[-1].split()
    if code != "0":
        raise RuntimeError(f"{argv[:3]} failed: {proc.stderr[-2000:]}")
    return float(wall), int(rss) / 1024


def text_pool(size: int, rng: random.Random) -> bytes:
    """Log-like text: words, numbers, newlines."""
    parts: list[str] = []
    total = 0
    while total < size:
        line = " ".join(rng.choices(WORDS, k=12)) + f" id={rng.randrange(10**9)}\n"
        parts.append(line)
        total += len(line)
    return "".join(parts).encode()[:size]


def generate(root: Path, size_mb: int, seed: int = 7) -> int:
    """Mixed data: 70% text-like (compressible), 30% random; small and medium files."""
    rng = random.Random(seed)
    pool = text_pool(64 * MIB, rng)
    written, index = 0, 0
    target = size_mb * MIB
    while written < target:
        small = index % 10 < 7
        size = rng.randrange(4096, 65536) if small else rng.randrange(MIB, 8 * MIB)
        if rng.random() < 0.3:
            data = rng.randbytes(size)
        else:
            start = rng.randrange(0, len(pool) - size)
            data = pool[start : start + size]
        path = root / f"d{index % 37:02d}" / f"s{index % 11}" / f"f{index:06d}.dat"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written += size
        index += 1
    return written


def runner_argv() -> list[str]:
    exe = shutil.which("backup-operator")
    if exe and subprocess.run([exe, "runner", "--help"], capture_output=True).returncode == 0:
        return [exe, "runner"]
    return [sys.executable, "-m", "backup_operator.runner"]


def bench_files(size_mb: int, work: Path) -> list[tuple[str, int, float, float, float]]:
    src = work / f"data{size_mb}"
    total = generate(src, size_mb)
    rows = []
    out = work / "out"
    for kind in ("zstd", "gzip"):
        argv = [*runner_argv(), "files", "--source", str(src), "--dest-root", str(out)]
        argv += ["--prefix", f"b/{kind}", "--compression", kind, "--termination-log", ""]
        secs, rss = measure(argv)
        rows.append(
            (f"runner files {kind}", size_mb, total / MIB / secs, rss, _size(out / "b" / kind))
        )
    tgz = work / "plain.tar.gz"
    secs, rss = measure(["bash", "-c", f"tar -cf - -C {src} . | gzip > {tgz}"])
    rows.append(("tar | gzip", size_mb, total / MIB / secs, rss, tgz.stat().st_size / MIB))
    repo, pw = work / f"restic{size_mb}", work / "pw"
    pw.write_text("bench-password\n")
    env = {**os.environ, "RESTIC_REPOSITORY": str(repo), "RESTIC_PASSWORD_FILE": str(pw)}
    subprocess.run(["restic", "init", "-q"], env=env, check=True, capture_output=True)
    secs, rss = measure(["restic", "backup", "-q", str(src)], env=env)
    rows.append(("restic backup (first)", size_mb, total / MIB / secs, rss, _size(repo)))
    shutil.rmtree(src)
    shutil.rmtree(out)
    shutil.rmtree(repo)
    tgz.unlink()
    return rows


def _size(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / MIB


def bench_zlib_levels() -> list[tuple[int, float, float]]:
    rng = random.Random(3)
    sample = b"".join(rng.randbytes(MIB) if i % 10 < 3 else text_pool(MIB, rng) for i in range(64))
    rows = []
    for level in (1, 6):
        start = time.monotonic()
        out = zlib.compress(sample, level)
        rows.append((level, len(sample) / MIB / (time.monotonic() - start), len(sample) / len(out)))
    return rows


def _document(i: int, rng: random.Random, binary: type) -> dict[str, object]:
    return {
        "_id": i,
        "name": f"user {i}",
        "tags": rng.choices(WORDS, k=8),
        "n": {"a": i, "b": [rng.random() for _ in range(8)]},
        "blob": binary(rng.randbytes(256)),
        "text": " ".join(rng.choices(WORDS, k=60)),
    }


def bench_database(docs: int, work: Path) -> list[tuple[str, float, float, float]]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bson import Binary

    from tests.support.ferretdb import FerretDB

    rows: list[tuple[str, float, float, float]] = []
    with FerretDB() as server:
        client = server.client()
        rng = random.Random(5)
        batch = []
        for i in range(docs):
            batch.append(_document(i, rng, Binary))
            if len(batch) == 5000:
                client.bench.docs.insert_many(batch)
                batch = []
        if batch:
            client.bench.docs.insert_many(batch)
        uri = work / "uri"
        uri.write_text(server.uri)
        start = time.monotonic()
        raw = sum(len(b) for b in client.bench.docs.find_raw_batches({}, batch_size=10_000))
        raw_secs = time.monotonic() - start
        start = time.monotonic()
        count = sum(1 for _ in client.bench.docs.find({}, batch_size=10_000))
        find_secs = time.monotonic() - start
        assert count == docs
        mb = raw / MIB
        rows.append(("pymongo find() (decode to dicts)", mb, mb / find_secs, float("nan")))
        rows.append(("pymongo find_raw_batches()", mb, mb / raw_secs, float("nan")))
        for compression in ("none", "gzip", "zstd"):
            secs, rss = measure(
                [
                    *runner_argv(),
                    "database",
                    "--uri-file",
                    str(uri),
                    "--database",
                    "bench",
                    "--dest-root",
                    str(work / "db"),
                    "--prefix",
                    f"b/{compression}",
                    "--compression",
                    compression,
                    "--dumper",
                    "builtin",
                    "--termination-log",
                    "",
                ]
            )
            rows.append((f"runner database builtin {compression}", mb, mb / secs, rss))
        client.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="200,800", help="data sizes in MiB")
    parser.add_argument("--docs", type=int, default=200_000, help="documents for the db bench")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="runner-bench-", dir="/var/tmp"))
    try:
        print(f"cores: {os.cpu_count()}\n")
        print("zlib level  MB/s   ratio")
        for level, speed, ratio in bench_zlib_levels():
            print(f"{level:>10}  {speed:5.0f}  {ratio:5.2f}")
        print("\nfiles backup                 data MiB   MB/s   peak RSS MiB   output MiB")
        for size in (int(s) for s in args.sizes.split(",")):
            for name, mb, speed, rss, out in bench_files(size, work):
                print(f"{name:<28} {mb:>8}  {speed:6.1f}  {rss:>12.1f}  {out:>10.1f}")
        print("\ndatabase                          BSON MiB   MB/s   peak RSS MiB")
        for name, mb, speed, rss in bench_database(args.docs, work):
            print(f"{name:<33} {mb:>8.1f}  {speed:6.1f}  {rss:>12.1f}")
        print(json.dumps({"note": "figures from this run only"}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
