"""The /dashboard in headless Chromium (Debian's, driven by playwright-core): known traffic
through the real binary (SmolLM2 with a confidence cascade to a second slmgate serving Gemma, a
failing deployment, two callers, reviewed answers), then the page's numbers are checked against
the audit store, and a screenshot is saved to tests/.artifacts/dashboard.png."""

import json
import math
import re
import sqlite3
import subprocess
import time

import httpx
import pytest

from conftest import CASCADE_PROMPTS, Gateway, ROOT, admin_call, chat, remote, smol

ADMIN = "adm-dashboard-secret-99"
BROWSER = ROOT / "tests" / "browser"
ARTIFACTS = ROOT / "tests" / ".artifacts"


@pytest.fixture(scope="module")
def gw(session_tmp, gemma_upstream, fake_upstream):
    cfg = f"""
[server]
listen = "127.0.0.1:@PORT@"

[auth]
admin_key = "{ADMIN}"

[audit]
flush_interval_ms = 50

[review]
sample = 1.0

{smol(context=512, parallel=2)}
hardware_cost_per_hour = 0.10
prompt_tokens_per_sec = 290
completion_tokens_per_sec = 190

{remote("gemma", gemma_upstream.url + "/v1", "gemma3", input_cost_per_mtok=3, output_cost_per_mtok=15)}
{remote("broken", fake_upstream.url + "/500/v1", max_retries=0)}
[routes.support]
tiers = [{{ name = "local", models = ["smollm2"] }}, {{ name = "frontier", models = ["gemma"] }}]
cascade = {{ signal = "mean_logprob", threshold = -0.6, first_tokens = 16 }}

[routes.flaky]
tiers = [{{ name = "cloud", models = ["broken"] }}]

[cost]
baseline = "gpt-4o"
[cost.prices.gpt-4o]
input_per_mtok = 2.5
output_per_mtok = 10
"""
    g = Gateway("dashboard", cfg, session_tmp)
    yield g
    g.stop()


def admin(gw, method, path, **kw):
    return admin_call(gw, ADMIN, method, path, **kw)



def traffic(gw):
    key = admin(gw, "POST", "/admin/keys", json={"name": "support-bot", "team": "support"}).json()
    for i, p in enumerate(CASCADE_PROMPTS):
        assert chat(gw, "support", p, key=key["key"] if i % 2 else None).status_code == 200
    assert chat(gw, "flaky", "hello").status_code >= 500
    reviews = []
    deadline = time.time() + 10
    while len(reviews) < len(CASCADE_PROMPTS) and time.time() < deadline:
        reviews = admin(gw, "GET", "/admin/reviews").json()["data"]
        time.sleep(0.1)
    for rev, verdict in zip(reviews, ["good", "bad", "good", "needless_escalation"]):
        assert admin(gw, "POST", f"/admin/reviews/{rev['id']}", json={"verdict": verdict}).status_code == 200
    return key


def store(gw):
    with sqlite3.connect(gw.db) as db:
        rows = [json.loads(e) for (e,) in db.execute("SELECT entry FROM audit")]
        verdicts = dict(db.execute("SELECT request_id, verdict FROM reviews WHERE verdict IS NOT NULL"))
    return [r for r in rows if r.get("kind") == "request" and r["endpoint"] in ("chat", "messages")], verdicts


def money(text):
    """'$0.001234' / '−$1.5' → float, and the half-unit of the last digit shown."""
    m = re.search(r"(−?)\$(\d+)\.(\d+)", text)
    assert m, text
    v = float(f"{m[2]}.{m[3]}") * (-1 if m[1] else 1)
    return v, 0.5 * 10 ** -len(m[3]) + 1e-12


def percent(text):
    return float(re.search(r"(-?\d+\.\d) %", text)[1])


def nearest_rank(values, p):
    v = sorted(values)
    return v[max(1, math.ceil(p * len(v))) - 1]


def test_dashboard_shows_what_the_store_holds(gw):
    key = traffic(gw)
    time.sleep(0.3)
    rows, verdicts = store(gw)
    answered = [r for r in rows if r["status"] == 200]
    cost = sum(r["cost_usd"] for r in rows)
    base = sum(r.get("baseline_cost_usd") or 0 for r in rows)
    escalated = sum(1 for r in answered if r["escalations"])
    good = sum(1 for v in verdicts.values() if v in ("good", "needless_escalation"))

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    out = subprocess.run(["node", str(BROWSER / "dashboard.mjs"), gw.url, ADMIN, str(shot)],
                         capture_output=True, text=True, timeout=120, cwd=BROWSER)
    assert out.returncode == 0, out.stderr
    page = json.loads(out.stdout.strip().splitlines()[-1])

    assert page["errors"] == [], page["errors"]
    assert page["external"] == [], "the dashboard must work air-gapped"
    assert page["signin_status"] == 401
    assert page["wrong_key_message"] == "That is not the admin key."
    k = page["kpis"]
    for field, want in [("kpi-cost", cost), ("kpi-baseline", base), ("kpi-savings", base - cost)]:
        shown, tol = money(k[field])
        assert abs(shown - want) <= tol, (field, k[field], want)
    assert percent(k["kpi-savings-pct"]) == pytest.approx((base - cost) / base * 100, abs=0.051)
    assert int(k["kpi-requests"]) == len(rows) == len(CASCADE_PROMPTS) + 1
    assert k["kpi-errors"] == "1 not answered"
    assert percent(k["kpi-escalation"]) == pytest.approx(escalated / len(answered) * 100, abs=0.051)
    assert percent(k["kpi-quality"]) == pytest.approx(good / len(verdicts) * 100, abs=0.051)
    assert k["kpi-reviewed"] == f"{good} of {len(verdicts)} reviewed answers good"
    assert k["kpi-p95"] == f"{nearest_rank([r['latency_ms'] for r in answered], 0.95)} ms"
    assert k["baseline"] == "baseline: gpt-4o"

    routes = {r[0]: r for r in page["routes"]}
    assert int(routes["support"][1]) == len(CASCADE_PROMPTS)
    assert int(routes["flaky"][1]) == 1
    keys = {r[0]: r for r in page["keys"]}
    assert int(keys[key["id"]][1]) == len(CASCADE_PROMPTS) // 2
    assert int(keys["anonymous"][1]) == len(CASCADE_PROMPTS) - len(CASCADE_PROMPTS) // 2 + 1

    tiers = {}
    for r in answered:
        tiers[r["served"]["tier"]] = tiers.get(r["served"]["tier"], 0) + 1
    chart = page["charts"]["tiers"]
    assert dict(zip(chart["labels"], chart["data"][0])) == tiers
    spend = page["charts"]["spend"]["data"]
    assert spend[1][-1] == pytest.approx(cost, rel=1e-9)  # cumulative actual spend
    assert spend[0][-1] == pytest.approx(base, rel=1e-9)  # cumulative baseline
    assert page["charts"]["latency"]["labels"] == sorted({r["served"]["deployment"] for r in answered},
                                                          key=page["charts"]["latency"]["labels"].index)
    volume = page["charts"]["volume"]["data"]
    assert sum(volume[0]) + sum(volume[1]) == len(rows)
    assert sum(volume[1]) == escalated
    assert shot.stat().st_size > 20_000


def test_dashboard_api_needs_the_admin_key(gw):
    r = httpx.get(gw.url + "/dashboard/api/summary")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_admin_key"
    r = httpx.get(gw.url + "/dashboard/api/summary", headers={"authorization": "Bearer wrong-key-1234567"})
    assert r.status_code == 401
    r = admin(gw, "GET", "/dashboard/api/summary?since=7d")
    assert r.status_code == 200 and r.json()["bucket_ms"] == 6 * 3_600_000
    r = admin(gw, "GET", "/dashboard/api/summary?since=tomorrow")
    assert r.status_code == 400 and r.json()["error"]["param"] == "since"
    # A forged session cookie is refused; the page itself shows the sign-in form.
    r = httpx.get(gw.url + "/dashboard", cookies={"slmgate_dashboard": f"{int(time.time()) + 999}.{'0' * 64}"})
    assert r.status_code == 401 and "admin key" in r.text
    assert "content-security-policy" in r.headers


def test_without_an_admin_key_the_dashboard_is_open_on_loopback_only(session_tmp, fake_upstream):
    cfg = f"""
[server]
listen = "127.0.0.1:@PORT@"
{remote("fake", fake_upstream.url + "/ok/v1")}"""
    g = Gateway("dashboard-open", cfg, session_tmp)
    try:
        r = httpx.get(g.url + "/dashboard")
        assert r.status_code == 200 and "chart.js" in r.text
        assert httpx.get(g.url + "/dashboard/api/summary").status_code == 200
        js = httpx.get(g.url + "/dashboard/assets/chart.js")
        assert js.status_code == 200 and "Chart.js v4" in js.text[:200]
    finally:
        g.stop()
