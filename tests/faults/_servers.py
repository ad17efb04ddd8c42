"""Throwaway PostgreSQL and Redis servers that a test starts, pauses and kills itself.

The machine's shared PostgreSQL (5432) and Redis (6379) are never touched: each server here has
its own data folder, its own loopback port, runs as an unprivileged user (initdb refuses root;
as root the server runs as ``nobody``), and only the PIDs it started are ever signalled.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["OwnPostgres", "OwnRedis", "free_port", "have_postgres", "have_redis"]


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def have_postgres() -> bool:
    return shutil.which("initdb") is not None and shutil.which("pg_ctl") is not None


def have_redis() -> bool:
    return shutil.which("redis-server") is not None


def _which(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise RuntimeError(f"{program} is not installed")
    return path


def _wait_port(port: int, limit: float = 30.0) -> None:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {limit} s")


def _children(pid: int) -> list[int]:
    """The direct children of ``pid`` (PostgreSQL's backends and helpers), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


class OwnPostgres:
    """A PostgreSQL cluster in a temporary folder, on its own port, with database ``cs``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="cs-own-pg-"))
        self.data = self.dir / "data"
        self.pid: int | None = None
        self._user: pwd.struct_passwd | None = pwd.getpwnam("nobody") if os.geteuid() == 0 else None

    def _run(self, program: str, *args: str) -> None:
        user = {} if self._user is None else {"user": self._user.pw_uid, "group": self._user.pw_gid}
        subprocess.run(
            [_which(program), *args],
            check=True,
            capture_output=True,
            cwd=self.dir,
            timeout=120,
            **user,  # type: ignore[call-overload]
        )

    def start(self) -> OwnPostgres:
        if self._user is not None:
            os.chown(self.dir, self._user.pw_uid, self._user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._start_server()
        with self.connect("postgres") as conn:
            conn.execute("CREATE DATABASE cs")
        return self

    def _start_server(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        options += " -c log_connections=on"  # sessions opened: count them in the log
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"),
                  "-w", "-t", "60", "start")  # fmt: skip
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        _wait_port(self.port)

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        """The server shut down (immediate mode: sessions are cut) for the block, then started
        again on the same port and data: an outage, connections refused meanwhile."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        self.pid = None
        try:
            yield
        finally:
            self._start_server()

    def connect(self, dbname: str = "cs", **kwargs: Any) -> Any:
        """A psycopg connection (autocommit) to this server."""
        import psycopg

        kwargs.setdefault("connect_timeout", 10)
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, autocommit=True,
            **kwargs,
        )  # fmt: skip

    def log_size(self) -> int:
        return (self.dir / "log").stat().st_size

    def sessions_opened(self, since: int, dbname: str = "cs") -> int:
        """Sessions authorised on ``dbname`` after log offset ``since`` (see :meth:`log_size`)."""
        with (self.dir / "log").open("rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
        return sum(
            "connection authorized" in line and f"database={dbname}" in line
            for line in text.splitlines()
        )

    def pids(self) -> list[int]:
        """The postmaster and every process it started."""
        assert self.pid is not None
        return [self.pid, *_children(self.pid)]

    def pause(self, pids: list[int] | None = None) -> None:
        """SIGSTOP ``pids`` (default: the whole server): a hang, not an outage."""
        for pid in pids or self.pids():
            os.kill(pid, signal.SIGSTOP)

    def resume(self, pids: list[int] | None = None) -> None:
        for pid in pids or self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.pid is not None:
            pids = self.pids()
            self.resume(pids)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGQUIT)  # immediate shutdown of the whole server
            started = time.monotonic()
            while time.monotonic() - started < 20 and any(_alive(p) for p in pids):
                time.sleep(0.05)
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.pid = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> OwnPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie (not reaped by us) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False


class OwnRedis:
    """A redis-server on its own port, without persistence."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> OwnRedis:
        self.process = subprocess.Popen(
            [_which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_port(self.port)
        return self

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGCONT)
                self.process.kill()
            self.process.wait(20)
            self.process = None

    def __enter__(self) -> OwnRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def paused(server: OwnPostgres | OwnRedis) -> Iterator[None]:
    """The server stopped with SIGSTOP for the duration of the block, then continued."""
    server.pause()
    try:
        yield
    finally:
        server.resume()
