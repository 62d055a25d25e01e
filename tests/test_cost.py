"""The cost ledger through the real binary: per-request cost and LLM-only baseline in the
response headers and the audit log, hand-computed from the price catalog (local hardware price,
escalation through the real cascade to a second slmgate serving Gemma, fallback past a failing
deployment), and /metrics — parsed by the Prometheus text parser — agreeing with the audit store
after a scripted load."""

import collections
import json
import sqlite3
import subprocess
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import BIN, CASCADE_PROMPTS, ROOT, Gateway, chat, remote, smol

ADMIN = "adm-cost-secret-1234"
# SmolLM2 at $0.36/h, 100 prompt tok/s, 10 completion tok/s: $1/Mtok in, $10/Mtok out.
LOCAL = (1.0, 10.0)
BIG = (3.0, 15.0)
BASELINE = (2.5, 10.0)


@pytest.fixture(scope="module")
def gw(session_tmp, gemma_upstream, fake_upstream):
    cfg = f"""
[server]
listen = "127.0.0.1:@PORT@"

[auth]
admin_key = "{ADMIN}"

[audit]
flush_interval_ms = 50

{smol(context=512, parallel=2)}
hardware_cost_per_hour = 0.36
prompt_tokens_per_sec = 100
completion_tokens_per_sec = 10

{remote("big", gemma_upstream.url + "/v1", "gemma3", input_cost_per_mtok=BIG[0], output_cost_per_mtok=BIG[1])}
{remote("broken", fake_upstream.url + "/500/v1", max_retries=0, input_cost_per_mtok=1000, output_cost_per_mtok=1000)}
[routes.cascade]
tiers = [{{ name = "local", models = ["smollm2"] }}, {{ name = "strong", models = ["big"] }}]
cascade = {{ signal = "mean_logprob", threshold = -0.6, first_tokens = 16 }}

[routes.fallback]
tiers = [{{ name = "cloud", models = ["broken", "big"] }}]

[cost]
baseline = "frontier"
[cost.prices.frontier]
input_per_mtok = {BASELINE[0]}
output_per_mtok = {BASELINE[1]}
"""
    g = Gateway("cost", cfg, session_tmp)
    yield g
    g.stop()


def price(p, prompt, completion):
    return (prompt * p[0] + completion * p[1]) / 1e6



def entries(gw, wait_for):
    deadline = time.time() + 10
    while True:
        with sqlite3.connect(gw.db) as db:
            rows = [json.loads(e) for (e,) in db.execute("SELECT entry FROM audit WHERE json_extract(entry, '$.kind') = 'request' ORDER BY seq")]
        if len(rows) >= wait_for or time.time() > deadline:
            return rows
        time.sleep(0.1)


def expected_cost(entry):
    """The hand computation: the answering call at its price, plus each tier left for low
    confidence (the same prompt and the tokens it was judged on)."""
    prices = {"smollm2": LOCAL, "big": BIG, "broken": (1000, 1000)}
    p, c = entry["prompt_tokens"], entry["completion_tokens"]
    total = price(prices[entry["served"]["deployment"]], p, c)
    for e in entry["escalations"]:
        if e["deployment"]:
            total += price(prices[e["deployment"]], p, e["judged_tokens"])
    return total


def test_cost_and_baseline_per_request_match_the_price_catalog(gw):
    seen = []
    for text in CASCADE_PROMPTS:
        r = chat(gw, "cascade", text)
        assert r.status_code == 200, r.text
        seen.append((r.headers["x-request-id"], r))
    rows = {e["id"]: e for e in entries(gw, len(CASCADE_PROMPTS))}
    tiers = collections.Counter()
    for rid, r in seen:
        e = rows[rid]
        u = r.json()["usage"]
        assert (e["prompt_tokens"], e["completion_tokens"]) == (u["prompt_tokens"], u["completion_tokens"])
        want = expected_cost(e)
        assert float(r.headers["x-slmgate-cost-usd"]) == pytest.approx(want, abs=1e-9)
        assert e["cost_usd"] == pytest.approx(want, rel=1e-9)
        base = price(BASELINE, u["prompt_tokens"], u["completion_tokens"])
        assert float(r.headers["x-slmgate-baseline-cost-usd"]) == pytest.approx(base, abs=1e-9)
        assert e["baseline_cost_usd"] == pytest.approx(base, rel=1e-9)
        tiers[e["served"]["tier"]] += 1
        if e["served"]["tier"] == "strong":
            # An escalated request pays the local tier's judged prefix too.
            assert e["escalations"][0]["deployment"] == "smollm2"
            assert e["cost_usd"] > price(BIG, u["prompt_tokens"], u["completion_tokens"])
    # The prompts were chosen so the real cascade keeps some answers local and escalates others.
    assert tiers["local"] > 0 and tiers["strong"] > 0, tiers


def test_fallback_charges_only_the_call_that_answered(gw):
    r = chat(gw, "fallback", "Say hello.")
    assert r.status_code == 200, r.text
    assert r.headers["x-slmgate-fallback-from"] == "broken"
    u = r.json()["usage"]
    assert float(r.headers["x-slmgate-cost-usd"]) == pytest.approx(
        price(BIG, u["prompt_tokens"], u["completion_tokens"]), abs=1e-9)


def samples(gw):
    text = httpx.get(gw.url + "/metrics").text
    out = collections.defaultdict(dict)
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[s.name][tuple(sorted(s.labels.items()))] = s.value
    return out


def test_metrics_agree_with_the_audit_store_after_a_scripted_load(gw):
    key = httpx.post(gw.url + "/admin/keys", headers={"authorization": f"Bearer {ADMIN}"},
                     json={"team": "ledger", "models": ["cascade"]}).json()["key"]
    for i, text in enumerate(CASCADE_PROMPTS[:4]):
        assert chat(gw, "cascade", text, key=key, stream=i % 2 == 1).status_code == 200
    assert chat(gw, "fallback", "Count to three.", key=None, stream=True).status_code == 200
    # Refusals: a bad parameter and a model the key may not use.
    bad = httpx.post(gw.url + "/v1/chat/completions", json={"model": "cascade", "temperature": 9,
                     "messages": [{"role": "user", "content": "x"}]})
    assert bad.status_code == 400
    assert chat(gw, "fallback", "hi", key=key).status_code == 403
    time.sleep(0.3)  # streamed requests close their ledger entry after the last chunk
    rows = [e for e in entries(gw, 0) if e["status"] == 200]
    m = samples(gw)

    want = collections.defaultdict(lambda: [0, 0.0, 0.0, 0, 0])
    for e in rows:
        k = (("key", e["key_id"] or "anonymous"), ("model", e["served"]["deployment"]),
             ("route", e["model"]), ("tier", e["served"]["tier"]))
        want[k][0] += 1
        want[k][1] += e["cost_usd"]
        want[k][2] += e["baseline_cost_usd"]
        want[k][3] += e["prompt_tokens"]
        want[k][4] += e["completion_tokens"]
    assert any(dict(k)["key"] != "anonymous" for k in want), "the key's requests have their own series"
    assert set(m["slmgate_answers_total"]) == set(want)
    for k, (n, cost, base, prompt, completion) in want.items():
        assert m["slmgate_answers_total"][k] == n, k
        assert m["slmgate_answer_tokens_total"][tuple(sorted(k + (("kind", "prompt"),)))] == prompt, k
        assert m["slmgate_answer_tokens_total"][tuple(sorted(k + (("kind", "completion"),)))] == completion, k
        assert m["slmgate_cost_usd_total"][k] == pytest.approx(cost, rel=1e-9), k
        assert m["slmgate_baseline_cost_usd_total"][k] == pytest.approx(base, rel=1e-9), k
        assert m["slmgate_savings_usd"][k] == pytest.approx(base - cost, rel=1e-6, abs=1e-12), k

    rejections = m["slmgate_rejections_total"]
    assert rejections[(("kind", "invalid_request"),)] == 1
    assert rejections[(("kind", "auth"),)] == 1

    # One overhead observation per answered request; the time waiting on models is not in it.
    by_route = collections.Counter(e["model"] for e in rows)
    for route, n in by_route.items():
        assert m["slmgate_gateway_overhead_seconds_count"][(("route", route),)] == n
        overhead = m["slmgate_gateway_overhead_seconds_sum"][(("route", route),)]
        latency = sum(v for k, v in m["slmgate_request_duration_seconds_sum"].items() if ("route", route) in k)
        assert overhead < latency, (route, overhead, latency)


def test_report_cli_reads_the_same_ledger(gw):
    rows = [e for e in entries(gw, 0) if e["endpoint"] == "chat"]
    out = subprocess.run([str(BIN), "report", "--db", str(gw.db), "--since", "1h", "--by", "route",
                          "--format", "json"], capture_output=True, text=True, check=True).stdout
    doc = json.loads(out)
    assert doc["total"]["requests"] == len(rows)
    assert doc["total"]["cost_usd"] == pytest.approx(sum(e["cost_usd"] for e in rows), rel=1e-9)
    assert doc["total"]["baseline_usd"] == pytest.approx(
        sum(e.get("baseline_cost_usd") or 0 for e in rows), rel=1e-9)
    assert {g["name"] for g in doc["groups"]} == {e["model"] for e in rows}
    csv = subprocess.run([str(BIN), "report", "--db", str(gw.db), "--by", "key", "--format", "csv"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert csv[0].startswith("name,requests,answered,errors,") and csv[-1].startswith("total,")
    # The what-if at the logged threshold changes nothing; a higher one escalates more.
    same = json.loads(subprocess.run(
        [str(BIN), "report", "--config", str(gw.config_path), "--db", str(gw.db), "--since", "1h", "--format", "json",
         "--what-if", "cascade.threshold=-0.6"], capture_output=True, text=True, check=True).stdout)
    assert same["judged"] > 0
    assert same["now_escalated"] == same["now_kept"] == 0
    assert same["after"]["cost_usd"] == pytest.approx(same["before"]["cost_usd"], rel=1e-9)
    more = json.loads(subprocess.run(
        [str(BIN), "report", "--config", str(gw.config_path), "--db", str(gw.db), "--since", "1h", "--format", "json",
         "--what-if", "cascade.threshold=0"], capture_output=True, text=True, check=True).stdout)
    assert more["after"]["escalated"] >= more["before"]["escalated"]
    assert more["now_escalated"] > 0 and more["after"]["cost_usd"] > more["before"]["cost_usd"]
    bad = subprocess.run([str(BIN), "report", "--db", str(gw.db), "--what-if", "threshold=1"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "cascade.threshold=NUMBER" in bad.stderr


def test_plan_cli_matches_the_golden_scenario():
    # The embedded config's catalog (gpt-4o baseline) and SmolLM2 machine price are the
    # assumptions of the golden support scenario.
    out = subprocess.run([str(BIN), "plan", "--monthly-tokens", "100M", "--routine", "0.85",
                          "--io-ratio", "3:1", "--latency-ms", "2000"],
                         capture_output=True, text=True, check=True).stdout
    golden = ROOT / "crates" / "slmgate-core" / "src" / "advisor" / "testdata" / "support.txt"
    assert out == golden.read_text()
    bad = subprocess.run([str(BIN), "plan", "--monthly-tokens", "lots", "--routine", "0.5"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "100M" in bad.stderr
