"""Upstream faults, each with a scripted fake (the happy path is tested against a real second
slmgate in test_remote.py): a slow-loris upstream, a reset mid-stream, garbage SSE, a 10 MB
single SSE line, a DNS failure and a TLS error. Alone, each gives one clear error in the
OpenAI shape with the right status, quickly; behind a fallback chain, the next deployment
answers. The gateway stays up and audits every request."""

import json
import subprocess
import time

import httpx
import openai
import pytest

from conftest import BIN, Gateway

FAST = 'connect_timeout_ms = 800\nfirst_byte_timeout_ms = 1500\ntotal_timeout_ms = 6000\nmax_retries = 0\nbackoff_ms = 50\ncooldown_failures = 0\n'


def model(name, base_url):
    return f'[models.{name}]\ntype = "remote"\nwire = "openai"\nbase_url = "{base_url}"\nmodel = "fake"\n{FAST}\n'


FAULTS = {
    # name: (base URL under the fake or elsewhere, status alone, code alone)
    "slowloris": ("/slowloris/v1", 504, "upstream_timeout"),
    "garbage": ("/garbage/v1", 502, "upstream_protocol_error"),
    "hugeline": ("/hugeline/v1", 502, "upstream_protocol_error"),
    "dns": ("http://no-such-host.invalid/v1", 502, "upstream_unreachable"),
    "tls": ("https://127.0.0.1:@FAKEPORT@/ok/v1", 502, "upstream_unreachable"),
}


@pytest.fixture(scope="module")
def gw(session_tmp, fake_upstream):
    port = fake_upstream.url.rsplit(":", 1)[1]
    blocks = [model("ok", fake_upstream.url + "/ok/v1"), model("midreset", fake_upstream.url + "/midreset/v1")]
    aliases = []
    for name, (url, _, _) in FAULTS.items():
        url = url.replace("@FAKEPORT@", port)
        blocks.append(model(name, url if url.startswith("http") else fake_upstream.url + url))
        aliases.append(f'then-{name} = ["{name}", "ok"]')
    cfg = '[server]\nlisten = "127.0.0.1:@PORT@"\n\n' + "".join(blocks) + "[aliases]\n" + "\n".join(aliases) + "\n"
    g = Gateway("faults", cfg, session_tmp)
    yield g
    g.stop()


@pytest.fixture(scope="module")
def client(gw):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0, timeout=30)


def ask(client, model, stream):
    args = dict(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=8)
    if stream:
        return "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(stream=True, **args) if c.choices)
    return client.chat.completions.create(**args).choices[0].message.content


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("stream", [False, True])
def test_a_fault_alone_is_one_clear_error(client, fault, stream):
    _, status, code = FAULTS[fault]
    t0 = time.time()
    with pytest.raises(openai.APIStatusError) as e:
        ask(client, fault, stream)
    took = time.time() - t0
    assert (e.value.status_code, e.value.body["code"]) == (status, code), e.value.body
    assert fault in e.value.body["message"], "the message names the failing deployment"
    # Bounded by the deployment's timeouts, not by the fault: a stream's events must come
    # within the first-byte timeout (1.5 s) of each other, a whole answer within 6 s.
    assert took < (4 if stream else 8), f"{fault} took {took:.1f}s"


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("stream", [False, True])
def test_a_fault_behind_a_fallback_is_answered_by_the_next(client, fault, stream):
    assert ask(client, f"then-{fault}", stream) in ("fake upstream answer",)


def test_a_reset_mid_stream_ends_the_stream_with_one_error(client):
    got = []
    with pytest.raises(openai.APIError):
        for ch in client.chat.completions.create(model="midreset", messages=[{"role": "user", "content": "hi"}], stream=True):
            got.extend(c.delta.content or "" for c in ch.choices)
    assert "".join(got) == "partial "


def test_the_gateway_survived_and_audited_every_request(gw, client):
    # Runs last in this module: every request above has its entry.
    assert httpx.get(gw.url + "/health").status_code == 200
    assert ask(client, "ok", False) == "fake upstream answer"
    sent = 2 * len(FAULTS) * 2 + 1 + 1
    out = subprocess.run([str(BIN), "audit", "export", "--db", str(gw.db)], capture_output=True, text=True, check=True)
    entries = [json.loads(line)["entry"] for line in out.stdout.splitlines()]
    assert len([e for e in entries if e["kind"] == "request"]) == sent
    codes = {e["error"] for e in entries if e["status"] >= 500}
    assert {"upstream_timeout", "upstream_protocol_error", "upstream_unreachable"} <= codes
