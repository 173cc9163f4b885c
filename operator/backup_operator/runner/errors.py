"""The one exception type of the runner, carrying the machine-readable failure reason.

Every failure that ends a run is raised as :class:`RunnerError`; the CLI turns it into the
termination message, so the reason vocabulary lives in one place.
"""

from typing import Literal

Reason = Literal[
    "SourceUnreachable",
    "AuthenticationFailed",
    "DumpFailed",
    "NoSpaceLeft",
    "UnreadableFiles",
    "SourceNotFound",
    "InvalidArguments",
    "ChecksumMismatch",
    "UnsafeArchive",
    "RestoreFailed",
    "DeleteFailed",
]


class RunnerError(Exception):
    """A failure with a reason the operator can act on and a one-line message."""

    def __init__(self, reason: Reason, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.message = message
        self.details = details or []
