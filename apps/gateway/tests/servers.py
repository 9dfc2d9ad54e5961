"""Tiny real HTTP servers on free loopback ports, for the gateway tests:
an instance of a remote context, as far as its health and answers go."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class TinyServer:
    """Answers ``GET /health/ready`` with ``health_status`` and any other
    path with ``status`` and the server's name; can be stopped and started
    again on the same port."""

    def __init__(self, name: str = "server"):
        self.name = name
        self.health_status = 200
        self.status = 200
        self.requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "TinyServer":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                owner.requests.append(self.path)
                if self.path == "/health/ready":
                    status, body = owner.health_status, b"{}"
                else:
                    status, body = owner.status, owner.name.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
