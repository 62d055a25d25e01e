"""The Responses API (the default of OpenAI's Agents SDK) and legacy completions, with the
official `openai` SDK against SmolLM2 in-process: answers, streams with the official event
names, `previous_response_id` continuations, stored responses that only their key can see,
function calls, and refusals audited like chat requests."""

import json

import httpx
import openai
import pytest

from conftest import Gateway, smol

ADMIN = "adm-resp-secret-456"


@pytest.fixture(scope="module")
def gw(session_tmp):
    cfg = f"""
[server]
listen = "127.0.0.1:@PORT@"

[auth]
enabled = true
admin_key = "${{RESP_ADMIN_KEY}}"

{smol(context=1024)}

[aliases]
auto = ["smollm2"]
"""
    g = Gateway("responses", cfg, session_tmp, env={"RESP_ADMIN_KEY": ADMIN})
    yield g
    g.stop()


def new_key(gw):
    r = httpx.post(gw.url + "/admin/keys", json={"name": "t"}, headers={"authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 201, r.text
    return r.json()["key"]


@pytest.fixture(scope="module")
def client(gw):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=new_key(gw), max_retries=0, timeout=120)


def test_answers_with_output_text_and_usage(client):
    r = client.responses.create(model="auto", input="What is 2+2?", instructions="Answer briefly.",
                                max_output_tokens=20, temperature=0)
    assert r.object == "response" and r.id.startswith("resp_")
    assert r.status in ("completed", "incomplete")
    assert r.output[0].type == "message" and r.output[0].role == "assistant"
    assert r.output_text.strip()
    assert r.usage.input_tokens > 5 and 1 <= r.usage.output_tokens <= 20
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert r.instructions == "Answer briefly."


def test_max_output_tokens_is_incomplete(client):
    r = client.responses.create(model="auto", input="Tell me a long story.", max_output_tokens=3)
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"


def test_stream_events_match_the_whole_answer(client):
    args = dict(model="auto", input=[{"role": "user", "content": [{"type": "input_text", "text": "Name a color."}]}],
                max_output_tokens=60, temperature=0)
    whole = client.responses.create(**args)
    kinds, deltas, final = [], [], None
    for ev in client.responses.create(stream=True, **args):
        kinds.append(ev.type)
        if ev.type == "response.output_text.delta":
            deltas.append(ev.delta)
        if ev.type in ("response.completed", "response.incomplete"):
            final = ev.response
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    for k in ["response.output_item.added", "response.content_part.added", "response.output_text.done",
              "response.content_part.done", "response.output_item.done"]:
        assert k in kinds
    assert "".join(deltas) == whole.output_text == final.output_text
    # The SDK's own stream helper assembles the same response (it needs `response.completed`).
    assert whole.status == "completed"
    with client.responses.stream(**args) as s:
        assert s.get_final_response().output_text == whole.output_text


def test_previous_response_id_continues_the_conversation(client):
    first = client.responses.create(model="auto", input="My name is Alice. Say OK.", max_output_tokens=8, temperature=0)
    second = client.responses.create(model="auto", input="What is my name?", previous_response_id=first.id,
                                     max_output_tokens=16, temperature=0)
    assert second.previous_response_id == first.id
    # The earlier turns are in the prompt: more input tokens than the question alone.
    alone = client.responses.create(model="auto", input="What is my name?", max_output_tokens=16, temperature=0)
    assert second.usage.input_tokens > alone.usage.input_tokens + 8
    # Continuing from a stream's stored response works too.
    streamed = list(client.responses.create(model="auto", input="Say hi.", max_output_tokens=4, stream=True))
    sid = streamed[-1].response.id
    third = client.responses.create(model="auto", input="Again.", previous_response_id=sid, max_output_tokens=4)
    assert third.previous_response_id == sid


def test_get_and_delete_stored(client):
    r = client.responses.create(model="auto", input="Hi", max_output_tokens=4)
    got = client.responses.retrieve(r.id)
    assert got.id == r.id and got.output_text == r.output_text
    client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="auto", input="x", previous_response_id=r.id, max_output_tokens=2)


def test_store_false_is_not_kept(client):
    r = client.responses.create(model="auto", input="Hi", max_output_tokens=4, store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)


def test_another_key_cannot_see_a_response(gw, client):
    r = client.responses.create(model="auto", input="secret plans", max_output_tokens=4)
    other = openai.OpenAI(base_url=gw.url + "/v1", api_key=new_key(gw), max_retries=0)
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.create(model="auto", input="go on", previous_response_id=r.id, max_output_tokens=2)
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(r.id)
    assert client.responses.retrieve(r.id).id == r.id


WEATHER = {"type": "function", "name": "get_weather", "description": "Get the weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def test_function_call_round_trip(client):
    r = client.responses.create(model="auto", input="What is the weather in Paris?", tools=[WEATHER],
                                tool_choice="required", max_output_tokens=80, temperature=0)
    calls = [o for o in r.output if o.type == "function_call"]
    assert calls and calls[0].name == "get_weather" and calls[0].call_id.startswith("call_")
    assert isinstance(json.loads(calls[0].arguments)["city"], str)
    follow = client.responses.create(model="auto", previous_response_id=r.id, tools=[WEATHER], max_output_tokens=30,
                                     input=[{"type": "function_call_output", "call_id": calls[0].call_id,
                                             "output": '{"temp_c": 21}'}], temperature=0)
    assert follow.status in ("completed", "incomplete") and follow.output


def test_function_call_streams(client):
    events = list(client.responses.create(model="auto", input="Weather in Oslo?", tools=[WEATHER],
                                          tool_choice={"type": "function", "name": "get_weather"},
                                          max_output_tokens=80, temperature=0, stream=True))
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds and "response.function_call_arguments.done" in kinds
    done = [e for e in events if e.type == "response.function_call_arguments.done"][0]
    assert isinstance(json.loads(done.arguments)["city"], str)
    assert events[-1].response.output[-1].type == "function_call"


def test_bad_input_is_400_naming_the_item(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="auto", input=[{"role": "user", "content": "a"}, {"type": "computer_call"}])
    assert e.value.body["param"] == "input[1]"
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="auto", input="x", tools=[{"type": "function", "name": "f",
                                                                  "parameters": {"type": "object", "properties": {"a": {"type": "nope"}}}}])
    assert e.value.body["param"] == "tools[0].function.parameters"


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="nope", input="x")


# ---- legacy completions ------------------------------------------------------------------

def test_completion_answers_with_logprobs(client):
    c = client.completions.create(model="auto", prompt="The capital of France is", max_tokens=5,
                                  temperature=0, logprobs=2)
    assert c.object == "text_completion"
    ch = c.choices[0]
    assert "Paris" in ch.text
    assert ch.finish_reason in ("stop", "length")
    assert "".join(ch.logprobs.tokens) == ch.text
    assert len(ch.logprobs.token_logprobs) == len(ch.logprobs.tokens) == c.usage.completion_tokens
    assert all(lp <= 0 for lp in ch.logprobs.token_logprobs)
    assert all(1 <= len(t) <= 2 for t in ch.logprobs.top_logprobs)
    assert ch.logprobs.text_offset[0] == 0


def test_completion_uses_the_raw_prompt(client):
    """No chat template: the prompt's tokens are only the prompt's."""
    c = client.completions.create(model="auto", prompt="Hello", max_tokens=1)
    chat = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "Hello"}], max_tokens=1)
    assert c.usage.prompt_tokens < 5 < chat.usage.prompt_tokens


def test_completion_stream_matches(client):
    args = dict(model="auto", prompt="One, two, three,", max_tokens=8, temperature=0)
    whole = client.completions.create(**args).choices[0].text
    parts = [ch.choices[0].text for ch in client.completions.create(stream=True, **args) if ch.choices]
    assert "".join(parts) == whole


def test_completion_bad_prompt_is_400(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="auto", prompt=[1, 2, 3])
    assert e.value.body["param"] == "prompt"
