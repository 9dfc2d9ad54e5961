"""/metrics with several server processes, as production runs them: granian
with two worker processes sharing one multiprocess directory (Dockerfile)."""

import json
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict

from conftest import subprocess_database_env
from tests.polling import poll
from tests.prometheus import scrape_url, value
from tests.servers import ServerProcess

pytestmark = pytest.mark.django_db(
    transaction=True, databases=["default", "orders", "catalog"]
)

ROOT = Path(__file__).resolve().parent.parent
RESPONSES = "django_http_responses_total_by_status_view_method"


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def granian(transactional_db, tmp_path):
    directory = tmp_path / "prometheus"
    directory.mkdir()  # empty, as the entrypoint leaves it
    server = ServerProcess(
        {**subprocess_database_env(), "PROMETHEUS_MULTIPROC_DIR": str(directory)},
        name="granian",
        workers=2,
        threads=2,
    )
    server.directory = directory
    try:
        # Not /health/live, whose answers the test counts.
        server.start(ready_path="/metrics")
        yield server
    finally:
        server.close()


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
