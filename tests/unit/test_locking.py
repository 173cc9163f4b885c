"""The lock rules: takeover, renewal, queue order, and the Lease manifests written."""

from __future__ import annotations

import pytest

from backup_operator.locking import (
    Holder,
    HolderState,
    LeaseView,
    Waiter,
    is_expired,
    lease_manifest,
    may_take_over,
    needs_renewal,
    parse_lease,
    queue_position,
)
from tests.unit.factories import T0, at

ME = Holder(uid="u-me", kind="DatabaseBackup", namespace="shop", name="b", job_name="dbbackup-b-1")
OTHER = Holder(
    uid="u-2", kind="DatabaseBackup", namespace="shop", name="a", job_name="dbbackup-a-2"
)


def held(holder: Holder | None = OTHER, renewed: float = 0) -> LeaseView:
    return LeaseView("shop", "backup-lock-database", "7", holder, at(renewed), 300, 1)


def state(
    exists: bool = True, finished: bool = False, active: bool = False, job_finished: bool = False
) -> HolderState:
    return HolderState(exists, finished, active, job_finished)


@pytest.mark.parametrize(
    ("lease", "holder", "now", "allowed"),
    [
        (held(None), state(), 0, True),  # released
        (held(), state(job_finished=True), 0, True),  # holder's Job done
        (held(), state(active=True), 0, False),  # holder's Job runs
        (held(), state(exists=False, active=True), 9999, False),  # gone, Job still active
        (held(), state(exists=False), 0, True),  # holder gone, no Job
        (held(), state(finished=True), 0, True),  # holder finished, Job cleaned up
        (held(), state(), 100, False),  # holder about to create its Job
        (held(), state(), 301, True),  # ... but let the Lease expire
    ],
)
def test_takeover_rule(lease: LeaseView, holder: HolderState, now: float, allowed: bool) -> None:
    assert may_take_over(lease, holder, at(now)) is allowed


def test_expiry_and_renewal() -> None:
    lease = held(renewed=0)
    assert not is_expired(lease, at(300)) and is_expired(lease, at(301))
    assert not needs_renewal(lease, at(99)) and needs_renewal(lease, at(101))


def test_queue_is_oldest_first_then_name() -> None:
    waiters = [
        Waiter(at(5), "shop", "late", "u-late"),
        Waiter(at(0), "shop", "b", "u-b"),
        Waiter(at(0), "shop", "a", "u-a"),
    ]
    assert [queue_position(u, waiters) for u in ("u-a", "u-b", "u-late")] == [0, 1, 2]
    assert queue_position("u-absent", waiters) == 3


def test_acquire_manifest_round_trips() -> None:
    manifest = lease_manifest("shop", "backup-lock-database", ME, T0, previous=held())
    assert manifest["metadata"]["resourceVersion"] == "7"  # compare-and-swap
    assert manifest["spec"]["holderIdentity"] == "u-me"
    assert manifest["spec"]["leaseTransitions"] == 2
    manifest["metadata"]["resourceVersion"] = "8"
    view = parse_lease(manifest)
    assert view.holder == ME
    assert view.renew_time == T0


def test_create_and_release_manifests() -> None:
    created = lease_manifest("shop", "backup-lock-files", ME, T0)
    assert "resourceVersion" not in created["metadata"]
    released = lease_manifest("shop", "backup-lock-files", None, T0, previous=held(ME))
    assert released["spec"]["holderIdentity"] == ""
    assert parse_lease(released).holder is None


def test_renewal_keeps_transitions() -> None:
    renewed = lease_manifest("shop", "backup-lock-database", OTHER, at(120), previous=held())
    assert renewed["spec"]["leaseTransitions"] == 1
