"""A throw-away PostgreSQL server for the test session, from Debian's binaries.

The store tests run against SQLite and PostgreSQL (`db_url` in conftest.py). The server lives in a
temporary folder, listens only on a unix socket there (no port to collide with), trusts local
connections, and is stopped when the session ends. Each test gets a database of its own.

Its default collation is ICU en-US when the binaries support it, as on a typical production
server: sorting that silently depends on the collation shows up in the tests, not at a customer.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from itertools import count
from pathlib import Path

PORT = 5432  # only names the socket file: nothing listens on TCP


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def find_bin() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin that has initdb and pg_ctl."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")
             if Path(p).with_name("pg_ctl").exists()]
    return max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, default=None)


def _server_user() -> str | None:
    """initdb refuses to run as root: run the server as `postgres` (Debian's package creates it),
    else as `nobody`. None when we are not root and run it ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root, but neither a `postgres` nor a `nobody` user exists for initdb")


@dataclass
class Server:
    bindir: Path
    root: Path
    user: str | None

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = list(args)
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, cwd=self.root)

    def start(self) -> None:
        data = self.root / "data"
        base = [str(self.bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        icu = self._run(*base, "--locale=C.UTF-8", "--locale-provider=icu", "--icu-locale=en-US", check=False)
        if icu.returncode != 0:  # an older server or one built without ICU: a plain UTF8 cluster
            shutil.rmtree(data, ignore_errors=True)
            self._run(*base, "--locale=C.UTF-8")
        options = (f"-c listen_addresses='' -k {self.socket_dir} -p {PORT} -F "
                   "-c full_page_writes=off -c synchronous_commit=off -c max_connections=200")
        started = self._run(str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.root / "server.log"),
                            "-o", options, "-w", "-t", "60", "start", check=False)
        if started.returncode != 0:
            log = (self.root / "server.log").read_text(errors="replace")[-2000:] \
                if (self.root / "server.log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {started.stdout}{started.stderr}\n{log}")

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop",
                  check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}&port={PORT}"

    def admin(self, sql: str, database: str = "postgres") -> None:
        """Run one statement as the superuser (autocommit: CREATE DATABASE needs it)."""
        import psycopg

        with psycopg.connect(host=str(self.socket_dir), port=PORT, user="postgres", dbname=database,
                             autocommit=True) as conn:
            conn.execute(sql)


def start_server(bindir: Path) -> Server:
    user = _server_user()
    # Not under pytest's tmp folder: that is private to the current user, and the server user must
    # reach its data and socket directories. Short, too: a unix socket path has ~100 bytes at most.
    root = Path(tempfile.mkdtemp(prefix="pimtrail-pg-", dir="/tmp"))
    (root / "run").mkdir()
    if user is not None:
        record = pwd.getpwnam(user)
        for path in (root, root / "run"):
            os.chown(path, record.pw_uid, record.pw_gid)
    server = Server(bindir, root, user)
    try:
        server.start()
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return server


_names = count(1)


def new_database(server: Server) -> str:
    name = f"pimtrail_test_{os.getpid()}_{next(_names)}"
    server.admin(f'CREATE DATABASE "{name}"')
    return name


def drop_database(server: Server, name: str) -> None:
    server.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # FORCE: a test left a connection open
