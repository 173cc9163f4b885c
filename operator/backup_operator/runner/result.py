"""The runner's result: the container termination message the operator reads.

The Job needs no Kubernetes permissions because its outcome travels in the termination
message, which the kubelet cuts at 4096 bytes. This module owns that JSON contract on both
sides: the runner renders it (shrinking lists to fit) and the operator parses it with
:func:`parse_termination_message`, which never raises.
"""

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

MAX_MESSAGE_BYTES = 4095
MAX_ITEM_CHARS = 300
MAX_ERROR_CHARS = 1000


class RunnerResult(BaseModel):
    """Outcome of one runner command (success fields or failure fields are set)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    ok: bool
    path: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    compression: str | None = None
    duration_seconds: float | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    warnings_dropped: int = 0
    reason: str | None = None
    error: str | None = None
    details: list[str] = Field(default_factory=list)
    details_dropped: int = 0

    @classmethod
    def failure(cls, reason: str, error: str, details: list[str] | None = None) -> "RunnerResult":
        """A failed run with a CamelCase reason and a one-line error."""
        return cls(ok=False, reason=reason, error=error, details=details or [])

    def to_json(self) -> str:
        """Compact JSON, camelCase, without empty optional fields."""
        data = self.model_dump(by_alias=True, exclude_none=True)
        for key in ("warnings", "details", "counts"):
            if not data.get(key):
                data.pop(key, None)
        for key in ("warningsDropped", "detailsDropped"):
            if not data.get(key):
                data.pop(key, None)
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    def render(self, limit: int = MAX_MESSAGE_BYTES) -> str:
        """JSON that fits in ``limit`` UTF-8 bytes; lists are cut and the cut counted."""
        result = self._clipped()
        while _size(result) > limit and (result.warnings or result.details):
            result = _drop_half(result)
        if _size(result) > limit and result.error:
            result = result.model_copy(update={"error": result.error[: limit // 4] + "..."})
        return result.to_json()

    def _clipped(self) -> "RunnerResult":
        error = self.error
        if error is not None and len(error) > MAX_ERROR_CHARS:
            error = error[: MAX_ERROR_CHARS - 3] + "..."
        return self.model_copy(
            update={
                "error": error,
                "warnings": [_clip(w) for w in self.warnings],
                "details": [_clip(d) for d in self.details],
            }
        )


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ITEM_CHARS else text[: MAX_ITEM_CHARS - 3] + "..."


def _size(result: RunnerResult) -> int:
    return len(result.to_json().encode())


def _drop_half(result: RunnerResult) -> RunnerResult:
    """Drop the second half of the longer list (at least one item), counting the drop."""
    name = "warnings" if len(result.warnings) >= len(result.details) else "details"
    items: list[str] = getattr(result, name)
    keep = len(items) // 2
    dropped = getattr(result, f"{name}_dropped") + len(items) - keep
    return result.model_copy(update={name: items[:keep], f"{name}_dropped": dropped})


def parse_termination_message(text: str | bytes | None) -> RunnerResult:
    """The result in a termination message; a failure ``InvalidTerminationMessage`` on garbage."""
    try:
        raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else (text or "")
        data: Any = json.loads(_last_json_line(raw))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return RunnerResult.model_validate(data)
    except (ValueError, ValidationError, TypeError, RecursionError) as exc:
        snippet = " ".join(str(text)[:200].split()) if text else "empty"
        return RunnerResult.failure(
            "InvalidTerminationMessage",
            f"unreadable termination message ({exc.__class__.__name__}): {snippet}",
        )


def _last_json_line(text: str) -> str:
    """The message itself, or the last line starting with ``{`` when there are several."""
    stripped = text.strip()
    if "\n" not in stripped:
        return stripped
    lines = [line for line in stripped.splitlines() if line.lstrip().startswith("{")]
    return lines[-1] if lines else stripped
