"""The OpenAI SDK against slmgate serving SmolLM2 in-process (only base_url changed)."""

import json
import math

import httpx
import openai
import pytest


@pytest.fixture(scope="module")
def client(local_gw):
    return openai.OpenAI(base_url=local_gw.url + "/v1", api_key="unused", max_retries=0)


def test_chat_non_stream(client):
    r = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "What is 2+2?"}], temperature=0, max_tokens=20)
    assert r.headers["x-slmgate-model"] == "smollm2"
    assert r.headers["x-slmgate-provider"] == "local"
    assert r.headers["x-request-id"]
    c = r.parse()
    assert "4" in c.choices[0].message.content
    assert c.choices[0].finish_reason in ("stop", "length")
    assert c.usage.prompt_tokens > 10
    assert 1 <= c.usage.completion_tokens <= 20
    assert c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens


def test_system_message_and_text_parts(client):
    c = client.chat.completions.create(
        model="smollm2", temperature=0, max_tokens=12,
        messages=[{"role": "system", "content": "You answer in one word."},
                  {"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}]}])
    assert c.choices[0].message.content.strip()


def test_stream_matches_non_stream(client):
    msgs = [{"role": "user", "content": "Name three colors."}]
    full = client.chat.completions.create(model="auto", messages=msgs, temperature=0, max_tokens=24)
    parts, usage, finish = [], None, None
    for ch in client.chat.completions.create(model="auto", messages=msgs, temperature=0, max_tokens=24,
                                             stream=True, stream_options={"include_usage": True}):
        if ch.usage:
            usage = ch.usage
        for c in ch.choices:
            parts.append(c.delta.content or "")
            finish = c.finish_reason or finish
    assert "".join(parts) == full.choices[0].message.content
    assert finish == full.choices[0].finish_reason
    assert usage is not None and usage.completion_tokens == full.usage.completion_tokens


def test_stream_without_include_usage_has_no_usage_chunk(client):
    chunks = list(client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "Hi"}],
                                                 max_tokens=4, temperature=0, stream=True))
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "length"


def test_max_tokens_length(client):
    c = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "Tell me a long story."}],
                                       max_tokens=3, temperature=0)
    assert c.choices[0].finish_reason == "length"
    assert c.usage.completion_tokens == 3


def test_stop_sequence(client):
    c = client.chat.completions.create(model="auto", temperature=0, max_tokens=40, stop=["5"],
                                       messages=[{"role": "user", "content": "Count from 1 to 10 separated by commas."}])
    assert "5" not in c.choices[0].message.content
    assert c.choices[0].finish_reason == "stop"


def test_logprobs(client):
    c = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "What is 2+2?"}],
                                       temperature=0, max_tokens=6, logprobs=True, top_logprobs=3)
    lp = c.choices[0].logprobs.content
    assert len(lp) == c.usage.completion_tokens
    for t in lp:
        assert t.logprob <= 0
        assert len(t.top_logprobs) == 3
        assert abs(t.top_logprobs[0].logprob - t.logprob) < 1e-4  # greedy = argmax
        assert bytes(t.bytes).decode("utf-8", "replace") == t.token or t.token
    assert "".join(t.token for t in lp).strip() in c.choices[0].message.content or c.choices[0].message.content.startswith("".join(t.token for t in lp).strip()[:5])


def test_logprobs_streaming(client):
    got = []
    for ch in client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "Hi"}],
                                             temperature=0, max_tokens=4, logprobs=True, stream=True):
        for c in ch.choices:
            if c.logprobs and c.logprobs.content:
                got.extend(c.logprobs.content)
    assert len(got) == 4
    assert all(t.logprob <= 0 for t in got)


def test_json_schema_output_parses(client):
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
              "required": ["city", "population"], "additionalProperties": False}
    c = client.chat.completions.create(
        model="auto", temperature=0, max_tokens=80,
        messages=[{"role": "user", "content": "Give a city and its population as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": True}})
    v = json.loads(c.choices[0].message.content)
    assert isinstance(v["city"], str) and isinstance(v["population"], int)
    assert set(v) == {"city", "population"}


def test_json_object_output_parses(client):
    c = client.chat.completions.create(
        model="auto", temperature=0, max_tokens=200,
        messages=[{"role": "user", "content": 'What is 2+2? Reply as JSON like {"answer": 0}.'}],
        response_format={"type": "json_object"})
    assert c.choices[0].finish_reason == "stop", c.choices[0].message.content
    assert isinstance(json.loads(c.choices[0].message.content), dict)


def test_seeded_sampling_is_reproducible(client):
    args = dict(model="auto", messages=[{"role": "user", "content": "Write a word."}], temperature=1.0,
                max_tokens=12, seed=42)
    a = client.chat.completions.create(**args).choices[0].message.content
    b = client.chat.completions.create(**args).choices[0].message.content
    assert a == b


def cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_embeddings(client):
    r = client.embeddings.create(model="all-minilm-l6-v2", input=[
        "The cat sits on the mat.", "A cat is sitting on a mat.", "Quarterly revenue grew by 12 percent."])
    v = [d.embedding for d in r.data]
    assert [d.index for d in r.data] == [0, 1, 2]
    assert all(len(x) == 384 for x in v)
    assert abs(math.sqrt(sum(x * x for x in v[0])) - 1) < 1e-3
    assert cos(v[0], v[1]) > 0.6 > 0.2 > cos(v[0], v[2])
    assert r.usage.prompt_tokens > 10


def test_embeddings_base64_matches_float(client):
    f = client.embeddings.create(model="all-minilm-l6-v2", input="hello", encoding_format="float").data[0].embedding
    # The SDK decodes base64 itself when it asks for it by default.
    b = client.embeddings.create(model="all-minilm-l6-v2", input="hello").data[0].embedding
    assert max(abs(x - y) for x, y in zip(f, b)) < 1e-6


def test_models_list(client):
    ids = {m.id for m in client.models.list().data}
    assert {"auto", "smollm2", "all-minilm-l6-v2"} <= ids
    assert client.models.retrieve("smollm2").id == "smollm2"


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    assert e.value.body["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="nope", input="x")
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


@pytest.mark.parametrize("args,param", [
    (dict(n=2), "n"),
    (dict(temperature=5), "temperature"),
    (dict(top_p=0), "top_p"),
    (dict(max_tokens=0), "max_tokens"),
    (dict(top_logprobs=3), "top_logprobs"),
    (dict(stop=["a", "b", "c", "d", "e"]), "stop"),
])
def test_bad_params_are_400(client, args, param):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}], **args)
    assert e.value.body["param"] == param
    assert e.value.body["type"] == "invalid_request_error"


def test_bad_json_schema_is_400(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}],
                                       response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}}}})
    assert "response_format" in (e.value.body.get("param") or "")


def test_image_parts_rejected_by_local_model(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}])
    assert "text" in e.value.body["message"]


def test_context_overflow_is_400(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "word " * 2000}])
    assert e.value.body["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}], max_tokens=5000)
    assert e.value.body["code"] == "context_length_exceeded"


def test_malformed_json_names_the_problem(local_gw):
    r = httpx.post(local_gw.url + "/v1/chat/completions", content=b'{"model": "auto", "messages": [', headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_json"
    r = httpx.post(local_gw.url + "/v1/chat/completions", json={"model": "auto", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "temperature"
    r = httpx.post(local_gw.url + "/v1/chat/completions", json={"messages": []})
    assert r.status_code == 400 and "model" in r.json()["error"]["message"]


def test_body_too_large_is_413(local_gw):
    r = httpx.post(local_gw.url + "/v1/chat/completions", json={"model": "auto", "messages": [{"role": "user", "content": "x" * 100_000}]})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"


def test_unknown_path_and_method(local_gw):
    r = httpx.get(local_gw.url + "/v1/nothing")
    assert r.status_code == 404 and "error" in r.json()
    r = httpx.get(local_gw.url + "/v1/chat/completions")
    assert r.status_code == 405 and "error" in r.json()


def test_request_id_is_echoed(local_gw):
    r = httpx.post(local_gw.url + "/v1/chat/completions", headers={"x-request-id": "abc-123"},
                   json={"model": "auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})
    assert r.headers["x-request-id"] == "abc-123"


def test_health_ready_metrics(local_gw, client):
    assert httpx.get(local_gw.url + "/health").json()["status"] == "ok"
    assert httpx.get(local_gw.url + "/ready").json()["status"] == "ready"
    client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    for _ in client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}], max_tokens=2, stream=True):
        pass
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    m = httpx.get(local_gw.url + "/metrics").text
    assert 'slmgate_requests_total{deployment="smollm2",route="auto",status="200"}' in m
    assert 'slmgate_tokens_total{deployment="smollm2",kind="completion"}' in m
    assert "slmgate_time_to_first_token_seconds_bucket" in m
    assert 'slmgate_errors_total{code="model_not_found"}' in m
    assert 'slmgate_queue_depth{deployment="smollm2"} 0' in m
    assert "slmgate_request_duration_seconds_bucket" in m


def test_client_disconnect_cancels_generation(local_gw, client):
    with httpx.stream("POST", local_gw.url + "/v1/chat/completions",
                      json={"model": "auto", "stream": True, "max_tokens": 900,
                            "messages": [{"role": "user", "content": "Write a very long essay about oceans."}]}) as r:
        for i, _ in enumerate(r.iter_lines()):
            if i > 3:
                break
    # The slot is freed: metrics count the cancellation and new requests are served.
    import time
    for _ in range(50):
        m = httpx.get(local_gw.url + "/metrics").text
        if 'slmgate_cancelled_total{deployment="smollm2"}' in m and 'slmgate_active_sequences{deployment="smollm2"} 0' in m:
            break
        time.sleep(0.1)
    assert 'slmgate_cancelled_total{deployment="smollm2"}' in m
    assert 'slmgate_active_sequences{deployment="smollm2"} 0' in m
    assert client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}], max_tokens=2).choices



def test_penalties_and_logit_bias_are_validated(client):
    r = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "List fruits."}],
                                       temperature=0, max_tokens=8, presence_penalty=1.5, frequency_penalty=1.5,
                                       logit_bias={"42": -5})
    assert r.choices[0].message.content
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}], logit_bias={"99999999": 5})
    assert "vocabulary" in e.value.body["message"]
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}], logit_bias={"x": 5})
    assert e.value.body["param"] == "logit_bias"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}], frequency_penalty=3)
    assert e.value.body["param"] == "frequency_penalty"
