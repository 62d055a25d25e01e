"""The learning loop, with SmolLM2 and Gemma 3 in one gateway.

Shadow mode: a route's `shadow = { models = [...], sample = ... }` has other deployments
answer its requests after the client has its answer. SmolLM2 is the primary with Gemma 3 as
the shadow, and the reverse. What a user relies on: the client's answer is the one the route
gives without shadowing, a shadow that hangs neither delays the answer nor piles up (its
queue is bounded, overflow is dropped and counted), policy keeps a shadow from data it may
not see, and `slmgate shadow report` (and the dashboard's panel) says what the stored rows
say — recomputed here from the rows themselves.

Distillation export: `slmgate distill export` writes a teacher's answers (audited content and
shadow rows) as fine-tuning JSONL that validates against the OpenAI chat fine-tuning schema,
without PII-flagged, badly reviewed or repeated conversations."""

import json
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import BIN, GEMMA, MINILM, Gateway, smol

STUCK = 'connect_timeout_ms = 800\nfirst_byte_timeout_ms = 2500\ntotal_timeout_ms = 4000\nmax_retries = 0\ncooldown_failures = 0\n'
ADMIN = {"authorization": "Bearer admin-secret-0123456789"}
PROMPTS = ["What is the capital of France?", "Name three primary colours.", "Say hello in Spanish."]


def config(fake_url):
    return f"""
[server]
listen = "127.0.0.1:@PORT@"

[auth]
admin_key = "admin-secret-0123456789"

[audit]
content = "full"

[review]
sample = 1.0

{smol(context=1024)}input_cost_per_mtok = 0.05
output_cost_per_mtok = 0.1

[models.gemma3]
type = "local"
path = "{GEMMA}"
threads = 2
context = 1024
parallel = 2
input_cost_per_mtok = 2.5
output_cost_per_mtok = 10

[models.stuck]
type = "remote"
wire = "openai"
base_url = "{fake_url}/timeout/v1"
model = "fake"
{STUCK}
[embeddings]
name = "all-minilm-l6-v2"
path = "{MINILM}"

[routes.plain]
tiers = [{{ name = "local", models = ["smollm2"] }}]

[routes.smol-primary]
tiers = [{{ name = "local", models = ["smollm2"] }}]
shadow = {{ models = ["gemma3"], sample = 1.0 }}

[routes.gemma-primary]
tiers = [{{ name = "big", models = ["gemma3"] }}]
shadow = {{ models = ["smollm2"], sample = 1.0 }}

[routes.stuck-shadow]
tiers = [{{ name = "local", models = ["smollm2"] }}]
shadow = {{ models = ["stuck"], sample = 1.0, queue = 2 }}

[routes.on-prem]
tiers = [{{ name = "local", models = ["smollm2"] }}]
residency = ["on_prem"]
shadow = {{ models = ["stuck", "gemma3"], sample = 1.0 }}

[routes.never]
tiers = [{{ name = "local", models = ["smollm2"] }}]
shadow = {{ models = ["gemma3"], sample = 0.0 }}
"""


@pytest.fixture(scope="module")
def gw(session_tmp, fake_upstream):
    g = Gateway("shadow", config(fake_upstream.url), session_tmp)
    yield g
    g.stop()


def ask(gw, route, text, stream=False, max_tokens=12):
    body = {"model": route, "max_tokens": max_tokens, "temperature": 0, "stream": stream,
            "messages": [{"role": "user", "content": text}]}
    if not stream:
        r = httpx.post(gw.url + "/v1/chat/completions", json=body, timeout=120)
        assert r.status_code == 200, r.text
        return r.headers["x-request-id"], r.json()["choices"][0]["message"]["content"]
    text_out = ""
    with httpx.stream("POST", gw.url + "/v1/chat/completions", json=body, timeout=120) as r:
        assert r.status_code == 200
        rid = r.headers["x-request-id"]
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                for c in json.loads(line[6:]).get("choices", []):
                    text_out += c.get("delta", {}).get("content") or ""
    return rid, text_out


def rows(gw, where="1=1", args=()):
    with sqlite3.connect(gw.db) as c:
        c.row_factory = sqlite3.Row
        return [dict(r) for r in c.execute(f"SELECT * FROM shadow_answers WHERE {where} ORDER BY id", args)]


def wait_rows(gw, request_ids, per_request=1, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = [r for r in rows(gw) if r["request_id"] in request_ids]
        if len(got) >= per_request * len(request_ids):
            return got
        time.sleep(0.3)
    raise AssertionError(f"shadow rows for {request_ids} not written in {timeout}s: {rows(gw)}")


def shadow_counts(gw):
    out = {}
    for fam in text_string_to_metric_families(httpx.get(gw.url + "/metrics").text):
        if fam.name == "slmgate_shadow_requests":
            for s in fam.samples:
                if s.name.endswith("_total"):
                    out[(s.labels["route"], s.labels["model"], s.labels["outcome"])] = s.value
    return out


@pytest.mark.parametrize("route,alone,primary,shadow", [
    ("smol-primary", "plain", "smollm2", "gemma3"),
    ("gemma-primary", "gemma3", "gemma3", "smollm2"),
])
def test_the_client_gets_the_routes_own_answer_and_a_row_per_shadow(gw, route, alone, primary, shadow):
    ids, answers = [], {}
    for i, p in enumerate(PROMPTS):
        stream = i == 1
        # The engine reuses a cached prompt prefix, which changes the arithmetic (not the
        # model): warm it once, then compare two answers that both reuse it.
        ask(gw, alone, p, stream=stream)
        rid, text = ask(gw, route, p, stream=stream)
        _, unshadowed = ask(gw, alone, p, stream=stream)
        assert text == unshadowed, "shadowing changed the client's answer"
        ids.append(rid)
        answers[rid] = text
        wait_rows(gw, [rid])  # the engines are idle again before the next prompt
    got = wait_rows(gw, ids)
    assert len(got) == len(PROMPTS)
    for r in got:
        assert (r["route"], r["primary_model"], r["shadow_model"]) == (route, primary, shadow)
        assert r["error"] is None
        # What the client got is what the shadow was compared with (content = "full").
        assert r["primary_answer"] == answers[r["request_id"]]
        assert r["shadow_answer"] is not None and r["prompt"] in PROMPTS
        assert r["exact"] == int(r["primary_answer"] == r["shadow_answer"])
        assert 0.0 <= r["agreement"] <= 1.0
        assert r["similarity"] is not None and -1.0 <= r["similarity"] <= 1.0
        if not r["normalised"]:
            assert r["agreement"] == pytest.approx(max(r["similarity"], 0.0), abs=1e-6)
        assert r["shadow_cost_usd"] > 0 and r["primary_cost_usd"] > 0
        assert r["sample"] == 1.0


def test_a_hanging_shadow_neither_delays_answers_nor_piles_up(gw):
    rid, _ = ask(gw, "stuck-shadow", "What is two plus two?", max_tokens=6)
    answered_ms = time.time() * 1000
    # The shadow's call is still waiting on the upstream: no row yet.
    assert rows(gw, "request_id = ?", (rid,)) == []
    (row,) = wait_rows(gw, [rid], timeout=30)
    assert row["error"] is not None and row["agreement"] is None
    assert row["shadow_ms"] >= 2000, "the shadow waited for its upstream's first byte"
    assert row["ts_ms"] > answered_ms, "the row came after the client had its answer"
    # A burst while the shadow hangs: every client is answered, the queue (2) overflows.
    before = shadow_counts(gw).get(("stuck-shadow", "stuck", "dropped"), 0)
    for i in range(8):
        ask(gw, "stuck-shadow", f"Count to {i + 2}.", max_tokens=4)
    dropped = shadow_counts(gw).get(("stuck-shadow", "stuck", "dropped"), 0) - before
    assert dropped >= 3, f"a full shadow queue drops new jobs (dropped {dropped} of 8)"


def test_policy_keeps_a_shadow_from_data_it_may_not_see(gw):
    rid, _ = ask(gw, "on-prem", "Where is the Eiffel Tower?")
    got = wait_rows(gw, [rid])
    assert [r["shadow_model"] for r in got] == ["gemma3"], "the remote shadow was kept out"
    assert shadow_counts(gw).get(("on-prem", "stuck", "skipped"), 0) >= 1
    rid, _ = ask(gw, "never", "Where is Big Ben?")
    time.sleep(1.0)
    assert rows(gw, "request_id = ?", (rid,)) == [], "sample = 0 shadows nothing"


def recompute(rs, thresholds):
    """The report's totals, from the stored rows."""
    out = {}
    for key in sorted({(r["route"], r["shadow_model"]) for r in rs}):
        mine = [r for r in rs if (r["route"], r["shadow_model"]) == key]
        ok = [r for r in mine if r["error"] is None and r["agreement"] is not None]
        n = len(ok)
        saving = lambda r: (r["primary_cost_usd"] - r["shadow_cost_usd"]) / r["sample"]
        out[key] = {
            "compared": n,
            "errors": len(mine) - n,
            "agreement_mean": sum(r["agreement"] for r in ok) / n if n else 0.0,
            "exact_share": sum(r["exact"] for r in ok) / n if n else 0.0,
            "primary_cost_usd": sum(r["primary_cost_usd"] for r in ok),
            "shadow_cost_usd": sum(r["shadow_cost_usd"] for r in ok),
            "projections": [
                {"threshold": t,
                 "agree_share": (sum(1 for r in ok if r["agreement"] >= t) / n) if n else 0.0,
                 "takeover_savings_usd": sum(saving(r) for r in ok),
                 "agreeing_savings_usd": sum(saving(r) for r in ok if r["agreement"] >= t)}
                for t in thresholds],
        }
    return out


def test_the_report_says_what_the_rows_say(gw):
    rid, _ = ask(gw, "smol-primary", "Is water wet?")
    wait_rows(gw, [rid])
    thresholds = [0.5, 0.9]
    out = subprocess.run([str(BIN), "shadow", "report", "--db", str(gw.db), "--since", "all", "--json",
                          "--thresholds", ",".join(map(str, thresholds))],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    want = recompute(rows(gw), thresholds)
    got = {(g["route"], g["shadow_model"]): g for g in report["totals"]}
    assert set(got) == set(want)
    assert ("smol-primary", "gemma3") in got and ("stuck-shadow", "stuck") in got
    for key, w in want.items():
        g = got[key]
        assert (g["compared"], g["errors"]) == (w["compared"], w["errors"]), key
        for f in ("agreement_mean", "exact_share", "primary_cost_usd", "shadow_cost_usd"):
            assert g[f] == pytest.approx(w[f], rel=1e-5, abs=1e-9), (key, f)
        for gp, wp in zip(g["projections"], w["projections"]):
            for f in ("threshold", "agree_share", "takeover_savings_usd", "agreeing_savings_usd"):
                assert gp[f] == pytest.approx(wp[f], rel=1e-5, abs=1e-9), (key, f)
    # A route whose shadow costs more than it does saves nothing by letting it take over.
    assert got[("smol-primary", "gemma3")]["projections"][0]["takeover_savings_usd"] < 0
    assert got[("gemma-primary", "smollm2")]["projections"][0]["takeover_savings_usd"] > 0
    # The text form and the dashboard's panel read the same rows.
    text = subprocess.run([str(BIN), "shadow", "report", "--db", str(gw.db), "--since", "all"],
                          capture_output=True, text=True, timeout=60).stdout
    assert "route smol-primary · shadow gemma3" in text
    panel = httpx.get(gw.url + "/dashboard/api/shadow?since=all", headers=ADMIN).json()
    assert {(g["route"], g["shadow_model"]): g["compared"] for g in panel["totals"]} == \
        {k: w["compared"] for k, w in want.items()}


SCHEMA = json.loads((Path(__file__).parent / "data" / "openai_chat_finetune.schema.json").read_text())


def export(gw, tmp_path, *args):
    out = tmp_path / "sft.jsonl"
    r = subprocess.run([str(BIN), "distill", "export", "--db", str(gw.db), "--since", "all", "--out", str(out), *args],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = lambda p: [json.loads(x) for x in p.read_text().splitlines()]
    return r.stdout, lines(out), lines(tmp_path / "sft.eval.jsonl")


def test_distill_export_writes_the_teachers_clean_answers(gw, tmp_path):
    asked = {}
    for p in ["Name a fruit that is yellow.", "What colour is the sky?", "Name a fruit that is yellow.",
              "Write one word that rhymes with cat."]:
        rid, text = ask(gw, "gemma-primary", p)
        asked.setdefault(p, (rid, text))
    ask(gw, "gemma-primary", "My email is jane.doe@example.com, please remember it.")
    # A reviewer judged one answer bad: it must not become training data.
    bad_rid = asked["Write one word that rhymes with cat."][0]
    reviews = httpx.get(gw.url + "/admin/reviews?limit=500", headers=ADMIN).json()["data"]
    (bad,) = [r for r in reviews if r["request_id"] == bad_rid]
    r = httpx.post(gw.url + f"/admin/reviews/{bad['id']}", headers=ADMIN, json={"verdict": "bad"})
    assert r.status_code == 200, r.text

    stdout, train, evals = export(gw, tmp_path, "--route", "gemma-primary", "--teacher", "gemma3",
                                  "--eval-share", "0")
    assert evals == []
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for line in train:
        errors = list(validator.iter_errors(line))
        assert not errors, (line, errors[0].message)
    got = {line["messages"][0]["content"]: line["messages"][-1]["content"] for line in train}
    want = {p: text for p, (_, text) in asked.items() if p != "Write one word that rhymes with cat."}
    # Earlier tests asked the route too; each distinct prompt appears once, with the answer
    # the teacher gave (the first time it was asked).
    for p, text in want.items():
        assert got[p] == text
    assert "Write one word that rhymes with cat." not in got, "a bad verdict is left out"
    assert not any("jane.doe" in c for c in got), "a PII-flagged request is left out"
    assert len(got) == len(train), "no conversation twice"
    assert "1 judged bad" in stdout and " 0 with PII" not in stdout and " 0 duplicates" not in stdout

    # The same export split 50/50 puts every conversation in exactly one file, the same way twice.
    _, t1, e1 = export(gw, tmp_path, "--route", "gemma-primary", "--teacher", "gemma3", "--eval-share", "0.5")
    _, t2, e2 = export(gw, tmp_path, "--route", "gemma-primary", "--teacher", "gemma3", "--eval-share", "0.5")
    assert (t1, e1) == (t2, e2) and len(t1) + len(e1) == len(train)
    assert not {json.dumps(x) for x in t1} & {json.dumps(x) for x in e1}

    # A teacher that shadowed a route: its shadow answers to the route's prompts, in TRL's
    # prompt-completion form.
    _, trl, _ = export(gw, tmp_path, "--route", "smol-primary", "--teacher", "gemma3", "--eval-share", "0",
                       "--format", "trl")
    shadowed = {r["prompt"]: r["shadow_answer"] for r in rows(gw, "route = 'smol-primary' AND error IS NULL")}
    assert trl and len(trl) == len(shadowed)
    for line in trl:
        assert set(line) == {"prompt", "completion"}
        assert line["prompt"][-1]["role"] == "user" and line["completion"][0]["role"] == "assistant"
        assert shadowed[line["prompt"][-1]["content"]] == line["completion"][0]["content"]
