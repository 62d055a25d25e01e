"""OpenTelemetry traces through the real binary: with `[telemetry] otlp_endpoint` set, spans
reach an OTLP/HTTP (JSON) collector — here a recording server — following the GenAI semantic
conventions, under the caller's W3C traceparent; a failed deployment's span carries error.type.
Without an endpoint (the default), nothing is exported."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from conftest import Gateway, free_port, remote, smol

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def collector():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            received.append((self.path, self.headers.get("content-type"), body))
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

    srv = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    srv.received = received
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()


def spans(collector):
    out = []
    for path, ctype, body in collector.received:
        assert path == "/v1/traces" and ctype == "application/json"
        doc = json.loads(body)
        for rs in doc["resourceSpans"]:
            service = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}["service.name"]
            for ss in rs["scopeSpans"]:
                for s in ss["spans"]:
                    attrs = {a["key"]: next(iter(a["value"].values())) for a in s.get("attributes", [])}
                    out.append({**s, "attrs": attrs, "service": service["stringValue"]})
    return out


def test_spans_follow_the_genai_conventions(session_tmp, collector, fake_upstream):
    cfg = f"""
[server]
listen = "127.0.0.1:@PORT@"

[telemetry]
otlp_endpoint = "{collector.url}"
service_name = "slmgate-test"

{smol(context=512, parallel=2)}

{remote("broken", fake_upstream.url + "/500/v1", "upstream-model", max_retries=0)}
[aliases]
chain = ["broken", "smollm2"]
"""
    gw = Gateway("traces", cfg, session_tmp)
    try:
        r = httpx.post(gw.url + "/v1/chat/completions", timeout=60,
                       headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
                       json={"model": "chain", "max_tokens": 8, "temperature": 0.5,
                             "messages": [{"role": "user", "content": "Say hi."}]})
        assert r.status_code == 200, r.text
        usage = r.json()["usage"]
    finally:
        gw.stop()  # flushes the batched spans

    got = spans(collector)
    server = [s for s in got if s["name"] == "POST /v1/chat/completions"]
    assert len(server) == 1, [s["name"] for s in got]
    server = server[0]
    assert server["traceId"] == TRACE_ID and server["parentSpanId"] == PARENT_ID
    assert server["kind"] == 2  # SERVER
    assert server["service"] == "slmgate-test"
    assert int(server["attrs"]["http.response.status_code"]) == 200
    assert server["attrs"]["slmgate.request_id"] == r.headers["x-request-id"]

    calls = {s["name"]: s for s in got if s["name"].startswith("chat ")}
    assert set(calls) == {"chat upstream-model", "chat smollm2"}
    failed, local = calls["chat upstream-model"], calls["chat smollm2"]
    for s in (failed, local):
        assert s["traceId"] == TRACE_ID and s["parentSpanId"] == server["spanId"]
        assert s["attrs"]["gen_ai.operation.name"] == "chat"
        assert int(s["attrs"]["gen_ai.request.max_tokens"]) == 8
        assert float(s["attrs"]["gen_ai.request.temperature"]) == 0.5
    assert failed["kind"] == 3  # CLIENT
    assert failed["attrs"]["gen_ai.provider.name"] == "openai"
    assert failed["attrs"]["error.type"] == "server_error"
    assert failed["status"]["code"] == 2  # ERROR
    assert local["kind"] == 1  # INTERNAL: in-process
    assert local["attrs"]["gen_ai.provider.name"] == "slmgate.llama_cpp"
    assert int(local["attrs"]["gen_ai.usage.input_tokens"]) == usage["prompt_tokens"]
    assert int(local["attrs"]["gen_ai.usage.output_tokens"]) == usage["completion_tokens"]
    assert local["attrs"]["gen_ai.response.finish_reasons"] in ("stop", "length")
    # Prompts and answers are never put on spans.
    assert "Say hi" not in json.dumps(got)


def test_no_endpoint_means_no_traces(local_gw, collector):
    before = len(collector.received)
    r = httpx.post(local_gw.url + "/v1/chat/completions", timeout=60,
                   json={"model": "auto", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200
    assert "otlp" not in local_gw.logs().lower()
    assert len(collector.received) == before
