"""`make run`'s embedded config: with a provider key in the environment, `auto` is local
SmolLM2 first with a cascade to that provider (here a second slmgate serving Gemma 3 stands
in for OpenAI through OPENAI_BASE_URL); without one, the local model alone. Either way the
start-up log says which tiers are live."""

import os

import openai
import pytest

from conftest import CASCADE_PROMPTS, Gateway


@pytest.fixture(scope="module")
def hybrid(session_tmp, gemma_upstream):
    env = {"OPENAI_API_KEY": "sk-test-hybrid", "OPENAI_BASE_URL": gemma_upstream.url + "/v1",
           "OPENAI_MODEL": "gemma3", "ANTHROPIC_API_KEY": ""}
    g = Gateway("hybrid-default", None, session_tmp, env=env)
    yield g
    g.stop()


def test_key_makes_auto_a_cascade(hybrid):
    logs = hybrid.logs()
    assert "local [smollm2] → frontier [frontier] (cascade)" in logs
    client = openai.OpenAI(base_url=hybrid.url + "/v1", api_key="unused", max_retries=0, timeout=120)
    tiers = set()
    for p in CASCADE_PROMPTS:
        r = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": p}], temperature=0, max_tokens=16)
        tiers.add(r.headers["x-slmgate-tier"])
        assert float(r.headers["x-slmgate-baseline-cost-usd"]) > 0
    # Some prompts stay local, some escalate to the provider, from the first request on.
    assert tiers == {"local", "frontier"}
    assert "sk-test-hybrid" not in hybrid.logs()


def test_no_key_serves_the_local_model_alone(session_tmp):
    env = {k: "" for k in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    g = Gateway("local-default", None, session_tmp, env=env)
    try:
        assert "=\x1b[0mauto [smollm2]\n" in g.logs() and "frontier" not in g.logs()
        c = openai.OpenAI(base_url=g.url + "/v1", api_key="unused", max_retries=0).chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
        assert c.headers["x-slmgate-model"] == "smollm2"
    finally:
        g.stop()
