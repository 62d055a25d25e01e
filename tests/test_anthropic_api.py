"""The Anthropic SDK against slmgate's /v1/messages, served by the local SmolLM2."""

import anthropic
import pytest


@pytest.fixture(scope="module")
def client(local_gw):
    return anthropic.Anthropic(base_url=local_gw.url, api_key="unused", max_retries=0)


def test_messages_non_stream(client):
    m = client.messages.create(model="auto", max_tokens=20, extra_body={"temperature": 0},
                               system="You are a calculator.",
                               messages=[{"role": "user", "content": "What is 2+2?"}])
    assert m.role == "assistant"
    assert m.content[0].type == "text" and m.content[0].text.strip()
    assert m.stop_reason in ("end_turn", "max_tokens")
    assert m.usage.input_tokens > 5 and 1 <= m.usage.output_tokens <= 20


def test_messages_stream_matches_non_stream(client):
    args = dict(model="auto", max_tokens=16, extra_body={"temperature": 0}, messages=[{"role": "user", "content": "Name a fruit."}])
    full = client.messages.create(**args)
    with client.messages.stream(**args) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == full.content[0].text
    assert final.stop_reason == full.stop_reason
    assert final.usage.output_tokens == full.usage.output_tokens


def test_max_tokens_stop_reason(client):
    m = client.messages.create(model="auto", max_tokens=2, messages=[{"role": "user", "content": "Tell a story."}])
    assert m.stop_reason == "max_tokens"


def test_unknown_model_is_404(client):
    with pytest.raises(anthropic.NotFoundError) as e:
        client.messages.create(model="nope", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert e.value.body["type"] == "error"
    assert e.value.body["error"]["type"] == "invalid_request_error"


def test_bad_role_is_400(client):
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="auto", max_tokens=5, messages=[{"role": "system", "content": "hi"}])
