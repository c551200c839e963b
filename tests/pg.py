"""A private PostgreSQL server for the tests that need one (broker store, broker replicas).

PostgreSQL comes from ``scripts/install-system-deps.sh`` (Debian package ``postgresql``); without it the tests
that need it skip (or fail under ``CI=true``) through :func:`tests.conftest.missing_component`. The fixtures are
registered for the whole suite in tests/conftest.py, so every test directory shares one server per session.

The server runs from a fresh ``initdb`` in a temporary directory, listening on 127.0.0.1 on a free port and on a
Unix socket in that directory, with trust authentication (loopback only) and fsync off (the tests kill clients,
never the server). PostgreSQL refuses to run as root, so under root it runs as the ``postgres`` system user.
Set ``CCDEPLOY_TEST_POSTGRES_URL`` to use an existing server instead (its user needs CREATEDB).
"""

from __future__ import annotations

import glob
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
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.conftest import missing_component

__all__ = ["PostgresServer", "postgresql", "postgresql_url"]

_INSTALL = "sudo apt-get install postgresql  (or run scripts/install-system-deps.sh as root)"
_NO_PSYCOPG = "psycopg is not installed (pip install 'ccdeploy[postgres]')"
_TOOLS = ("initdb", "pg_ctl", "postgres")
_SUPERUSER = "postgres"


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL server private to this test session."""

    url: str
    """URL of the session's default database (``ccdeploy``), as superuser over TCP on loopback."""

    def database_url(self, name: str) -> str:
        """The URL of database ``name`` on this server."""
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path="/" + name))

    def new_database(self, prefix: str = "t") -> str:
        """Create an empty database with a unique name and return its URL (for tests that need a clean slate)."""
        psycopg = pytest.importorskip("psycopg", reason=_NO_PSYCOPG)
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.database_url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)


def _find_bindir() -> Path | None:
    """A directory holding initdb, pg_ctl and postgres: PATH first, then Debian's versioned directories."""
    candidates: list[Path] = []
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).resolve().parent)
    versioned = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += [
        Path(p)
        for p in sorted(
            versioned, key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0, reverse=True
        )
    ]
    candidates += [Path("/usr/local/pgsql/bin"), Path("/opt/homebrew/bin")]
    for directory in candidates:
        if all((directory / tool).is_file() and os.access(directory / tool, os.X_OK) for tool in _TOOLS):
            return directory
    return None


def _as_server_user() -> tuple[list[str], pwd.struct_passwd | None]:
    """The command prefix that runs a program as the server's user (``postgres`` under root, else ourselves)."""
    if os.geteuid() != 0:
        return [], None
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        missing_component("the 'postgres' system user (needed to run PostgreSQL under root)", _INSTALL)
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", user.pw_name, "--"], user
    setpriv = shutil.which("setpriv")
    if setpriv:
        return [setpriv, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--"], user
    missing_component(
        "runuser or setpriv (util-linux), to run PostgreSQL as the postgres user", "apt-get install util-linux"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd="/", check=False, timeout=120)


def _start(bindir: Path, prefix: list[str], root: Path) -> int:
    """Start the server on a free port (retrying if the port was taken meanwhile); returns the port."""
    data, log = root / "data", root / "server.log"
    error = ""
    for _ in range(3):
        port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root}"
            " -c fsync=off -c full_page_writes=off -c synchronous_commit=on -c max_connections=200"
        )
        started = _run(
            [*prefix, str(bindir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(data), "-l", str(log), "-o", options]
        )
        if started.returncode == 0:
            return port
        error = started.stderr + (log.read_text(errors="replace")[-2000:] if log.exists() else "")
    pytest.fail(f"PostgreSQL did not start: {error}", pytrace=False)


@pytest.fixture(scope="session")
def postgresql() -> Iterator[PostgresServer]:
    """A running PostgreSQL server with an empty ``ccdeploy`` database, stopped at the end of the session."""
    psycopg = pytest.importorskip("psycopg", reason=_NO_PSYCOPG)
    external = os.environ.get("CCDEPLOY_TEST_POSTGRES_URL")
    if external:
        yield PostgresServer(external)
        return
    bindir = _find_bindir()
    if bindir is None:
        missing_component("PostgreSQL (initdb, pg_ctl, postgres)", _INSTALL)
    prefix, user = _as_server_user()
    # Not under pytest's basetemp: that is private to root, and the server user must reach its directory.
    root = Path(tempfile.mkdtemp(prefix="ccdeploy-pg-"))
    try:
        if user is not None:
            os.chown(root, user.pw_uid, user.pw_gid)
        init = _run(
            [*prefix, str(bindir / "initdb"), "-D", str(root / "data"), "-U", _SUPERUSER, "--auth=trust",
             "--no-sync", "--no-instructions", "--locale=C", "-E", "UTF8"]
        )  # fmt: skip
        if init.returncode != 0:
            pytest.fail(f"initdb failed: {init.stderr.strip()}", pytrace=False)
        port = _start(bindir, prefix, root)
        try:
            server = PostgresServer(f"postgresql://{_SUPERUSER}@127.0.0.1:{port}/ccdeploy")
            with psycopg.connect(server.database_url("postgres"), autocommit=True) as conn:
                conn.execute("CREATE DATABASE ccdeploy")
            yield server
        finally:
            _run([*prefix, str(bindir / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(root / "data")])
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgresql_url(postgresql: PostgresServer) -> str:
    """The URL of the session server's ``ccdeploy`` database (shared by every test: use unique names in it)."""
    return postgresql.url
