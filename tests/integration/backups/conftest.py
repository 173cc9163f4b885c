"""Fixtures for testing the operator: our CRDs applied, and operator processes to start.

Why it exists: the operator runs as a real ``backup-operator run`` subprocess (as it ships),
watching the test's namespaces. Processes started by a test are stopped after it, and their
logs are attached to the report when it fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import (
    _namespace_name,
    create_namespace,
    delete_namespace,
)
from tests.support.controlplane import ControlPlane
from tests.support.harness import failed_report
from tests.support.kube import Kube
from tests.support.operator import OperatorProcess
from tests.support.podplayer import PodPlayer

StartOperator = Callable[..., OperatorProcess]


@pytest.fixture
def start_operator(
    control_plane: ControlPlane, crds: None, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[StartOperator]:
    """``start_operator(namespaces, env=None)`` starts one more operator process."""
    started: list[OperatorProcess] = []

    def start(namespaces: list[str], env: dict[str, str] | None = None) -> OperatorProcess:
        log = tmp_path / f"operator-{len(started)}.log"
        process = OperatorProcess(control_plane.kubeconfig, namespaces, log, env)
        started.append(process)
        process.start()
        return process

    yield start
    for process in started:
        process.stop()
    report = failed_report(request.node)
    if report is not None:
        for index, process in enumerate(started):
            report.sections.append((f"operator {index} log (tail)", process.log()[-20000:]))


@pytest.fixture
def operator(start_operator: StartOperator, namespace: str) -> OperatorProcess:
    """One operator watching the test's namespace."""
    return start_operator([namespace])


@pytest.fixture
def make_namespace(
    control_plane: ControlPlane, kube: Kube, request: pytest.FixtureRequest
) -> Iterator[Callable[[], str]]:
    """Extra namespaces (restricted Pod Security), deleted after the test."""
    made: list[str] = []

    def make() -> str:
        name = _namespace_name(f"{request.node.name}-extra")
        create_namespace(kube, name)
        made.append(name)
        return name

    yield make
    for name in made:
        delete_namespace(kube, name)


@pytest.fixture
def make_pod_player(control_plane: ControlPlane) -> Iterator[Callable[[list[str]], PodPlayer]]:
    """A PodPlayer over several namespaces, stopped after the test."""
    players: list[PodPlayer] = []

    def make(namespaces: list[str]) -> PodPlayer:
        player = PodPlayer(control_plane.kubeconfig, namespaces)
        player.start()
        players.append(player)
        return player

    yield make
    for player in players:
        player.stop()
    errors = [e for p in players for e in p.errors]
    if errors:
        pytest.fail("PodPlayer errors:\n" + "\n".join(errors), pytrace=False)
