"""The learned router at serve time, beyond picking one of two starts: its score combined
with the cascade's confidence (`cascade.combine`), N-tier starts (`router.starts`), the
request's tags as router input, `route explain`, and `slmgate cascade calibrate` from the
audit log.

A ridge router is trained here on requests whose tag decides the strong model's gain
(`difficulty=hard` gains, `easy` does not, `medium` half the time) and whose texts are the same
for every tag: the score then moves with the tag alone, so one prompt — one local answer, one
confidence — is kept or escalated by its router prior only.
"""

import json
import re
import subprocess

import httpx
import pytest

from conftest import BIN, MINILM, Gateway, audit_entries, smol

PROMPT = "Name three colours of the rainbow."
TEXTS = [
    "Name three colours of the rainbow.", "What is the capital of France?", "Say hello.",
    "List two fruits.", "What day comes after Monday?", "Count from one to five.",
    "Name a large animal.", "What is two plus two?", "Give me a synonym for big.",
    "Name a planet.", "What colour is the sky?", "Translate 'yes' to French.",
]


def cli(*args, timeout=300):
    out = subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def router_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("router-serving")
    rows = []
    for i, text in enumerate(TEXTS * 4):
        for tag, outcomes in [("hard", (0.0, 1.0)), ("easy", (1.0, 1.0)),
                              ("medium", (float(i % 2), 1.0))]:
            rows.append({"id": f"{tag}-{i}", "prompt": text, "tags": {"difficulty": tag},
                         "outcomes": {"weak": outcomes[0], "strong": outcomes[1]}})
    data = d / "tagged.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = d / "embed.toml"
    cfg.write_text(f'{smol()}\n[embeddings]\npath = "{MINILM}"\n')
    path = d / "router.json"
    out = cli("router", "train", "--data", data, "--weak", "weak", "--strong", "strong",
              "--out", path, "--learner", "ridge", "--config", cfg)
    assert "learner ridge" in out, out
    m = json.loads(path.read_text())
    assert m["representation"] == "bag" and m["tag_prior"]["effects"]["difficulty=hard"] > 0.3
    return path


def ask(gw, model, difficulty, prompt=PROMPT):
    r = httpx.post(gw.url + "/v1/chat/completions", timeout=120, json={
        "model": model, "max_tokens": 12, "temperature": 0, "metadata": {"difficulty": difficulty},
        "messages": [{"role": "user", "content": prompt}]})
    assert r.status_code == 200, r.text
    return r.headers


@pytest.fixture(scope="module")
def gw(session_tmp, router_file):
    # The local answer's confidence first: a cascade that keeps everything reports it.
    probe_cfg = f"""
[server]
listen = "127.0.0.1:@PORT@"
{smol()}{smol("smollm2-b", parallel=1)}
[routes.probe]
tiers = [{{ name = "local", models = ["smollm2"] }}, {{ name = "strong", models = ["smollm2-b"] }}]
cascade = {{ signal = "mean_logprob", threshold = -100, first_tokens = 8 }}
"""
    probe = Gateway("router-probe", probe_cfg, session_tmp)
    try:
        conf = float(ask(probe, "probe", "easy")["x-slmgate-confidence"])
    finally:
        probe.stop()
    # combine: escalate if (r − 0.5)/0.4 − (c − conf)/1 ≥ 0, i.e. c < conf + (r − 0.5)/0.4.
    combine = f"{{ router_mean = 0.5, router_std = 0.4, confidence_mean = {conf}, confidence_std = 1.0, threshold = 0.0 }}"
    cfg = f"""
[server]
listen = "127.0.0.1:@PORT@"
{smol()}{smol("smollm2-b", parallel=1)}{smol("smollm2-c", parallel=1)}
[routes.plain]
tiers = [{{ name = "local", models = ["smollm2"] }}, {{ name = "strong", models = ["smollm2-b"] }}]
router = {{ path = "{router_file}", threshold = 10.0 }}
cascade = {{ signal = "mean_logprob", threshold = {conf - 0.5}, first_tokens = 8 }}

[routes.combined]
tiers = [{{ name = "local", models = ["smollm2"] }}, {{ name = "strong", models = ["smollm2-b"] }}]
router = {{ path = "{router_file}", threshold = 10.0 }}
cascade = {{ signal = "mean_logprob", threshold = {conf - 0.5}, first_tokens = 8, combine = {combine} }}

[routes.three]
tiers = [{{ name = "local", models = ["smollm2"] }}, {{ name = "mid", models = ["smollm2-b"] }}, {{ name = "top", models = ["smollm2-c"] }}]
router = {{ path = "{router_file}", starts = {{ mid = 0.3, top = 0.7 }} }}

[embeddings]
path = "{MINILM}"
"""
    g = Gateway("router-serving", cfg, session_tmp)
    g.conf = conf
    yield g
    g.stop()


def test_the_serving_cascade_escalates_by_the_combined_score(gw):
    # Without combine, one threshold: the same answer is kept whatever the tags say.
    for d in ["easy", "hard"]:
        assert ask(gw, "plain", d)["x-slmgate-tier"] == "local"
    easy, hard = ask(gw, "combined", "easy"), ask(gw, "combined", "hard")
    # Same prompt, same local answer and confidence; only the router's prior differs.
    assert float(easy["x-slmgate-confidence"]) == pytest.approx(gw.conf, abs=1e-3)
    assert easy["x-slmgate-tier"] == "local", easy["x-slmgate-route-reason"]
    assert hard["x-slmgate-tier"] == "strong", hard["x-slmgate-route-reason"]
    assert hard["x-slmgate-escalations"] == "1"
    score = float(re.search(r"router: score (-?[0-9.]+)", hard["x-slmgate-route-reason"]).group(1))
    want = gw.conf + (score - 0.5) / 0.4
    m = re.search(r"escalate if mean_logprob < (-?[0-9.]+) \(router score (-?[0-9.]+) combined",
                  hard["x-slmgate-route-reason"])
    assert m, hard["x-slmgate-route-reason"]
    assert float(m.group(1)) == pytest.approx(want, abs=0.01)
    # The audit entry holds the router score and the tags the router read.
    entries = [e for e in audit_entries(gw, "request") if e["model"] == "combined"]
    assert {e["tags"]["difficulty"] for e in entries} == {"easy", "hard"}
    assert all(e["plan"]["router_score"] is not None for e in entries)


def test_route_explain_shows_the_combined_threshold(gw, tmp_path):
    req = tmp_path / "req.json"
    req.write_text(json.dumps({"model": "combined", "metadata": {"difficulty": "hard"},
                               "messages": [{"role": "user", "content": PROMPT}]}))
    out = cli("route", "explain", "--request", req, "--config", gw.config_path)
    assert "combined with the confidence" in out, out


def test_the_router_picks_among_three_tiers(gw):
    got = {d: ask(gw, "three", d) for d in ["easy", "medium", "hard"]}
    assert {d: h["x-slmgate-tier"] for d, h in got.items()} == {"easy": "local", "medium": "mid", "hard": "top"}
    assert "start at top" in got["hard"]["x-slmgate-route-reason"]


def test_cascade_calibrate_sets_the_threshold_from_logged_traffic(gw):
    # Answers of different confidence: several prompts under every tag.
    for text in TEXTS[:6]:
        for d in ["easy", "medium", "hard"]:
            ask(gw, "combined", d, text)
    out = cli("cascade", "calibrate", "--db", gw.db, "--route", "combined", "--escalate", 0.5,
              "--since", "all")
    m = re.search(r"combine = \{ router_weight = 1, confidence_weight = 1, router_mean = (-?[0-9.]+), "
                  r"router_std = (-?[0-9.]+), confidence_mean = (-?[0-9.]+), confidence_std = (-?[0-9.]+), "
                  r"threshold = (-?[0-9.]+) \}", out)
    assert m, out
    rm, rs, cm, cs, th = map(float, m.groups())
    # Recomputed from the audit log: the judged requests' router scores and confidences.
    pairs = []
    for e in audit_entries(gw, "request"):
        if e["model"] != "combined" or e["status"] != 200:
            continue
        esc = [x for x in e.get("escalations", []) if x["cause"] == "low_confidence"]
        conf = esc[0]["confidence"] if esc else e["served"]["confidence"]
        pairs.append((e["plan"]["router_score"], conf))
    n = len(pairs)
    assert f"{n} judged requests of combined" in out
    mean = lambda v: sum(v) / len(v)
    sd = lambda v: (sum((x - mean(v)) ** 2 for x in v) / len(v)) ** 0.5
    assert rm == pytest.approx(mean([p[0] for p in pairs]), abs=1e-4)
    assert rs == pytest.approx(sd([p[0] for p in pairs]), abs=1e-4)
    assert cm == pytest.approx(mean([p[1] for p in pairs]), abs=1e-4)
    z = [(r - rm) / rs - (c - cm) / cs for r, c in pairs]
    escalated = sum(1 for v in z if v >= th - 1e-6)
    assert escalated == round(0.5 * n), (escalated, n)
