"""Run the runner the way a Job does: as a separate process, through the real CLI."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@functools.cache
def runner_command() -> list[str]:
    """``backup-operator runner`` when the top-level CLI has it, else ``python -m``."""
    exe = shutil.which("backup-operator")
    if exe is not None:
        probe = subprocess.run([exe, "runner", "--help"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [exe, "runner"]
    return [sys.executable, "-m", "backup_operator.runner"]


@dataclass
class Run:
    """A finished runner process and its parsed result line."""

    code: int
    stdout: str
    stderr: str
    result: dict[str, Any]


def run_runner(*args: str | Path, prefix: list[str] | None = None, timeout: float = 300) -> Run:
    """Run one runner command; the result is the last stdout line."""
    argv = [*(prefix or []), *runner_command(), *(str(a) for a in args)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    return Run(proc.returncode, proc.stdout, proc.stderr, result)
