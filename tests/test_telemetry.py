"""config/telemetry.py as a web process sets it up (config.wsgi in a fresh
interpreter): off by default with nothing on the hot paths and the W3C
context still passed to outgoing calls; on with an exporter, the requests,
queries and outgoing calls traced."""

import json
import os
import subprocess
import sys

from tests.subprocesses import ROOT

# Loads the WSGI application, then makes one outgoing httpx call to a local
# server inside the context of a caller's traceparent, and prints what the
# process looks like.
SCRIPT = r"""
import http.server, json, threading
import config.wsgi
import httpx, psycopg
from django.conf import settings
from opentelemetry import context, propagate, trace

seen = {}

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        seen["traceparent"] = self.headers.get("traceparent")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
token = context.attach(propagate.extract({"traceparent": caller}))
httpx.get(f"http://127.0.0.1:{server.server_port}/")
context.detach(token)
server.shutdown()
print("RESULT" + json.dumps({
    "first_middleware": settings.MIDDLEWARE[0],
    "psycopg_wrapped": hasattr(psycopg.connect, "__wrapped__"),
    "provider": type(trace.get_tracer_provider()).__name__,
    "outgoing_traceparent": seen["traceparent"],
}))
"""

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


def run_web_process(tmp_path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "OTEL_EXPORTER_JSONL_FILE": str(tmp_path / "spans.jsonl"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


def result_of(process: subprocess.CompletedProcess) -> dict:
    assert process.returncode == 0, process.stderr
    line = next(x for x in process.stdout.splitlines() if x.startswith("RESULT"))
    return json.loads(line.removeprefix("RESULT"))


def test_tracing_is_off_by_default_and_still_passes_the_callers_context_on(
    tmp_path,
):
    result = result_of(run_web_process(tmp_path))

    # Nothing wraps requests or queries; no SDK records anything.
    assert "opentelemetry" not in result["first_middleware"]
    assert result["psycopg_wrapped"] is False
    assert result["provider"] == "ProxyTracerProvider"
    # The caller's context goes on unchanged to the outgoing call.
    assert result["outgoing_traceparent"] == f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
    assert not (tmp_path / "spans.jsonl").exists()


def test_an_exporter_turns_tracing_on_for_requests_queries_and_calls(tmp_path):
    result = result_of(run_web_process(tmp_path, OTEL_TRACES_EXPORTER="jsonl"))

    assert "opentelemetry" in result["first_middleware"]
    assert result["psycopg_wrapped"] is True
    assert result["provider"] == "TracerProvider"
    # The outgoing call is a span of its own in the caller's trace.
    version, trace_id, span_id, flags = result["outgoing_traceparent"].split("-")
    assert (trace_id, flags) == (CALLER_TRACE, "01")
    assert span_id != CALLER_SPAN
    spans = [json.loads(line) for line in (tmp_path / "spans.jsonl").open()]
    (call,) = spans
    assert call["kind"] == "SpanKind.CLIENT"
    assert call["context"]["span_id"] == f"0x{span_id}"
    assert call["parent_id"] == f"0x{CALLER_SPAN}"
    assert call["resource"]["attributes"]["service.name"] == "shop-web"


def test_a_sampling_ratio_of_zero_still_keeps_a_trace_its_caller_sampled(
    tmp_path,
):
    result = result_of(
        run_web_process(
            tmp_path, OTEL_TRACES_EXPORTER="jsonl", OTEL_TRACES_SAMPLER_ARG="0"
        )
    )

    # parentbased: the caller sampled its trace, so it is kept.
    assert result["outgoing_traceparent"].endswith("-01")
    assert (tmp_path / "spans.jsonl").exists()


def test_an_unknown_exporter_stops_the_process_at_start(tmp_path):
    process = run_web_process(tmp_path, OTEL_TRACES_EXPORTER="zipkin")

    assert process.returncode != 0
    assert "OTEL_TRACES_EXPORTER must be one of" in process.stderr
