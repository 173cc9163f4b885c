"""Hand the result out: stdout (last line) and the container's termination log."""

import contextlib
import sys
from pathlib import Path

from backup_operator.runner.result import RunnerResult

DEFAULT_TERMINATION_LOG = "/dev/termination-log"


def emit(result: RunnerResult, termination_log: str | None) -> None:
    """Print the rendered result and write it to ``termination_log`` when writable.

    The default path is only written when it exists (the kubelet creates it in a pod), so
    running the runner by hand as root never litters ``/dev``.
    """
    message = result.render()
    if termination_log == DEFAULT_TERMINATION_LOG and not Path(termination_log).exists():
        termination_log = None
    if termination_log:
        # Not in a pod (no writable termination log): stdout alone carries the result.
        with contextlib.suppress(OSError):
            Path(termination_log).write_text(message, encoding="utf-8")
    sys.stdout.write(message + "\n")
    sys.stdout.flush()
