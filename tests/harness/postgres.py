"""A real, throw-away PostgreSQL server for the tests: ``initdb`` + ``pg_ctl`` in a temp dir.

The binaries come from the machine (``initdb`` on PATH, or ``/usr/lib/postgresql/*/bin``) or,
where it has none, from the ``pgserver`` wheel (a dev dependency that ships them). PostgreSQL
refuses to run as root, so under root the server runs as the ``postgres`` user (created if
missing) in a data dir that user owns. It listens on a free TCP port on 127.0.0.1 with trust
authentication, fsync off: a test server, never a production one.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

_SUPERUSER = "postgres"
_RUN_AS = "postgres"


def find_binaries() -> Path:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for directory in candidates:
        if all((directory / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return directory
    with contextlib.suppress(ImportError):
        import pgserver  # type: ignore[import-untyped]

        return Path(pgserver.__file__).parent / "pginstall" / "bin"
    raise RuntimeError("no PostgreSQL server binaries found (install postgresql or pgserver)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unprivileged_user() -> pwd.struct_passwd | None:
    """The user to run the server as when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(_RUN_AS)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", _RUN_AS], check=True)
        return pwd.getpwnam(_RUN_AS)


@dataclass
class PostgresServer:
    """A running server; ``url(db)`` addresses one of its databases."""

    port: int
    bin_dir: Path
    data_dir: Path
    user: pwd.struct_passwd | None
    options: str = ""

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{_SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "test") -> str:
        """A fresh, empty database; returns its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _run(self, *args: str) -> None:
        kwargs: dict[str, object] = {}
        if self.user is not None:
            kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid}
        subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]], check=True, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd="/", **kwargs,  # type: ignore[arg-type]
        )

    def start(self) -> None:
        """Starts the server on its port and data dir (again, after :meth:`stop`)."""
        log = self.data_dir.parent / "server.log"
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(log), "-o", self.options,
                  "-w", "-t", "60", "start")

    def stop(self, mode: str = "immediate") -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Starts a server for the length of the block, then stops it and deletes its files."""
    bin_dir = find_binaries()
    user = _unprivileged_user()
    root = Path(tempfile.mkdtemp(prefix="fortnox-bridge-pg-"))
    try:
        if user is not None:
            os.chown(root, user.pw_uid, user.pw_gid)
        data_dir = root / "data"
        server = PostgresServer(0, bin_dir, data_dir, user)
        server._run("initdb", "-D", str(data_dir), "-U", _SUPERUSER, "--auth=trust",
                    "--encoding=UTF8", "--locale=C", "--no-sync")
        for attempt in range(5):
            server.port = _free_port()
            server.options = (f"-p {server.port} -c listen_addresses=127.0.0.1 -k {root} "
                              "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                              "-c max_connections=300")
            try:
                server.start()
                break
            except subprocess.CalledProcessError:
                if attempt == 4:  # the port was taken between choosing and binding it
                    raise
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


_shared: list[PostgresServer] = []


def shared_server() -> PostgresServer:
    """The one server of this test process, started on first use and stopped at exit
    (for fixtures and helpers that cannot ask for the session fixture)."""
    if not _shared:
        context = running_postgres()
        _shared.append(context.__enter__())
        atexit.register(context.__exit__, None, None, None)
    return _shared[0]
