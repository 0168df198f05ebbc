"""A throwaway PostgreSQL server for tests and benchmarks: ``initdb`` in a temporary folder,
``pg_ctl`` on a free loopback port, password authentication over TCP.

PostgreSQL refuses to run as root, so when this process is root the server runs as the
``postgres`` system user (``runuser``), in a folder that user owns. A missing PostgreSQL fails
loudly: the tests that need it never skip.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "logkit"
PASSWORD = "s3cret-pw"
DATABASE = "logkit_test"


def bindir() -> Path:
    """Where initdb and pg_ctl are: $LOGKIT_PG_BINDIR, ``pg_config --bindir``, or Debian's."""
    candidates = []
    if os.environ.get("LOGKIT_PG_BINDIR"):
        candidates.append(Path(os.environ["LOGKIT_PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    raise RuntimeError(
        "PostgreSQL's initdb and pg_ctl were not found (tried $LOGKIT_PG_BINDIR, "
        "pg_config --bindir, /usr/lib/postgresql/*/bin): install PostgreSQL "
        "(apt-get install postgresql) to run the sink tests"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgServer:
    def __init__(self, *, durable: bool = False) -> None:
        self.bin = bindir()
        self.folder = Path(tempfile.mkdtemp(prefix="logkit-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.durable = durable
        self._as: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                user = pwd.getpwnam("nobody")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", user.pw_name, "--"]
        pwfile = self.folder / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self._as:
            os.chown(pwfile, pwd.getpwnam(self._as[2]).pw_uid, -1)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        )
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, DATABASE)

    def _run(self, tool: str, *args: str) -> None:
        env = dict(os.environ, PGPASSWORD=PASSWORD)
        out = subprocess.run(
            [*self._as, str(self.bin / tool), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.folder,
            check=False,
            timeout=60,
        )
        if out.returncode != 0:
            log = self.folder / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} failed ({out.returncode}): {out.stderr}{out.stdout}{tail}")

    def start(self) -> None:
        settings = [
            f"-c port={self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.folder}",
            "-c max_connections=40",
        ]
        if not self.durable:  # tests: the data need not survive a power loss
            settings += ["-c fsync=off", "-c full_page_writes=off"]
        log = str(self.folder / "log")
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            log,
            "-w",
            "-t",
            "60",
            "-o",
            " ".join(settings),
            "start",
        )

    def stop(self, mode: str = "immediate") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, table: str = "events", *, password: str = PASSWORD, db: str = DATABASE) -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{db}?table={table}"

    def dsn(self) -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{DATABASE}"

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):  # stopped already
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
