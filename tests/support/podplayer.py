"""PodPlayer: a test helper that plays the node's part for Job pods.

Why it exists: the test control plane has no scheduler and no kubelet, so pods created by
the (real) Job controller would stay Pending forever. PodPlayer does, through the API,
what a scheduler and a kubelet would: it binds each new Job pod to a fake Node, reports
it Running, then Succeeded or Failed with the container's termination message, as the
test decides. Everything after that is real: the Job controller counts the pod, honours
backoffLimit and activeDeadlineSeconds, removes its ``batch.kubernetes.io/job-tracking``
finalizer (PodPlayer never touches it) and sets the Job's conditions.

When a running pod is deleted (Job deleted, deadline exceeded), PodPlayer acts like a
kubelet killing it: the container ends with exit code 137, the pod goes Failed, and the
pod is then deleted with grace period 0 (the Job controller's finalizer still applies).

Each pod's running interval is recorded (monotonic and wall-clock times), so a test can
check, for example, that two backups never ran at the same time.
"""

from __future__ import annotations

import copy
import datetime
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.kube import ApiException, Kube, resource_path
from tests.support.waiting import wait_for

log = logging.getLogger(__name__)

JSONDict = dict[str, Any]
DEFAULT_NODE_NAME = "podplayer-node"
#: Key added to the pod dict handed to ``outcome``: job name, owner, attempt number.
CONTEXT_KEY = "podPlayer"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
#: Exit code of a container killed by SIGKILL, as a kubelet reports it.
KILLED_EXIT_CODE = 137


@dataclass(frozen=True)
class PodOutcome:
    """How a pod's (only, or first) container ends.

    ``message`` is the termination message (what the container wrote to
    ``/dev/termination-log``); ``delay_seconds`` is how long the pod runs first.
    """

    exit_code: int = 0
    message: str = ""
    delay_seconds: float = 0.0


Outcome = Callable[[JSONDict], PodOutcome]


def success_message(namespace: str, owner_name: str) -> str:
    """The JSON result a successful backup container reports (see DESIGN.md)."""
    return json.dumps(
        {
            "ok": True,
            "path": f"{namespace}/{owner_name}/x",
            "sizeBytes": 1,
            "sha256": "0" * 64,
            "compression": "gzip",
            "durationSeconds": 0.1,
            "counts": {},
            "warnings": [],
        }
    )


def default_outcome(pod: JSONDict) -> PodOutcome:
    """Exit 0 with a successful backup result naming the Job's owner (the backup CR)."""
    context = pod.get(CONTEXT_KEY, {})
    owner = context.get("ownerName") or context.get("jobName") or pod["metadata"]["name"]
    return PodOutcome(0, success_message(pod["metadata"]["namespace"], owner))


def held_until(release: threading.Event, timeout: float = 120) -> Outcome:
    """An outcome: the pod runs until ``release`` is set, then succeeds (``default_outcome``)."""

    def outcome(pod: JSONDict) -> PodOutcome:
        release.wait(timeout)
        return default_outcome(pod)

    return outcome


@dataclass
class PodRun:
    """One pod played by PodPlayer, from Running to its end (``end_*`` None while running)."""

    namespace: str
    name: str
    uid: str
    job_name: str
    owner_kind: str | None
    owner_name: str | None
    attempt: int
    start_monotonic: float
    start_wall: float
    end_monotonic: float | None = None
    end_wall: float | None = None
    exit_code: int | None = None
    message: str = ""
    killed: bool = False

    @property
    def finished(self) -> bool:
        return self.end_monotonic is not None

    @property
    def phase(self) -> str:
        if not self.finished:
            return "Running"
        return "Succeeded" if self.exit_code == 0 else "Failed"

    def overlaps(self, other: PodRun) -> bool:
        """True when both pods were Running at some same instant (open runs: until now)."""
        now = time.monotonic()
        self_end = self.end_monotonic if self.end_monotonic is not None else now
        other_end = other.end_monotonic if other.end_monotonic is not None else now
        return self.start_monotonic < other_end and other.start_monotonic < self_end


def overlapping_pairs(runs: Iterable[PodRun]) -> list[tuple[PodRun, PodRun]]:
    """All pairs of runs that were Running at the same time."""
    ordered = list(runs)
    return [(a, b) for i, a in enumerate(ordered) for b in ordered[i + 1 :] if a.overlaps(b)]


@dataclass
class _PodState:
    interrupt: threading.Event = field(default_factory=threading.Event)
    deleted: bool = False


def _now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PodPlayer:
    """Plays scheduler + kubelet for pods created by Jobs in ``namespaces``.

    ``outcome(pod) -> PodOutcome`` decides how each pod ends. It is called (in the pod's
    own thread) once the pod is Running and recorded in ``runs``; it may block, the
    container "runs" meanwhile, and then for ``delay_seconds``. The pod dict is the pod
    as the API served it plus ``pod["podPlayer"]`` = ``{"jobName", "ownerKind",
    "ownerName", "attempt"}`` (the Job's controller owner, e.g. the backup CR; attempt
    counts this Job's pods from 1). Change ``player.outcome`` at any time; it applies to
    pods that start afterwards. Errors in the player's threads are collected in
    ``errors``; the ``pod_player`` fixture fails the test when there are any.
    """

    def __init__(
        self,
        kubeconfig: Path | str,
        namespaces: Sequence[str],
        outcome: Outcome | None = None,
        *,
        node_name: str = DEFAULT_NODE_NAME,
    ) -> None:
        self.kube = Kube(kubeconfig)
        self.namespaces = list(namespaces)
        self.outcome: Outcome = outcome or default_outcome
        self.node_name = node_name
        self.errors: list[str] = []
        self._runs: list[PodRun] = []
        self._states: dict[str, _PodState] = {}
        self._attempts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._responses: list[Any] = []
        self._watch_ready: dict[str, threading.Event] = {}

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Register the Node and start watching; returns once every watch is open."""
        self.ensure_node()
        for namespace in self.namespaces:
            ready = threading.Event()
            self._watch_ready[namespace] = ready
            thread = threading.Thread(
                target=self._watch_loop,
                args=(namespace,),
                name=f"podplayer-watch-{namespace}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()
        for namespace, ready in self._watch_ready.items():
            wait_for(ready.is_set, 30, f"PodPlayer's watch of pods in {namespace} to open")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop watching and playing; pods still Running are left as they are."""
        self._stopping.set()
        with self._lock:
            for state in self._states.values():
                state.interrupt.set()
            responses = list(self._responses)
        for response in responses:
            try:
                response.response.shutdown()
            except Exception:  # best effort, the thread ends anyway
                log.debug("closing a watch failed", exc_info=True)
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.kube.close()

    def __enter__(self) -> PodPlayer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- results

    @property
    def runs(self) -> list[PodRun]:
        """A snapshot of every pod played so far, in start order."""
        with self._lock:
            return [copy.copy(run) for run in self._runs]

    def wait_for_runs(
        self, count: int, timeout: float = 60.0, *, finished: bool = True
    ) -> list[PodRun]:
        """Wait until ``count`` pods were played (and, by default, have ended).

        "Ended" is recorded just before the pod's final status is sent: to see its effects
        through the API (pod phase, Job conditions), wait on the API itself.
        """

        def enough() -> list[PodRun] | None:
            runs = [run for run in self.runs if run.finished or not finished]
            return runs if len(runs) >= count else None

        state = "finished " if finished else ""
        return wait_for(enough, timeout, f"{count} {state}pod run(s) in PodPlayer")

    # ----------------------------------------------------------------- the node

    def ensure_node(self) -> None:
        """Create the fake Node (once per cluster) and mark it Ready.

        Pods are bound to it; the pod GC controller would delete pods bound to a Node
        that does not exist.
        """
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node_name,
                "labels": {
                    "kubernetes.io/hostname": self.node_name,
                    "kubernetes.io/os": "linux",
                    "backup.operator.dev/podplayer": "true",
                },
            },
        }
        try:
            self.kube.create(resource_path("v1", "nodes"), node)
        except ApiException as error:
            if error.status != 409:
                raise
        now = _now_rfc3339()
        status = {
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "PodPlayer",
                        "message": "pods here are played by the test harness",
                        "lastHeartbeatTime": now,
                        "lastTransitionTime": now,
                    }
                ],
                "capacity": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
                "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            }
        }
        self.kube.patch(resource_path("v1", "nodes", name=self.node_name) + "/status", status)

    # ----------------------------------------------------------------- watching

    def _watch_loop(self, namespace: str) -> None:
        path = resource_path("v1", "pods", namespace)
        resource_version: str | None = None
        while not self._stopping.is_set():
            try:
                if resource_version is None:
                    listing = self.kube.get(path)
                    resource_version = listing["metadata"]["resourceVersion"]
                    for pod in listing.get("items", []):
                        self._on_event("ADDED", pod)
                self._watch_ready[namespace].set()
                for event in self.kube.watch(
                    path,
                    resource_version=resource_version,
                    timeout_seconds=60,
                    responses=self._responses,
                ):
                    if self._stopping.is_set():
                        return
                    kind, obj = event["type"], event["object"]
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            resource_version = None  # expired: list again
                        else:
                            self._error(f"watch of pods in {namespace}: {obj}")
                        break
                    resource_version = obj["metadata"]["resourceVersion"]
                    if kind != "BOOKMARK":
                        self._on_event(kind, obj)
            except Exception as error:  # report, back off, watch again
                if self._stopping.is_set():
                    return
                if isinstance(error, ApiException) and error.status == 410:
                    resource_version = None
                else:
                    log.warning("PodPlayer watch of %s failed: %s", namespace, error)
                self._stopping.wait(0.5)  # back off; returns at once when stopping
            finally:
                with self._lock:
                    self._responses[:] = [r for r in self._responses if not r.response.closed]

    def _on_event(self, kind: str, pod: JSONDict) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        with self._lock:
            state = self._states.get(uid)
            if state is not None:
                if kind == "DELETED" or meta.get("deletionTimestamp"):
                    state.deleted = True
                    state.interrupt.set()
                return
            if not self._is_new_job_pod(kind, pod):
                return
            state = _PodState()
            self._states[uid] = state
        thread = threading.Thread(
            target=self._play,
            args=(pod, state),
            name=f"podplayer-{meta['namespace']}-{meta['name']}",
            daemon=True,
        )
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _is_new_job_pod(self, kind: str, pod: JSONDict) -> bool:
        meta = pod["metadata"]
        owned_by_job = any(
            ref.get("kind") == "Job" and ref.get("controller")
            for ref in meta.get("ownerReferences", [])
        )
        return (
            kind in ("ADDED", "MODIFIED")
            and owned_by_job
            and not meta.get("deletionTimestamp")
            and not pod.get("spec", {}).get("nodeName")
            and pod.get("status", {}).get("phase", "Pending") == "Pending"
        )

    # ----------------------------------------------------------------- playing a pod

    def _play(self, pod: JSONDict, state: _PodState) -> None:
        meta = pod["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        pod_path = resource_path("v1", "pods", namespace, name)
        try:
            try:
                self._bind(namespace, name)
            except ApiException as error:
                if error.status == 409:
                    return  # already bound elsewhere, or being deleted: not ours to play
                raise
            context = self._context(pod)
            now = _now_rfc3339()
            # Times are taken before each status report, as a kubelet reports what already
            # happened: an interval ends before anyone can see the pod finished, so a pod
            # started in reaction to that is never counted as overlapping.
            start_monotonic, start_wall = time.monotonic(), time.time()
            self.kube.patch(pod_path + "/status", _running_status(pod, now))
            run = PodRun(
                namespace=namespace,
                name=name,
                uid=meta["uid"],
                job_name=context["jobName"],
                owner_kind=context["ownerKind"],
                owner_name=context["ownerName"],
                attempt=context["attempt"],
                start_monotonic=start_monotonic,
                start_wall=start_wall,
            )
            with self._lock:
                self._runs.append(run)
            # The container runs while the outcome callable runs (it may block, e.g. until
            # the test releases it) and then for delay_seconds.
            outcome = self._decide(pod, context)
            state.interrupt.wait(outcome.delay_seconds)
            if state.deleted:
                outcome = PodOutcome(KILLED_EXIT_CODE, "", 0)
            elif self._stopping.is_set():
                return  # the node goes away with the player; the pod stays Running
            with self._lock:
                run.end_monotonic = time.monotonic()
                run.end_wall = time.time()
                run.exit_code = outcome.exit_code
                run.message = outcome.message
                run.killed = state.deleted
            self.kube.patch(
                pod_path + "/status", _terminated_status(pod, outcome, now, _now_rfc3339())
            )
            if state.deleted:
                # What a kubelet does once the containers are gone: the final delete.
                self.kube.delete(pod_path, gracePeriodSeconds=0)
        except ApiException as error:
            if error.status == 404:
                return  # the pod is gone: nothing left to play
            self._error(f"pod {namespace}/{name}: {error.status} {error.reason}: {error.body}")
        except Exception as error:  # a thread: report, never crash silently
            self._error(f"pod {namespace}/{name}: {type(error).__name__}: {error}")

    def _bind(self, namespace: str, name: str) -> None:
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        self.kube.create(resource_path("v1", "pods", namespace, name) + "/binding", binding)

    def _context(self, pod: JSONDict) -> dict[str, Any]:
        meta = pod["metadata"]
        job_ref = next(ref for ref in meta.get("ownerReferences", []) if ref.get("kind") == "Job")
        job_name = job_ref["name"]
        owner_kind = owner_name = None
        job = self.kube.get_or_none(resource_path("batch/v1", "jobs", meta["namespace"], job_name))
        if job is not None:
            owner = next(
                (
                    ref
                    for ref in job["metadata"].get("ownerReferences", [])
                    if ref.get("controller")
                ),
                None,
            ) or next(iter(job["metadata"].get("ownerReferences", [])), None)
            if owner is not None:
                owner_kind, owner_name = owner.get("kind"), owner.get("name")
        with self._lock:
            key = (meta["namespace"], job_ref["uid"])
            self._attempts[key] = self._attempts.get(key, 0) + 1
            attempt = self._attempts[key]
        return {
            "jobName": job_name,
            "ownerKind": owner_kind,
            "ownerName": owner_name,
            "attempt": attempt,
        }

    def _decide(self, pod: JSONDict, context: dict[str, Any]) -> PodOutcome:
        view = copy.deepcopy(pod)
        view[CONTEXT_KEY] = dict(context)
        try:
            return self.outcome(view)
        except Exception as error:  # the test's callable failed
            message = f"PodPlayer outcome callable raised {type(error).__name__}: {error}"
            self._error(message)
            return PodOutcome(1, message)

    def _error(self, message: str) -> None:
        log.error("PodPlayer: %s", message)
        with self._lock:
            self.errors.append(message)


def _container_names(pod: JSONDict, key: str) -> list[tuple[str, str]]:
    return [(c["name"], c.get("image", "")) for c in pod.get("spec", {}).get(key, [])]


def _running_status(pod: JSONDict, now: str) -> JSONDict:
    init = [
        {
            "name": name,
            "image": image,
            "imageID": "",
            "ready": True,
            "restartCount": 0,
            "started": False,
            "state": {
                "terminated": {
                    "exitCode": 0,
                    "reason": "Completed",
                    "startedAt": now,
                    "finishedAt": now,
                }
            },
        }
        for name, image in _container_names(pod, "initContainers")
    ]
    containers = [
        {
            "name": name,
            "image": image,
            "imageID": "",
            "ready": True,
            "restartCount": 0,
            "started": True,
            "state": {"running": {"startedAt": now}},
        }
        for name, image in _container_names(pod, "containers")
    ]
    status: JSONDict = {
        "phase": "Running",
        "startTime": now,
        "hostIP": "127.0.0.1",
        "conditions": [
            {"type": t, "status": "True", "lastTransitionTime": now}
            for t in ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")
        ],
        "containerStatuses": containers,
    }
    if init:
        status["initContainerStatuses"] = init
    return {"status": status}


def _terminated_status(pod: JSONDict, outcome: PodOutcome, started: str, now: str) -> JSONDict:
    containers = []
    for index, (name, image) in enumerate(_container_names(pod, "containers")):
        exit_code = outcome.exit_code if index == 0 else 0
        message = outcome.message if index == 0 else ""
        terminated: JSONDict = {
            "exitCode": exit_code,
            "reason": "Completed" if exit_code == 0 else "Error",
            "startedAt": started,
            "finishedAt": now,
        }
        if message:
            terminated["message"] = message
        containers.append(
            {
                "name": name,
                "image": image,
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "started": False,
                # Strategic merge merges the state struct: drop "running" explicitly.
                "state": {"running": None, "terminated": terminated},
            }
        )
    phase = "Succeeded" if outcome.exit_code == 0 else "Failed"
    return {
        "status": {
            "phase": phase,
            "conditions": [
                {
                    "type": t,
                    "status": "False",
                    "reason": "PodCompleted" if phase == "Succeeded" else "PodFailed",
                    "lastTransitionTime": now,
                }
                for t in ("ContainersReady", "Ready")
            ],
            "containerStatuses": containers,
        }
    }
