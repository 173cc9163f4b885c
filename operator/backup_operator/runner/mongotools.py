"""Run the real ``mongodump``/``mongorestore`` when the image has them.

The URI reaches the tools only through a YAML ``--config`` file created with mode 0600 in
``$TMPDIR`` and removed afterwards: never argv (visible in ``ps``), never the environment.
The archive streams through stdout/stdin; stderr is kept (bounded) for error messages.
"""

import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import yaml

from backup_operator.runner.errors import Reason, RunnerError
from backup_operator.runner.redact import one_line, redact, secrets_of

READ_SIZE = 1 << 20
_DONE = re.compile(r"done dumping (\S+) \((\d+) documents?\)")


def find_tool(name: str) -> str | None:
    """Path of ``name`` on PATH, or None."""
    return shutil.which(name)


@contextmanager
def uri_config(uri: str) -> Iterator[Path]:
    """A private YAML config file ``uri: ...`` (mode 0600), deleted on exit."""
    directory = Path(tempfile.mkdtemp(prefix="runner-"))
    path = directory / "mongo-tools.yaml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yaml.safe_dump({"uri": uri}, handle)
        yield path
    finally:
        path.unlink(missing_ok=True)
        directory.rmdir()


def mongodump_argv(binary: str, config: Path, database: str | None) -> list[str]:
    """``mongodump --config=FILE --archive [--db=NAME]``: archive to stdout."""
    argv = [binary, f"--config={config}", "--archive"]
    if database:
        argv.append(f"--db={database}")
    return argv


def mongorestore_argv(
    binary: str,
    config: Path,
    *,
    database: str | None,
    to_database: str | None,
    drop: bool,
) -> list[str]:
    """``mongorestore --config=FILE --archive`` reading stdin, with namespace selection."""
    argv = [binary, f"--config={config}", "--archive"]
    if database:
        argv.append(f"--nsInclude={database}.*")
    if database and to_database:
        argv += [f"--nsFrom={database}.*", f"--nsTo={to_database}.*"]
    if drop:
        argv.append("--drop")
    return argv


class StderrTail:
    """Collects a process's stderr in a thread, keeping only the last lines."""

    def __init__(self, stream: IO[bytes], keep: int = 50) -> None:
        self.lines: deque[str] = deque(maxlen=keep)
        self.counts: dict[str, int] = {}
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[bytes]) -> None:
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip()
            self.lines.append(line)
            if match := _DONE.search(line):
                self.counts[match.group(1)] = int(match.group(2))

    def join(self) -> None:
        self._thread.join()


def failure_from_stderr(lines: list[str], uri: str, fallback: Reason) -> RunnerError:
    """Map a tool's stderr to a reason and one redacted line."""
    text = "\n".join(lines)
    lowered = text.lower()
    last = next((ln for ln in reversed(lines) if ln.strip()), "no output")
    message = one_line(redact(last, secrets_of(uri)))
    if "authentication failed" in lowered or "auth error" in lowered:
        return RunnerError("AuthenticationFailed", message)
    if "server selection" in lowered or "no reachable servers" in lowered:
        return RunnerError("SourceUnreachable", message)
    if "no space left" in lowered:
        return RunnerError("NoSpaceLeft", message)
    return RunnerError(fallback, message)


def start(argv: list[str], *, restore: bool = False) -> subprocess.Popen[bytes]:
    """Start a tool: a dump writes to our stdout pipe, a restore reads our stdin pipe."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR", "LANG", "TZ")}
    return subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if restore else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL if restore else subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
