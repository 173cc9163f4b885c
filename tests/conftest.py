"""Hooks for every test tier."""

from __future__ import annotations

from collections.abc import Generator

import pytest


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item (``item.rep_setup`` / ``rep_call`` / ...), so
    fixtures can tell in their teardown whether the test failed (``harness.failed_report``)."""
    report: pytest.TestReport = yield
    setattr(item, f"rep_{report.when}", report)
    return report
