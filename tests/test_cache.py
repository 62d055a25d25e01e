"""The response cache through the real binary and SmolLM2: exact and semantic hits, the
hard tenant scope (two teams, same prompt: never a hit across them), system prompt and
sampling in the scope, a streamed hit, opt-out by header, TTL, and what a hit costs (zero,
with the saving against the baseline) in the headers, the audit log and /metrics."""

import json
import sqlite3
import time

import httpx
import pytest

from conftest import MINILM, Gateway, smol

ADMIN = "adm-cache-secret-0001"


def config():
    return f"""
[server]
listen = "127.0.0.1:@PORT@"

[auth]
enabled = true
admin_key = "{ADMIN}"

[embeddings]
path = "{MINILM}"

{smol(context=512, parallel=2)}hardware_cost_per_hour = 0.10
prompt_tokens_per_sec = 290
completion_tokens_per_sec = 190

[cost]
baseline = "gpt-4o"

[cost.prices.gpt-4o]
input_per_mtok = 2.50
output_per_mtok = 10.00

[cache]
max_entries = 100

[routes.cached]
tiers = [{{ name = "local", models = ["smollm2"] }}]
cache = {{ enabled = true }}

[routes.brief]
tiers = [{{ name = "local", models = ["smollm2"] }}]
cache = {{ enabled = true, ttl_secs = 1 }}

[routes.uncached]
tiers = [{{ name = "local", models = ["smollm2"] }}]
"""


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    g = Gateway("cache", config(), tmp_path_factory.mktemp("cache"))
    yield g
    g.stop()


def key(gw, team=None):
    r = httpx.post(gw.url + "/admin/keys", headers={"authorization": f"Bearer {ADMIN}"},
                   json={"team": team} if team else {})
    assert r.status_code == 201, r.text
    return r.json()["key"]


def ask(gw, k, text, route="cached", system=None, temperature=0, stream=False, headers=None):
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    return httpx.post(gw.url + "/v1/chat/completions", timeout=120,
                      headers={"authorization": f"Bearer {k}", **(headers or {})},
                      json={"model": route, "max_tokens": 16, "temperature": temperature,
                            "stream": stream, "messages": msgs})


def text(r):
    return r.json()["choices"][0]["message"]["content"]


def test_exact_hit_is_free_and_audited(gw):
    k = key(gw, "alpha")
    first = ask(gw, k, "Name a primary colour.")
    assert first.headers["x-slmgate-cache"] == "miss"
    assert float(first.headers["x-slmgate-cost-usd"]) > 0
    second = ask(gw, k, "Name a primary colour.")
    assert second.status_code == 200
    assert second.headers["x-slmgate-cache"] == "hit"
    assert second.headers["x-slmgate-model"] == "cache"
    assert "exact" in second.headers["x-slmgate-route-reason"]
    assert text(second) == text(first)
    assert second.json()["id"] != first.json()["id"]
    assert float(second.headers["x-slmgate-cost-usd"]) == 0
    assert float(second.headers["x-slmgate-baseline-cost-usd"]) > 0  # the saving
    time.sleep(0.3)
    with sqlite3.connect(gw.db) as c:
        entries = {e["id"]: e for e in (json.loads(r[0]) for r in c.execute("SELECT entry FROM audit"))}
    hit = entries[second.headers["x-request-id"]]
    assert hit["served"]["tier"] == "cache" and hit["cost_usd"] == 0
    assert hit["cache"] == {"kind": "exact", "similarity": None, "source": first.headers["x-request-id"]}
    assert hit["baseline_cost_usd"] > 0
    m = httpx.get(gw.url + "/metrics").text
    assert 'slmgate_cache_lookups_total{result="hit_exact",route="cached"}' in m
    assert 'tier="cache"' in m
    # The dashboard counts hits as answers of tier `cache`.
    summary = httpx.get(gw.url + "/dashboard/api/summary?since=1h",
                        headers={"authorization": f"Bearer {ADMIN}"}).json()
    assert any(t["name"] == "cache" and t["count"] >= 1 for t in summary["tiers"]), summary["tiers"]


def test_no_hit_across_tenants(gw):
    red, red2, blue = key(gw, "red"), key(gw, "red"), key(gw, "blue")
    solo_a, solo_b = key(gw), key(gw)
    prompt = "Which planet is known as the red planet?"
    assert ask(gw, red, prompt).headers["x-slmgate-cache"] == "miss"
    assert ask(gw, blue, prompt).headers["x-slmgate-cache"] == "miss"
    assert ask(gw, red2, prompt).headers["x-slmgate-cache"] == "hit"  # same team shares
    assert ask(gw, solo_a, prompt).headers["x-slmgate-cache"] == "miss"
    assert ask(gw, solo_b, prompt).headers["x-slmgate-cache"] == "miss"  # keys without a team do not
    # Not even a paraphrase crosses over.
    assert ask(gw, blue, "Which planet is called the red planet?").headers["x-slmgate-cache"] == "hit"
    assert ask(gw, solo_b, "Which planet is called the red planet?").headers["x-slmgate-cache"] == "hit"


def test_paraphrase_hits_and_unrelated_misses(gw):
    k = key(gw, "para")
    base = ask(gw, k, "How do I reset my password?")
    assert base.headers["x-slmgate-cache"] == "miss"
    para = ask(gw, k, "How can I reset my password?")
    assert para.headers["x-slmgate-cache"] == "hit", para.headers["x-slmgate-route-reason"]
    assert "semantic" in para.headers["x-slmgate-route-reason"]
    assert text(para) == text(base)
    for other in ["What is the capital of France?", "How do I reset my router?",
                  "How do I change my username?"]:
        r = ask(gw, k, other)
        assert r.headers["x-slmgate-cache"] == "miss", (other, r.headers["x-slmgate-route-reason"])


def test_scope_includes_system_prompt_and_sampling(gw):
    k = key(gw, "scope")
    q = "Say one word about the ocean."
    assert ask(gw, k, q, system="You are terse.").headers["x-slmgate-cache"] == "miss"
    assert ask(gw, k, q, system="You are terse.").headers["x-slmgate-cache"] == "hit"
    assert ask(gw, k, q, system="You are verbose.").headers["x-slmgate-cache"] == "miss"
    assert ask(gw, k, q, system="You are terse.", temperature=0.7).headers["x-slmgate-cache"] == "miss"
    assert ask(gw, k, q, route="uncached").headers.get("x-slmgate-cache") is None


def test_streamed_hit_replays_as_a_stream(gw):
    k = key(gw, "stream")
    q = "Count from one to three."
    first = ask(gw, k, q)
    with httpx.stream("POST", gw.url + "/v1/chat/completions", timeout=120,
                      headers={"authorization": f"Bearer {k}"},
                      json={"model": "cached", "max_tokens": 16, "temperature": 0, "stream": True,
                            "stream_options": {"include_usage": True},
                            "messages": [{"role": "user", "content": q}]}) as r:
        assert r.headers["x-slmgate-cache"] == "hit"
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [l for l in r.iter_lines() if l.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(l[6:]) for l in lines[:-1]]
    assert len(chunks) >= 3
    got = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert got == text(first)
    assert chunks[-1]["usage"]["completion_tokens"] == first.json()["usage"]["completion_tokens"]
    # And a streamed answer is cached for a later whole request.
    q2 = "Name a fruit that is yellow."
    with httpx.stream("POST", gw.url + "/v1/chat/completions", timeout=120,
                      headers={"authorization": f"Bearer {k}"},
                      json={"model": "cached", "max_tokens": 16, "temperature": 0, "stream": True,
                            "messages": [{"role": "user", "content": q2}]}) as r:
        assert r.headers["x-slmgate-cache"] == "miss"
        streamed = "".join(json.loads(l[6:])["choices"][0]["delta"].get("content") or ""
                           for l in r.iter_lines() if l.startswith("data: {") and '"choices":[{' in l)
    again = ask(gw, k, q2)
    assert again.headers["x-slmgate-cache"] == "hit" and text(again) == streamed


def test_opt_out_header_and_ttl(gw):
    k = key(gw, "optout")
    q = "Give me a colour."
    ask(gw, k, q)
    off = ask(gw, k, q, headers={"x-slmgate-cache": "off"})
    assert off.headers["x-slmgate-cache"] == "bypass" and off.headers["x-slmgate-model"] == "smollm2"
    assert ask(gw, k, q).headers["x-slmgate-cache"] == "hit"
    assert ask(gw, k, q, route="brief").headers["x-slmgate-cache"] == "miss"
    assert ask(gw, k, q, route="brief").headers["x-slmgate-cache"] == "hit"
    time.sleep(1.5)
    assert ask(gw, k, q, route="brief").headers["x-slmgate-cache"] == "miss"  # expired
