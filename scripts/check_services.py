"""Before the tests: name every service the suite needs that is not reachable."""

import socket
import sys

SERVICES = (
    # (name, host, port, how to start it on a Debian machine)
    (
        "PostgreSQL",
        "127.0.0.1",
        5432,
        "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    ),
    ("RabbitMQ", "127.0.0.1", 5672, "rabbitmq-server -detached"),
    (
        "Redis",
        "127.0.0.1",
        6379,
        'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ""',
    ),
)


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def main() -> int:
    missing = [s for s in SERVICES if not reachable(s[1], s[2])]
    for name, host, port, start in missing:
        print(f"{name} is not reachable at {host}:{port}. Start it: {start}")
    if missing:
        print("Or run the whole stack: docker compose -f deploy/docker-compose.yml up")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
