"""What every tier's fixtures share: skip-or-fail when a part is missing, and failed tests.

Why it exists: on a developer's machine a missing cluster or database skips the tests that
need it, with the reason; under ``CI=true`` it fails them, because CI must never pass by
skipping. And a fixture's teardown can only dump what a failed test left behind if it can
tell that the test failed (see the ``pytest_runtest_makereport`` hook in tests/conftest.py).
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(harness: str, reason: str) -> NoReturn:
    """Skip (a developer's machine without the parts) or fail (CI)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{harness} harness unavailable under CI=true: {reason}", pytrace=False)
    pytest.skip(f"{harness} harness unavailable: {reason}")


def failed_report(item: pytest.Item) -> pytest.TestReport | None:
    """The report of the test's failed setup or call, if it failed."""
    for when in ("call", "setup"):
        report = getattr(item, f"rep_{when}", None)
        if isinstance(report, pytest.TestReport) and report.failed:
            return report
    return None
