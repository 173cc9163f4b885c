"""A real MongoDB-wire server for tests: FerretDB with its SQLite backend.

Why it exists: no ``mongod`` is available here, and the operator's audit log (and the
backup Jobs) must talk to a real server speaking the MongoDB wire protocol, not a mock.
FerretDB v1.24 with SQLite needs nothing but a directory. ``stop()`` and ``start()`` keep
the port and the data, so a test can simulate an outage of MongoDB and its recovery.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from types import TracebackType

import pymongo
import pymongo.errors

from tests.support.processes import ComponentError, ManagedProcess, free_port
from tests.support.tools import tools
from tests.support.waiting import wait_for

START_TIMEOUT_SECONDS = 60.0


class FerretDB:
    """FerretDB on ``127.0.0.1:<free port>`` with data in a temporary directory.

    Use as a context manager (or call ``start()`` / ``close()``)::

        with FerretDB() as mongo:
            pymongo.MongoClient(mongo.uri).test.things.insert_one({"a": 1})
    """

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        binary: Path | None = None,
        port: int | None = None,
    ) -> None:
        self._own_workdir = workdir is None
        self.workdir = (
            Path(tempfile.mkdtemp(prefix="backup-operator-ferretdb-"))
            if workdir is None
            else workdir
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port if port is not None else free_port()
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / "ferretdb.log"
        self._binary = binary
        self._process: ManagedProcess | None = None
        #: Seconds the last ``start()`` took until the server answered ``ping``.
        self.startup_seconds: float | None = None

    @property
    def uri(self) -> str:
        """``mongodb://127.0.0.1:PORT/`` (no auth; FerretDB's SQLite backend has none)."""
        return f"mongodb://127.0.0.1:{self.port}/"

    @property
    def logs(self) -> dict[str, Path]:
        return {"ferretdb": self.log_path}

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    def client(self, **kwargs: object) -> pymongo.MongoClient[dict[str, object]]:
        """A new ``MongoClient`` for this server (close it when done)."""
        options: dict[str, object] = {"serverSelectionTimeoutMS": 5000}
        options.update(kwargs)
        return pymongo.MongoClient(self.uri, **options)  # type: ignore[arg-type]

    def start(self) -> None:
        """Start (or restart, same port and data) and wait until ``ping`` answers."""
        if self.running:
            return
        binary = self._binary if self._binary is not None else tools().ferretdb
        self.data_dir.mkdir(parents=True, exist_ok=True)
        state_dir = self.workdir / "state"
        state_dir.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FERRETDB_")}
        env["DO_NOT_TRACK"] = "1"
        self._process = ManagedProcess(
            "ferretdb",
            [
                binary,
                "--handler=sqlite",
                f"--sqlite-url=file:{self.data_dir}/",
                f"--listen-addr=127.0.0.1:{self.port}",
                f"--state-dir={state_dir}",
                "--debug-addr=-",
                "--telemetry=disable",
                "--log-level=INFO",
            ],
            self.log_path,
            env=env,
            cwd=self.workdir,
        )
        started = time.monotonic()
        self._process.start()
        try:
            wait_for(
                self._ping,
                START_TIMEOUT_SECONDS,
                f"FerretDB to answer ping on {self.uri}",
                interval=0.1,
                ignore=(pymongo.errors.PyMongoError,),
            )
        except (TimeoutError, ComponentError):
            self._process.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def _ping(self) -> bool:
        assert self._process is not None
        self._process.check_alive()
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            self.uri, serverSelectionTimeoutMS=500, connectTimeoutMS=500
        )
        try:
            client.admin.command("ping")
        finally:
            client.close()
        return True

    def stop(self) -> None:
        """Stop the server, keeping port and data for a later ``start()``."""
        if self._process is not None:
            self._process.stop()
            self._process = None

    def close(self) -> None:
        """Stop the server; delete the data (and the work dir when it was our own temp)."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> FerretDB:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
