"""The closed loop: `slmgate router retrain` learns from a route's production outcomes (here,
human review verdicts given through the admin API) and replaces the router file — which the
gateway reloads while serving — only when the new router's APGR on held-out production rows
beats the current one's; every decision is in the audit log.

The current router is trained on deliberately wrong labels (greetings need the strong tier,
arithmetic does not); reviewers then say the opposite about the answers it routed."""

import filecmp
import json
import sqlite3
import subprocess
import time

import httpx
import pytest

from conftest import BIN, MINILM, Gateway, smol

ADMIN = "admin-secret-0123456789"
NAMES = ["Ana", "Ben", "Chloe", "Dev", "Eva", "Finn", "Gus", "Hana", "Ivo", "Jade",
         "Kai", "Lena", "Milo", "Nora", "Otto", "Pia", "Quinn", "Rosa", "Sam", "Tara",
         "Uma", "Vic", "Wes", "Xena", "Yuri", "Zoe", "Abe", "Bea", "Cole", "Dina"]

OTHER_NAMES = ["Alba", "Bram", "Cleo", "Dario", "Elin", "Fred", "Gina", "Hugo", "Iris", "Joel",
               "Kira", "Luca", "Maya", "Nils", "Olga", "Paul", "Rhea", "Sven", "Tess", "Ugo"]


def math(i):
    return f"What is {17 + i} times {23 + 2 * i}?"


def greeting(i):
    return f"Hello there, my name is {NAMES[i % len(NAMES)]}. How are you today?"


def config(router):
    return f"""
[server]
listen = "127.0.0.1:@PORT@"

[auth]
admin_key = "{ADMIN}"

[review]
sample = 1.0

{smol(parallel=4)}
{smol("smollm2-strong", parallel=4)}
[embeddings]
name = "all-minilm-l6-v2"
path = "{MINILM}"

[routes.auto]
tiers = [{{ name = "local", models = ["smollm2"] }}, {{ name = "strong", models = ["smollm2-strong"] }}]
router = {{ path = "{router}" }}
"""


@pytest.fixture(scope="module")
def setup(session_tmp):
    router = session_tmp / "retrain-router.json"
    wrong = session_tmp / "wrong-labels.jsonl"
    with open(wrong, "w") as f:
        for i in range(20):
            f.write(json.dumps({"prompt": f"What is {3 + i} times {5 + i}?", "outcomes": {"local": 1, "strong": 1}}) + "\n")
            f.write(json.dumps({"prompt": f"Hello there, my name is {OTHER_NAMES[i]}. How are you today?",
                                "outcomes": {"local": 0, "strong": 1}}) + "\n")
    cfg_path = session_tmp / "retrain-train.toml"
    cfg_path.write_text(config(router).replace("@PORT@", "0"))
    r = subprocess.run([str(BIN), "router", "train", "--data", str(wrong), "--weak", "local", "--strong", "strong",
                        "--out", str(router), "--learner", "logistic", "--config", str(cfg_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    g = Gateway("retrain", config(router), session_tmp)
    yield g, router, wrong
    g.stop()


def ask(gw, text):
    r = httpx.post(gw.url + "/v1/chat/completions", timeout=120,
                   json={"model": "auto", "max_tokens": 1, "temperature": 0,
                         "messages": [{"role": "user", "content": text}]})
    assert r.status_code == 200, r.text
    return r.headers["x-slmgate-tier"]


def retrain(gw, *extra):
    r = subprocess.run([str(BIN), "router", "retrain", "--route", "auto", "--since", "all", "--holdout", "0.4",
                        "--config", str(gw.config_path), "--db", str(gw.db), *extra],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_retrain_swaps_only_when_held_out_apgr_improves(setup):
    gw, router, wrong = setup
    tiers = {}
    for i in range(30):
        tiers[math(i)] = ask(gw, math(i))
        tiers[greeting(i)] = ask(gw, greeting(i))
    # The wrong router sends greetings to the strong tier and arithmetic to the local one.
    assert sum(tiers[math(i)] == "local" for i in range(30)) >= 25
    assert sum(tiers[greeting(i)] == "strong" for i in range(30)) >= 25
    headers = {"authorization": f"Bearer {ADMIN}"}
    reviews = httpx.get(gw.url + "/admin/reviews?limit=1000", headers=headers).json()["data"]
    labelled = 0
    for rv in reviews:
        is_math = rv["prompt"].startswith("What is")
        verdict = {("local", True): "should_have_escalated", ("strong", False): "needless_escalation",
                   ("local", False): "good"}.get((rv["tier"], is_math))
        if verdict:
            r = httpx.post(gw.url + f"/admin/reviews/{rv['id']}", headers=headers, json={"verdict": verdict})
            assert r.status_code == 200
            labelled += 1
    assert labelled >= 50

    before = router.read_bytes()
    out = retrain(gw)
    assert "review " in out and "swapped" in out, out
    apgr = [float(x) for x in out.split("held-out APGR ")[1].split(" on ")[0].replace("(current) vs ", "").replace(" (retrained)", "").split()]
    assert apgr[1] > apgr[0], out
    assert router.read_bytes() != before
    assert router.with_suffix(".prev.json").read_bytes() == before, "the old router is kept beside it"

    # The gateway reloads the new router while serving: new arithmetic prompts now mostly start
    # at the strong tier and greetings at the local one. (Mostly: the new threshold keeps the
    # old strong share of its training rows, and which rows are held out depends on the random
    # request ids, so a borderline prompt may fall either side.)
    fresh_math = [math(60 + i) for i in range(10)]
    deadline = time.time() + 15
    while True:
        to_strong = sum(ask(gw, p) == "strong" for p in fresh_math)
        if to_strong >= 7 or time.time() > deadline:
            break
        time.sleep(0.5)
    assert to_strong >= 7, f"{to_strong}/10 new arithmetic prompts start at the strong tier"
    to_local = sum(ask(gw, f"Hello there, my name is {OTHER_NAMES[i]}. How are you today?") == "local"
                   for i in range(10))
    assert to_local >= 7, f"{to_local}/10 new greetings start at the local tier"

    # The same data again: the retrained router is no better than itself, so nothing changes.
    swapped = router.read_bytes()
    out = retrain(gw)
    assert "kept" in out, out
    assert router.read_bytes() == swapped

    with sqlite3.connect(gw.db) as c:
        decisions = [json.loads(e) for (e,) in c.execute("SELECT entry FROM audit ORDER BY seq")
                     if json.loads(e)["kind"] == "router_retrain"]
    assert [d["error"].split()[0] for d in decisions] == ["swapped", "kept"]
    r = subprocess.run([str(BIN), "audit", "verify", "--db", str(gw.db)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
