"""Routing and escalation end to end: policy rules, the confidence cascade (local SmolLM2 as
the weak tier, a second slmgate serving Gemma 3 as the strong tier), failure escalation,
headers and metrics that agree with what happened, and `slmgate route explain`."""

import json
import re
import subprocess

import httpx
import openai
import pytest

from conftest import BIN, Gateway, MINILM, SMOL, smol

THRESHOLD = -0.6
FIRST = 16

# Prompts SmolLM2 answers with very different confidence (mean logprob of its first tokens).
PROMPTS = [
    "Repeat exactly: the cat sat on the mat.",
    "List the prime numbers below 20.",
    "Translate 'good morning' to German.",
    "Write a haiku about quantum chromodynamics.",
    "What is the capital of France?",
    "Explain the Riemann hypothesis in detail.",
]


@pytest.fixture(scope="module")
def routed(session_tmp, gemma_upstream, fake_upstream):
    cfg = f"""
[server]
listen = "127.0.0.1:@PORT@"

{smol(context=1024, parallel=4)}

[models.gemma]
type = "remote"
wire = "openai"
base_url = "{gemma_upstream.url}/v1"
model = "gemma3"
input_cost_per_mtok = 1.0
output_cost_per_mtok = 4.0

[models.gemma-anthropic]
type = "remote"
wire = "anthropic"
base_url = "{gemma_upstream.url}"
model = "gemma3"

[models.nologprobs]
type = "remote"
wire = "openai"
base_url = "{fake_upstream.url}/nologprobs/v1"
model = "fake"
max_retries = 0

[models.dead]
type = "remote"
wire = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "x"
max_retries = 0
connect_timeout_ms = 300

[routes.cascade]
tiers = [{{ name = "local", models = ["smollm2"] }}, {{ name = "strong", models = ["gemma"] }}]
cascade = {{ signal = "mean_logprob", threshold = {THRESHOLD}, first_tokens = {FIRST} }}

[routes.entropy-cascade]
tiers = [{{ name = "local", models = ["smollm2"] }}, {{ name = "strong", models = ["gemma"] }}]
cascade = {{ signal = "neg_entropy", threshold = -100.0, first_tokens = 8 }}

[routes.policy]
tiers = [{{ name = "local", models = ["smollm2"] }}, {{ name = "strong", models = ["gemma"] }}]
rules = [
  {{ name = "no-jokes", match = {{ tags = {{ task = "forbidden" }} }}, deny = "this task is not served here" }},
  {{ name = "private", match = {{ tags = {{ privacy = "high" }} }}, force_local = true }},
  {{ name = "premium", match = {{ tags = {{ tier = "premium" }} }}, pin_model = "gemma" }},
  {{ name = "cheap", match = {{ tags = {{ budget = "tiny" }} }}, max_cost_usd = 0.0000001, deny_tiers = ["local"] }},
]

[routes.support]
tiers = [
  {{ name = "billing", models = ["smollm2"] }},
  {{ name = "cooking", models = ["smollm2"] }},
  {{ name = "general", models = ["gemma"] }},
]
domains = {{ floor = 0.5, classes = [
  {{ name = "billing", tier = "billing", examples = [
     "I was charged twice this month", "How do I get a refund for my order?",
     "Update the credit card on my account", "Why is my invoice higher than usual?",
     "Cancel my subscription and stop the payments"] }},
  {{ name = "cooking", tier = "cooking", examples = [
     "How long should I boil an egg?", "What can I cook with chicken and rice?",
     "How do I make bread dough rise faster?", "Best temperature to roast vegetables",
     "Substitute for butter in a cake recipe"] }},
] }}

[embeddings]
path = "{MINILM}"

[routes.verified-keep]
tiers = [{{ name = "weak", models = ["gemma-anthropic"] }}, {{ name = "strong", models = ["smollm2"] }}]
cascade = {{ threshold = -100.0, first_tokens = 8, verifier = "smollm2" }}

[routes.verified-escalate]
tiers = [{{ name = "weak", models = ["gemma-anthropic"] }}, {{ name = "strong", models = ["smollm2"] }}]
cascade = {{ threshold = 100.0, first_tokens = 8, verifier = "smollm2" }}

[routes.unverified]
tiers = [{{ name = "weak", models = ["gemma-anthropic"] }}, {{ name = "strong", models = ["smollm2"] }}]
cascade = {{ threshold = 100.0, first_tokens = 8 }}

[routes.strict-upstream]
tiers = [{{ name = "weak", models = ["nologprobs"] }}, {{ name = "strong", models = ["smollm2"] }}]
cascade = {{ threshold = -0.5, first_tokens = 4, verifier = "smollm2" }}

[routes.failover]
tiers = [{{ name = "remote", models = ["dead"] }}, {{ name = "local", models = ["smollm2"] }}]
"""
    gw = Gateway("routed", cfg, session_tmp)
    yield gw
    gw.stop()


def chat(gw, model, prompt, **kw):
    body = {"model": model, "messages": [{"role": "user", "content": prompt}],
            "max_tokens": 24, "temperature": 0, **kw}
    return httpx.post(gw.url + "/v1/chat/completions", json=body, timeout=120,
                      headers=kw.pop("headers", None) or {})


def direct_confidence(gw, prompt):
    """Mean logprob of SmolLM2's first tokens, computed here from its own logprobs."""
    r = chat(gw, "smollm2", prompt, logprobs=True)
    lps = [t["logprob"] for t in r.json()["choices"][0]["logprobs"]["content"][:FIRST]]
    return sum(lps) / len(lps), r.json()["choices"][0]["message"]["content"]


def metric(gw, name, **labels):
    text = httpx.get(gw.url + "/metrics").text
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_cascade_escalates_exactly_the_low_confidence_answers(routed, gemma_upstream):
    escalated = kept = 0
    for p in PROMPTS:
        conf, local_answer = direct_confidence(routed, p)
        upstream_before = metric(gemma_upstream, "slmgate_requests_total", status="200")
        r = chat(routed, "cascade", p)
        upstream_calls = metric(gemma_upstream, "slmgate_requests_total", status="200") - upstream_before
        assert r.status_code == 200, r.text
        body = r.json()
        reason = r.headers["x-slmgate-route-reason"]
        assert "cascade: escalate if mean_logprob < -0.6" in reason
        assert body["choices"][0]["logprobs"] is None, "the cascade's own logprobs leaked to the client"
        if conf < THRESHOLD:
            escalated += 1
            assert r.headers["x-slmgate-tier"] == "strong", (p, conf, reason)
            assert r.headers["x-slmgate-model"] == "gemma"
            assert r.headers["x-slmgate-escalations"] == "1"
            # Escalation may be decided before 16 tokens once the mean cannot recover: the
            # confidence reported is over the tokens judged, and already below the threshold.
            m = re.search(r"escalated local->strong: confidence (-?[0-9.]+) over ([0-9]+) tokens", reason)
            assert m and float(m.group(1)) < THRESHOLD and 1 <= int(m.group(2)) <= FIRST, (reason, conf)
            # Gemma (a base model) answers near-ties, so its text is not compared; that it
            # answered, once, is.
            assert upstream_calls == 1
        else:
            kept += 1
            assert r.headers["x-slmgate-tier"] == "local", (p, conf, reason)
            assert r.headers["x-slmgate-escalations"] == "0"
            assert abs(float(r.headers["x-slmgate-confidence"]) - conf) < 0.01
            assert body["choices"][0]["message"]["content"] == local_answer
            assert upstream_calls == 0, "a confident local answer still called the strong tier"
    assert escalated >= 1 and kept >= 1, f"prompts no longer straddle the threshold: {escalated} escalated, {kept} kept"
    assert metric(routed, "slmgate_escalations_total", route="cascade", cause="low_confidence") == escalated
    assert metric(routed, "slmgate_served_tier_total", route="cascade", tier="strong") == escalated
    assert metric(routed, "slmgate_served_tier_total", route="cascade", tier="local") == kept


def test_streaming_cascade_sends_one_answer(routed):
    client = openai.OpenAI(base_url=routed.url + "/v1", api_key="x")
    for p in PROMPTS[:4]:
        whole = chat(routed, "cascade", p)
        with client.chat.completions.with_streaming_response.create(
                model="cascade", messages=[{"role": "user", "content": p}], max_tokens=24,
                temperature=0, stream=True) as resp:
            tier = resp.headers["x-slmgate-tier"]
            chunks = list(resp.parse())
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert tier == whole.headers["x-slmgate-tier"], p
        assert text == whole.json()["choices"][0]["message"]["content"], p
        assert all(c.choices[0].logprobs is None for c in chunks if c.choices)
        roles = [c for c in chunks if c.choices and c.choices[0].delta.role]
        assert len(roles) == 1, "two answers were streamed"


def test_client_logprobs_are_kept_through_the_cascade(routed):
    r = chat(routed, "cascade", PROMPTS[0], logprobs=True, top_logprobs=1)
    assert r.headers["x-slmgate-tier"] == "local"
    lp = r.json()["choices"][0]["logprobs"]["content"]
    assert len(lp) == r.json()["usage"]["completion_tokens"]
    assert all(len(t["top_logprobs"]) == 1 for t in lp)
    # A cascade whose signal needs 5 alternatives still gives the client only what it asked for.
    r = chat(routed, "entropy-cascade", PROMPTS[0], logprobs=True, top_logprobs=2)
    assert r.headers["x-slmgate-tier"] == "local"
    assert all(len(t["top_logprobs"]) == 2 for t in r.json()["choices"][0]["logprobs"]["content"])
    r = chat(routed, "entropy-cascade", PROMPTS[0], logprobs=True)
    assert all(t["top_logprobs"] == [] for t in r.json()["choices"][0]["logprobs"]["content"])


def test_policy_rules_route_deny_and_pin(routed):
    # Tags from the OpenAI metadata object: privacy=high keeps the request on-prem.
    r = chat(routed, "policy", "Say hi.", metadata={"privacy": "high"})
    assert r.status_code == 200 and r.headers["x-slmgate-tier"] == "local"
    assert "rule private: on-prem only" in r.headers["x-slmgate-route-reason"]
    # Tags from the header: premium is pinned to the big model.
    r = httpx.post(routed.url + "/v1/chat/completions", timeout=60, headers={"x-slmgate-tags": "tier=premium"},
                   json={"model": "policy", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8})
    assert r.status_code == 200 and r.headers["x-slmgate-model"] == "gemma"
    assert r.headers["x-slmgate-tier"] == "pinned"
    # Deny: 403 in the OpenAI error shape, naming the rule.
    r = chat(routed, "policy", "Say hi.", metadata={"task": "forbidden"})
    assert r.status_code == 403
    err = r.json()["error"]
    assert err["code"] == "route_denied" and "no-jokes" in err["message"]
    # A cost cap no tier meets: 403 saying which rule left nothing.
    r = chat(routed, "policy", "Say hi.", metadata={"budget": "tiny"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "no_allowed_model"
    assert "cheap" in r.json()["error"]["message"]
    assert metric(routed, "slmgate_route_decisions_total", route="policy", rule="private") >= 1


@pytest.mark.parametrize("prompt,tier", [
    ("I was charged twice for my plan, please refund me", "billing"),
    ("My card payment failed on the invoice", "billing"),
    ("How many minutes to hard boil eggs?", "cooking"),
    ("What spices go well with roast chicken?", "cooking"),
    # Below the similarity floor: no domain tier, the general tier answers.
    ("Explain the tensor product of Hilbert spaces", "general"),
    ("Which river flows through Vienna?", "general"),
])
def test_domain_classifier_picks_the_tier(routed, prompt, tier):
    r = chat(routed, "support", prompt, max_tokens=4)
    assert r.status_code == 200, r.text
    assert r.headers["x-slmgate-tier"] == tier, r.headers["x-slmgate-route-reason"]
    assert r.headers["x-slmgate-model"] == ("gemma" if tier == "general" else "smollm2")
    assert r.headers["x-slmgate-route-reason"].startswith("domain")


def test_local_verifier_judges_a_tier_without_logprobs(routed):
    # The Anthropic wire carries no logprobs: the local SLM scores the held answer instead.
    r = chat(routed, "verified-keep", "Name a colour.")
    assert r.status_code == 200 and r.headers["x-slmgate-tier"] == "weak"
    conf = float(r.headers["x-slmgate-confidence"])
    assert -30 < conf < 0, conf
    r = chat(routed, "verified-escalate", "Name a colour.")
    assert r.headers["x-slmgate-tier"] == "strong"
    assert re.search(r"escalated weak->strong: confidence -[0-9.]+ over 8 tokens", r.headers["x-slmgate-route-reason"])
    # Without a verifier such an answer is kept unjudged, whatever the threshold.
    r = chat(routed, "unverified", "Name a colour.")
    assert r.headers["x-slmgate-tier"] == "weak" and "x-slmgate-confidence" not in r.headers
    for stream_route, tier in [("verified-keep", "weak"), ("verified-escalate", "strong")]:
        with httpx.stream("POST", routed.url + "/v1/chat/completions", timeout=60, json={
                "model": stream_route, "stream": True, "max_tokens": 24, "temperature": 0,
                "messages": [{"role": "user", "content": "Name a colour."}]}) as resp:
            assert resp.headers["x-slmgate-tier"] == tier
            events = [l for l in resp.iter_lines() if l.startswith("data: ")]
        assert events[-1] == "data: [DONE]"


def test_failed_tier_escalates_with_cause_error(routed):
    r = chat(routed, "failover", "Say hi.")
    assert r.status_code == 200, r.text
    assert r.headers["x-slmgate-tier"] == "local"
    assert "escalated remote->local: error" in r.headers["x-slmgate-route-reason"]
    assert metric(routed, "slmgate_escalations_total", route="failover", cause="error") >= 1


def test_routes_are_listed_as_models(routed):
    ids = {m["id"]: m for m in httpx.get(routed.url + "/v1/models").json()["data"]}
    assert ids["cascade"]["slmgate"] == {"kind": "route", "tiers": ["local", "strong"]}


def test_route_explain_prints_the_plan(routed, tmp_path):
    req = tmp_path / "req.json"
    req.write_text(json.dumps({"model": "policy", "messages": [{"role": "user", "content": "hello"}],
                               "metadata": {"privacy": "high"}}))
    out = subprocess.run([str(BIN), "route", "explain", "--request", str(req), "--config", str(routed.config_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert '"rule": "private"' in out.stdout
    assert "x-slmgate-route-reason: rule private: on-prem only" in out.stdout
    out = subprocess.run([str(BIN), "route", "explain", "--request", str(req), "--config", str(routed.config_path),
                          "--tags", "task=forbidden"], capture_output=True, text=True, timeout=60)
    assert "refused: HTTP 403 route_denied" in out.stdout


@pytest.mark.parametrize("rules,field", [
    ('rules = [{ name = "r", allow_tiers = ["nope"] }]', "routes.auto.rules[0].allow_tiers/deny_tiers"),
    ('rules = [{ name = "r", pin_model = "ghost" }]', "routes.auto.rules[0].pin_model"),
    ('rules = [{ name = "r", match = { tags = { latency_budget_ms = "<=fast" } } }]', "routes.auto.rules[0].match.tags.latency_budget_ms"),
    ('rules = [{ name = "r", match = { colour = "red" } }]', "colour"),
    ('cascade = { threshold = -1.0, signal = "vibes" }', "vibes"),
])
def test_invalid_route_config_fails_at_start_naming_it(tmp_path, rules, field):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(f"""
[models.smollm2]
type = "local"
path = "{SMOL}"
[routes.auto]
tiers = [{{ name = "local", models = ["smollm2"] }}, {{ name = "b", models = ["smollm2"] }}]
{rules}
""")
    out = subprocess.run([str(BIN), "serve", "--config", str(cfg)], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert field in out.stderr, out.stderr


def test_anthropic_messages_are_routed_too(routed):
    import anthropic
    client = anthropic.Anthropic(base_url=routed.url, api_key="x")
    resp = client.messages.with_raw_response.create(
        model="policy", max_tokens=8, messages=[{"role": "user", "content": "Say hi."}],
        extra_headers={"x-slmgate-tags": "privacy=high"})
    assert resp.headers["x-slmgate-tier"] == "local"
    assert "rule private" in resp.headers["x-slmgate-route-reason"]
    assert resp.parse().content[0].text is not None
    with pytest.raises(anthropic.PermissionDeniedError) as e:
        client.messages.create(model="policy", max_tokens=8, messages=[{"role": "user", "content": "hi"}],
                               extra_headers={"x-slmgate-tags": "task=forbidden"})
    assert "no-jokes" in str(e.value)


def test_a_tier_that_rejects_logprobs_is_asked_again_without_them(routed, fake_upstream):
    r = chat(routed, "strict-upstream", "Say hi.")
    assert r.status_code == 200, r.text
    # The verifier judged the fake's answer ("fake upstream answer") and decided either way.
    assert "confidence" in r.headers["x-slmgate-route-reason"] or "x-slmgate-confidence" in r.headers
    calls = [c for c in fake_upstream.log() if c["mode"] == "nologprobs"]
    assert len(calls) >= 2 and "logprobs" in calls[-2]["body"] and "logprobs" not in calls[-1]["body"]
    # A client that asked for logprobs itself gets the upstream's 400.
    r = chat(routed, "strict-upstream", "Say hi.", logprobs=True)
    assert r.status_code == 400
