"""The proxy of a remote context's public routes, against a real upstream
HTTP server on 127.0.0.1 that records what it received."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.servers import free_port


class Upstream:
    """An HTTP server whose answers the test sets, recording each request."""

    def __init__(self):
        self.requests: list[dict] = []
        self.status = 200
        self.chunks = [b'{"id": "tea",', b' "stock": 7}']
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                if self.path == "/health/ready":  # the balancer's probes
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                upstream.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": self.rfile.read(length) if length else b"",
                    }
                )
                self.send_response(upstream.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Connection", "keep-alive, X-Hop")
                self.send_header("X-Hop", "for this hop only")
                self.send_header("Keep-Alive", "timeout=5")
                self.send_header("X-Upstream", "catalog")
                self.end_headers()
                for chunk in upstream.chunks:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream(settings):
    server = Upstream()
    settings.CONTEXTS = {
        **settings.CONTEXTS,
        "products": {"mode": "remote", "instances": [server.url]},
    }
    settings.RESILIENCE_RETRY_DELAYS_MS = [1, 2, 4]
    settings.CIRCUIT_BREAKER_FAIL_MAX = 1000
    yield server
    server.close()


def _content(response) -> bytes:
    return b"".join(response.streaming_content)


def test_the_request_goes_on_without_hop_by_hop_headers(client, upstream):
    response = client.get(
        "/api/v1/products/tea?fields=stock",
        headers={
            "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "not for the next hop",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "Tracestate": "vendor=1",
            "X-Request-ID": "req-123",
            "Authorization": "Bearer abc",
        },
        REMOTE_ADDR="203.0.113.9",
    )

    assert response.status_code == 200
    assert json.loads(_content(response)) == {"id": "tea", "stock": 7}
    [seen] = upstream.requests
    assert seen["path"] == "/api/v1/products/tea?fields=stock"
    headers = seen["headers"]
    for hop in ("x-secret-hop", "keep-alive", "te"):
        assert hop not in headers
    assert headers["x-forwarded-for"] == "203.0.113.9"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == "testserver"
    assert headers["x-request-id"] == "req-123"
    assert headers["traceparent"].split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert headers["tracestate"] == "vendor=1"
    assert headers["authorization"] == "Bearer abc"


def test_the_answer_comes_back_streamed_without_hop_by_hop_headers(client, upstream):
    upstream.chunks = [b"[", b"1,", b"2", b"]"]

    response = client.get("/api/v1/products")

    assert response.streaming
    assert _content(response) == b"[1,2]"
    assert response["X-Upstream"] == "catalog"
    assert response["X-Request-ID"]
    for hop in ("X-Hop", "Keep-Alive", "Transfer-Encoding"):
        assert not response.has_header(hop)


def test_an_earlier_proxy_is_kept_in_x_forwarded_for(client, upstream):
    client.get(
        "/api/v1/products",
        headers={"X-Forwarded-For": "198.51.100.1"},
        REMOTE_ADDR="10.0.0.2",
    )

    assert upstream.requests[0]["headers"]["x-forwarded-for"] == (
        "198.51.100.1, 10.0.0.2"
    )


def test_idempotent_requests_are_retried_others_are_not(client, upstream):
    upstream.status = 503

    read = client.get("/api/v1/products/tea")
    gets = len(upstream.requests)
    write = client.post(
        "/api/v1/products", data={"id": "x"}, content_type="application/json"
    )

    assert read.status_code == 503 and gets == 4  # the call and 3 retries
    assert write.status_code == 503 and len(upstream.requests) == gets + 1
    assert upstream.requests[-1]["body"] == b'{"id": "x"}'


def test_no_instance_answers_503_problem_with_retry_after(client, settings):
    settings.CONTEXTS = {
        **settings.CONTEXTS,
        "products": {
            "mode": "remote",
            "instances": [f"http://127.0.0.1:{free_port()}"],
        },
    }
    settings.RESILIENCE_RETRY_DELAYS_MS = [1, 2, 4]

    response = client.get("/api/v1/products/tea")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "context_unavailable"
    assert int(response["Retry-After"]) >= 1


@pytest.mark.django_db(databases=["default", "catalog"])
def test_a_local_context_is_not_proxied(client, upstream, settings):
    settings.CONTEXTS = {**settings.CONTEXTS, "products": {"mode": "local"}}

    response = client.get("/api/v1/products/nope")

    assert response.status_code == 404
    assert response.json()["code"] == "product_not_found"
    assert upstream.requests == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/products/../users/login",
        "/api/v1/products/./tea",
        "/api/v1/products/%2e%2e/x",
    ],
)
def test_dot_segments_are_refused_not_resolved_upstream(client, upstream, path):
    response = client.post(path, data={}, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_path"
    assert upstream.requests == []


def test_the_internal_token_and_odd_header_text_are_handled(client, upstream):
    response = client.get(
        "/api/v1/products/tea",
        headers={"X-Internal-Token": "guess", "X-Shopper-Name": "Zoë"},
    )

    assert response.status_code == 200
    [seen] = upstream.requests
    assert "x-internal-token" not in seen["headers"]
    assert seen["headers"]["x-shopper-name"].encode("latin-1") == "Zoë".encode(
        "latin-1"
    )


def test_a_remote_unavailable_error_stays_transient():
    from apps.gateway.interface import ContextUnavailable
    from apps.products.interface import binding

    error = binding.error_from_remote(
        {"type": "ContextUnavailable", "detail": "circuit open", "data": {}}
    )

    assert isinstance(error, ContextUnavailable)
    assert error.status == 503
