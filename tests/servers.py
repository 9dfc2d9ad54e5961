"""Real web server processes for tests: the production server (granian,
WSGI) on 127.0.0.1, on the test databases, each with its own settings.

Tests that need several deployments (two catalog instances and a gateway,
two gateways sharing Redis) start them here and kill them as an operator
or a crash would.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """One granian process serving config.wsgi on ``port``."""

    def __init__(self, env: dict[str, str], *, port: int | None = None,
                 name: str = "server", threads: int = 4,
                 workers: int = 1):  # fmt: skip
        self.name = name
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            **env,
        }
        self.threads = threads
        self.workers = workers
        # A file, not a pipe: nobody reads a pipe while the server runs.
        fd, log_path = tempfile.mkstemp(prefix=f"{name}-", suffix=".log")
        os.close(fd)
        self.log_path = Path(log_path)
        self.process: subprocess.Popen | None = None

    def start(self, *, wait: bool = True, ready_path: str = "/health/live"):
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "granian", "--interface", "wsgi",
                    "--host", "127.0.0.1", "--port", str(self.port),
                    "--workers", str(self.workers),
                    "--blocking-threads", str(self.threads),
                    "--no-ws", "--log-level", "warning",
                    "config.wsgi:application",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        if wait:
            self.wait_ready(path=ready_path)
        return self

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:  # closed already
            return ""

    def wait_ready(self, timeout: float = 60, path: str = "/health/live") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.output()}")
            try:
                if httpx.get(self.url + path, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer within {timeout} s")

    def kill(self) -> None:
        """Kill the server at once (SIGKILL, as a crash would)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> str:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.output()

    def close(self) -> None:
        self.stop()
        self.log_path.unlink(missing_ok=True)


class LoggedProcess:
    """A ``manage.py``-level process on the test databases, its output in a
    file (a busy process logs more than a pipe holds, and would block on
    its next write until someone read it)."""

    def __init__(self, argv: list[str], extra_env: dict[str, str], *, prefix: str):
        from conftest import subprocess_database_env

        fd, log_path = tempfile.mkstemp(prefix=prefix, suffix=".log")
        os.close(fd)
        self.log_path = Path(log_path)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            **subprocess_database_env(),
            **extra_env,
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        """What the process printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> str:
        """Stop it (SIGTERM, SIGKILL after 20 s); return what it printed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        output = self.output()
        self.log_path.unlink(missing_ok=True)
        return output


class RelayProcess(LoggedProcess):
    """``manage.py relay_outbox`` on the test databases and exchange; it
    stops between batches on SIGTERM."""

    def __init__(self, extra_env: dict[str, str]):
        super().__init__(
            [sys.executable, "manage.py", "relay_outbox"], extra_env, prefix="relay-"
        )
