"""LoRA adapters through the gateway: `[models.smollm2] adapters = {...}` serves each adapter
as its own deployment `smollm2:NAME` on the one SmolLM2 engine.

The adapters are made here with the `gguf` package (tests/lora.py): none can be fetched
offline. What a user relies on: an adapter changes the answer, the same way every time; a
route can send a request to an adapter; requests on different adapters running at once each
get their own answer; replacing an adapter's file (or `PUT /admin/adapters/...`) swaps the
weights without a restart, audited and counted; a bad file is refused and the old weights
keep serving.
"""

import concurrent.futures as cf
import os
import shutil
import time

import httpx
import pytest
from openai import OpenAI

from conftest import SMOL, Gateway, admin_call, audit_entries, smol
from lora import write_lora

ADMIN = "adm-adapters-secret-77"
PROMPT = "Name three colours of the rainbow."


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("lora")
    legal = write_lora(d / "legal.gguf", SMOL, seed=1)
    medical = write_lora(d / "medical.gguf", SMOL, seed=2)
    live = d / "live.gguf"
    shutil.copy(legal, live)
    return {"legal": legal, "medical": medical, "live": live, "dir": d}


@pytest.fixture(scope="module")
def gw(session_tmp, files):
    cfg = f"""
[server]
listen = "127.0.0.1:@PORT@"
[auth]
admin_key = "{ADMIN}"
{smol(parallel=6)}
adapters = {{ legal = "{files['legal']}", medical = {{ path = "{files['medical']}", scale = 1.0 }}, live = "{files['live']}" }}

[routes.legal-desk]
tiers = [{{ name = "local", models = ["smollm2:legal"] }}]
"""
    g = Gateway("adapters", cfg, session_tmp)
    yield g
    g.stop()


def answer(gw, model, prompt=PROMPT):
    r = httpx.post(gw.url + "/v1/chat/completions", timeout=120,
                   json={"model": model, "max_tokens": 24, "temperature": 0,
                         "messages": [{"role": "user", "content": prompt}]})
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]["message"]["content"], r.headers


def wait_for(gw, model, want, timeout=15):
    deadline = time.time() + timeout
    got = None
    while time.time() < deadline:
        got, _ = answer(gw, model)
        if got == want:
            return
        time.sleep(0.5)
    raise AssertionError(f"{model} still answers {got!r}, want {want!r}")


def test_an_adapter_is_a_model_that_answers_differently_and_deterministically(gw):
    client = OpenAI(base_url=gw.url + "/v1", api_key="unused")
    base = client.chat.completions.create(model="smollm2", max_tokens=24, temperature=0,
                                          messages=[{"role": "user", "content": PROMPT}])
    legal = client.chat.completions.with_raw_response.create(
        model="smollm2:legal", max_tokens=24, temperature=0, messages=[{"role": "user", "content": PROMPT}])
    assert legal.headers["x-slmgate-model"] == "smollm2:legal"
    assert legal.headers["x-slmgate-provider"] == "local"
    legal_text = legal.parse().choices[0].message.content
    medical_text, _ = answer(gw, "smollm2:medical")
    assert legal_text != base.choices[0].message.content
    assert medical_text != base.choices[0].message.content
    assert legal_text != medical_text
    for _ in range(2):
        assert answer(gw, "smollm2:legal")[0] == legal_text
    ids = [m.id for m in client.models.list().data]
    assert {"smollm2", "smollm2:legal", "smollm2:medical", "smollm2:live"} <= set(ids)


def test_a_route_sends_requests_to_an_adapter(gw):
    routed, headers = answer(gw, "legal-desk")
    assert headers["x-slmgate-model"] == "smollm2:legal"
    assert routed == answer(gw, "smollm2:legal")[0]


def test_concurrent_requests_on_different_adapters_each_get_their_own_answer(gw):
    """Each answer under concurrency begins as its model answers alone. (Compared up to a
    little past where the three answers part, so a request decoded under another adapter
    would show; beyond it, a batch of another size can round the adapters' float32 products
    differently and flip a near-tie, e.g. end a sentence one step later.)"""
    models = ["smollm2", "smollm2:legal", "smollm2:medical"]
    full = {m: answer(gw, m)[0] for m in models}
    shared = max(len(os.path.commonprefix([full[a], full[b]])) for a in models for b in models if a != b)
    n = shared + 12  # a little past where the three part
    alone = {m: t[:n] for m, t in full.items()}
    assert len(set(alone.values())) == 3, alone
    with cf.ThreadPoolExecutor(9) as pool:
        got = list(pool.map(lambda m: (m, answer(gw, m)[0]), models * 3))
    for m, text in got:
        assert text[:n] == alone[m], m


def test_a_changed_file_is_swapped_in_without_a_restart(gw, files):
    legal_text = answer(gw, "smollm2:legal")[0]
    medical_text = answer(gw, "smollm2:medical")[0]
    assert answer(gw, "smollm2:live")[0] == legal_text, "live starts as a copy of legal"
    pid = gw.proc.pid
    shutil.copy(files["medical"], files["dir"] / "next.gguf")
    (files["dir"] / "next.gguf").replace(files["live"])
    wait_for(gw, "smollm2:live", medical_text)
    assert gw.proc.pid == pid and gw.proc.poll() is None
    assert "adapter live loaded" in gw.logs()
    metrics = httpx.get(gw.url + "/metrics").text
    assert 'slmgate_adapter_loads_total{adapter="live",deployment="smollm2:live",outcome="ok"} 1' in metrics


def test_the_admin_api_lists_and_loads_adapters_and_refuses_bad_files(gw, files):
    listed = admin_call(gw, ADMIN, "GET", "/admin/adapters").json()["data"]
    by = {a["deployment"]: a for a in listed}
    assert set(by) == {"smollm2:legal", "smollm2:medical", "smollm2:live"}
    assert by["smollm2:legal"]["base"] == "smollm2" and by["smollm2:legal"]["path"] == str(files["legal"])
    legal_text = answer(gw, "smollm2:legal")[0]

    r = admin_call(gw, ADMIN, "PUT", "/admin/adapters/smollm2:live", json={"path": str(files["legal"])})
    assert r.status_code == 200, r.text
    assert r.json()["generation"] > by["smollm2:live"]["generation"]
    assert answer(gw, "smollm2:live")[0] == legal_text, "loaded at once"

    junk = files["dir"] / "junk.gguf"
    junk.write_bytes(b"GGUF but not really")
    r = admin_call(gw, ADMIN, "PUT", "/admin/adapters/smollm2:live", json={"path": str(junk)})
    assert r.status_code == 400 and r.json()["error"]["param"] == "path", r.text
    assert "not a readable GGUF" in r.json()["error"]["message"]
    assert answer(gw, "smollm2:live")[0] == legal_text, "the old weights keep serving"

    r = admin_call(gw, ADMIN, "PUT", "/admin/adapters/smollm2", json={})
    assert r.status_code == 404 and r.json()["error"]["code"] == "adapter_not_found"
    r = httpx.put(gw.url + "/admin/adapters/smollm2:live", json={})
    assert r.status_code == 401

    time.sleep(0.5)  # events are written with the next group commit
    entries = audit_entries(gw, "adapter")
    assert any(e["endpoint"] == "gateway" and e["model"] == "smollm2:live" for e in entries), entries
    assert any(e["endpoint"] == "admin" and "loaded from" in e["error"] for e in entries), entries
    assert any(e["endpoint"] == "admin" and "failed" in e["error"] for e in entries), entries
