"""/metrics with several server processes, as production runs them: granian
with two worker processes sharing one multiprocess directory (Dockerfile)."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict

from conftest import subprocess_database_env
from tests.polling import poll
from tests.prometheus import scrape_url, value

pytestmark = pytest.mark.django_db(
    transaction=True, databases=["default", "orders", "catalog"]
)

ROOT = Path(__file__).resolve().parent.parent
RESPONSES = "django_http_responses_total_by_status_view_method"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
            return response.status == 200
    except OSError:
        return False


class Granian:
    def __init__(self, multiprocess_dir: Path, workers: int = 2):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        fd, log_path = tempfile.mkstemp(prefix="granian-", suffix=".log")
        os.close(fd)
        self.log_path = Path(log_path)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "PROMETHEUS_MULTIPROC_DIR": str(multiprocess_dir),
            **subprocess_database_env(),
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "granian"),
                    "--interface", "wsgi", "--host", "127.0.0.1",
                    "--port", str(self.port), "--workers", str(workers),
                    "--blocking-threads", "2", "--no-ws",
                    "config.wsgi:application",
                ],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_path.unlink(missing_ok=True)


@pytest.fixture
def granian(transactional_db, tmp_path):
    directory = tmp_path / "prometheus"
    directory.mkdir()  # empty, as the entrypoint leaves it
    server = Granian(directory)
    server.directory = directory
    try:
        poll(
            lambda: (
                server.process.poll() is not None
                # Not /health/live, whose answers the test counts.
                or answers(f"{server.url}/metrics")
            ),
            timeout=60,
            message="granian to answer",
        )
        assert server.process.poll() is None, server.output()
        yield server
    finally:
        server.stop()


def live_responses_by_process(directory: Path) -> dict[str, float]:
    """Each process's own count of 200s from /health/live, read from the
    files it wrote."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        total = 0.0
        for key, count, _timestamp, _pos in MmapedDict.read_all_values_from_file(
            str(path)
        ):
            metric, _sample, labels, _help = json.loads(key)
            if metric == RESPONSES and labels.get("view") == "health-live":
                total += count
        counts[path.stem.removeprefix("counter_")] = total
    return counts


def test_request_counts_are_summed_over_the_server_processes(granian):
    # New connections until both worker processes have answered some.
    sent = 0

    def both_answered():
        nonlocal sent
        assert answers(f"{granian.url}/health/live"), granian.output()
        sent += 1
        served = live_responses_by_process(granian.directory)
        return len([n for n in served.values() if n > 0]) >= 2

    poll(both_answered, timeout=60, interval=0, message="both workers to answer")
    assert sent < 1000

    # Whichever process answers the scrape reports every process's count.
    for _ in range(4):
        found = scrape_url(f"{granian.url}/metrics")
        total = value(
            found, f"{RESPONSES}_total", status="200", view="health-live", method="GET"
        )
        assert total == sent
    served = live_responses_by_process(granian.directory)
    assert sum(served.values()) == sent


def test_gauges_set_by_any_process_are_served_by_every_process(granian):
    assert answers(f"{granian.url}/health/ready"), granian.output()

    # Each of several scrapes may be answered by either process.
    for _ in range(4):
        found = scrape_url(f"{granian.url}/metrics")
        assert value(found, "shop_readiness_ok", check="database:orders") == 1
        assert value(found, "shop_readiness_ok", check="broker") == 1
