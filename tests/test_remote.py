"""Remote providers: a second slmgate serving Gemma 3 270M is the real upstream (OpenAI and
Anthropic wire formats); a scripted fake injects faults (timeouts, 429, 500, resets,
truncated streams) and stands in for Gemini's wire format."""

import time

import openai
import pytest

from conftest import Gateway, SMOL, smol


def remote(name, wire, base_url, **extra):
    lines = [f"[models.{name}]", 'type = "remote"', f'wire = "{wire}"', f'base_url = "{base_url}"',
             f'model = "{extra.pop("model", "gemma3")}"', 'api_key = "${UPSTREAM_KEY}"']
    for k, v in extra.items():
        lines.append(f"{k} = {v}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def hybrid(session_tmp, gemma_upstream, fake_upstream):
    g, f = gemma_upstream.url, fake_upstream.url
    fast = dict(connect_timeout_ms=500, first_byte_timeout_ms=1500, total_timeout_ms=10000, backoff_ms=50)
    cfg = f"""
[server]
listen = "127.0.0.1:@PORT@"

{smol()}

{remote("gemma", "openai", g + "/v1")}
{remote("gemma-anthropic", "anthropic", g)}
{remote("gemini", "gemini", f + "/gemini", model="gemini-2.0-flash")}
{remote("f-timeout", "openai", f + "/timeout/v1", max_retries=0, **fast)}
{remote("f-429", "openai", f + "/429/v1", max_retries=1, max_retry_after_ms=2000, **fast)}
{remote("f-429once", "openai", f + "/429once/v1", max_retries=2, max_retry_after_ms=2000, **fast)}
{remote("f-500", "openai", f + "/500/v1", max_retries=1, cooldown_failures=2, cooldown_secs=60, **fast)}
{remote("f-500b", "openai", f + "/500/v1", max_retries=0, cooldown_failures=0, **fast)}
{remote("f-reset", "openai", f + "/reset/v1", max_retries=0, **fast)}
{remote("f-truncated", "openai", f + "/truncated/v1", max_retries=0, **fast)}
{remote("f-midstream", "openai", f + "/midstream/v1", max_retries=0, **fast)}
{remote("f-refused", "openai", "http://127.0.0.1:9/v1", max_retries=1, **fast)}

[aliases]
hybrid = ["smollm2", "gemma"]
after-timeout = ["f-timeout", "gemma"]
after-429 = ["f-429", "gemma"]
after-500 = ["f-500", "gemma"]
after-reset = ["f-reset", "gemma"]
after-truncated = ["f-truncated", "gemma"]
after-refused = ["f-refused", "gemma"]
only-500 = ["f-500b"]
only-midstream = ["f-midstream"]
only-refused = ["f-refused"]
"""
    gw = Gateway("hybrid", cfg, session_tmp, env={"UPSTREAM_KEY": "sk-test-secret-123"})
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def client(hybrid):
    return openai.OpenAI(base_url=hybrid.url + "/v1", api_key="unused", max_retries=0, timeout=60)


def ask(client, model, stream=False, **kw):
    args = dict(model=model, messages=[{"role": "user", "content": "The capital of France is"}],
                max_tokens=8, temperature=0, **kw)
    if not stream:
        return client.chat.completions.with_raw_response.create(**args)
    return client.chat.completions.with_raw_response.create(stream=True, **args)


def stream_text(raw):
    return "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)


def test_openai_wire_to_real_upstream(client, gemma_upstream):
    r = ask(client, "gemma")
    assert r.headers["x-slmgate-model"] == "gemma" and r.headers["x-slmgate-provider"] == "openai"
    c = r.parse()
    direct = openai.OpenAI(base_url=gemma_upstream.url + "/v1", api_key="x").chat.completions.create(
        model="gemma3", messages=[{"role": "user", "content": "The capital of France is"}], max_tokens=8, temperature=0)
    assert c.choices[0].message.content == direct.choices[0].message.content
    assert c.usage.completion_tokens == direct.usage.completion_tokens
    s = ask(client, "gemma", stream=True)
    assert stream_text(s) == direct.choices[0].message.content


def test_anthropic_wire_to_real_upstream(client, gemma_upstream):
    r = ask(client, "gemma-anthropic")
    assert r.headers["x-slmgate-provider"] == "anthropic"
    c = r.parse()
    direct = ask(client, "gemma").parse()
    assert c.choices[0].message.content == direct.choices[0].message.content
    assert c.usage.prompt_tokens == direct.usage.prompt_tokens
    assert stream_text(ask(client, "gemma-anthropic", stream=True)) == direct.choices[0].message.content


def test_upstream_receives_the_key_and_logs_do_not(client, hybrid, fake_upstream):
    fake_upstream.reset()
    ask(client, "gemini")
    reqs = fake_upstream.log()
    assert reqs[0]["headers"]["x-goog-api-key"] == "sk-test-secret-123"
    assert "sk-test-secret-123" not in hybrid.logs()


def test_gemini_wire_translation(client, fake_upstream):
    fake_upstream.reset()
    c = client.chat.completions.create(model="gemini", max_tokens=7, temperature=0.5, stop=["END"],
                                       messages=[{"role": "system", "content": "Be brief."},
                                                 {"role": "user", "content": "hi"}])
    assert c.choices[0].message.content == "gemini says hi"
    assert c.usage.prompt_tokens == 4 and c.usage.completion_tokens == 3
    body = fake_upstream.log()[0]["body"]
    assert fake_upstream.log()[0]["path"].endswith("/models/gemini-2.0-flash:generateContent")
    assert body["systemInstruction"]["parts"][0]["text"] == "Be brief."
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert body["generationConfig"]["maxOutputTokens"] == 7
    assert body["generationConfig"]["stopSequences"] == ["END"]
    parts = [ch.choices[0].delta.content or "" for ch in client.chat.completions.create(
        model="gemini", messages=[{"role": "user", "content": "hi"}], stream=True) if ch.choices]
    assert "".join(parts) == "gemini says hi"


@pytest.mark.parametrize("alias", ["after-timeout", "after-429", "after-500", "after-reset", "after-refused"])
@pytest.mark.parametrize("stream", [False, True])
def test_fault_falls_back_to_the_next_deployment(client, alias, stream):
    expected = ask(client, "gemma").parse().choices[0].message.content
    r = ask(client, alias, stream=stream)
    assert r.headers["x-slmgate-model"] == "gemma"
    assert int(r.headers["x-slmgate-attempts"]) == 2
    text = stream_text(r) if stream else r.parse().choices[0].message.content
    assert text == expected


def test_truncated_stream_before_content_falls_back(client):
    expected = ask(client, "gemma").parse().choices[0].message.content
    r = ask(client, "after-truncated", stream=True)
    assert r.headers["x-slmgate-model"] == "gemma"
    assert stream_text(r) == expected


def test_retry_after_is_honoured(client, fake_upstream):
    fake_upstream.reset()
    t0 = time.time()
    r = client.chat.completions.with_raw_response.create(model="f-429once", max_tokens=3,
                                                         messages=[{"role": "user", "content": "hi"}])
    assert r.parse().choices[0].message.content == "fake upstream answer"
    log = [x for x in fake_upstream.log() if x["mode"] == "429once"]
    assert len(log) == 2
    assert log[1]["t"] - log[0]["t"] >= 0.95  # waited Retry-After: 1


def test_no_fallback_gives_one_clear_error(client):
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model="only-500", messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 502
    assert e.value.body["code"] == "upstream_error"
    assert "f-500b" in e.value.body["message"]
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model="only-refused", messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 502 and e.value.body["code"] == "upstream_unreachable"


def test_stream_failing_after_content_raises_one_error(client):
    got = []
    with pytest.raises(openai.APIError) as e:
        for ch in client.chat.completions.create(model="only-midstream", messages=[{"role": "user", "content": "hi"}], stream=True):
            got.extend(c.delta.content or "" for c in ch.choices)
    assert "".join(got) == "partial answer"
    assert "without [DONE]" in str(e.value)


def test_failing_deployment_cools_down(client, hybrid, fake_upstream):
    # f-500: each request retries once (2 calls) and counts one failure; 2 failures start a cooldown.
    for _ in range(2):
        assert ask(client, "after-500").headers["x-slmgate-model"] == "gemma"
    fake_upstream.reset()
    r = ask(client, "after-500")
    assert r.headers["x-slmgate-model"] == "gemma"
    assert r.headers["x-slmgate-attempts"] == "1"  # cooling: tried last, gemma answered first
    assert [x for x in fake_upstream.log() if x["mode"] == "500"] == []
    import httpx
    m = httpx.get(hybrid.url + "/metrics").text
    assert 'slmgate_deployment_cooldowns_total{deployment="f-500"} 1' in m
    assert 'slmgate_fallbacks_total{from="f-500",route="after-500",to="gemma"}' in m


def test_local_first_alias(client):
    r = ask(client, "hybrid")
    assert r.headers["x-slmgate-model"] == "smollm2"


def test_local_context_overflow_falls_back_to_remote(client):
    # 512-token local context; the remote (1024) can take it.
    r = client.chat.completions.with_raw_response.create(
        model="hybrid", max_tokens=4, messages=[{"role": "user", "content": "word " * 700}])
    assert r.headers["x-slmgate-model"] == "gemma"
    assert r.headers["x-slmgate-fallback-from"] == "smollm2"


def test_upstream_400_is_passed_back_without_fallback(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="gemma", messages=[{"role": "user", "content": "word " * 2000}])
    assert "context" in e.value.body["message"]
