"""Wait for a condition with a deadline, and say what was awaited when it times out.

Why it exists: tests and the harness must never sleep for a fixed time hoping something
happened. They poll a condition with a deadline instead; when the deadline passes, the
error names the condition and the last error seen, which is what a failure report needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    interval: float = 0.1,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``predicate`` until it returns a truthy value, and return that value.

    Exceptions of the types in ``ignore`` count as "not yet" (the last one is reported on
    timeout); any other exception propagates at once, so a predicate can fail fast (for
    example when the process it waits for has died).

    Raises:
        TimeoutError: when ``timeout`` seconds pass; the message names ``what``.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    last_value: object = None
    while True:
        try:
            value = predicate()
        except ignore as error:
            last_error = error
        else:
            if value:
                return value
            last_value = value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            detail = (
                f"; last error: {type(last_error).__name__}: {last_error}"
                if last_error is not None
                else f"; last value: {last_value!r}"
            )
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}{detail}")
        time.sleep(min(interval, remaining))
