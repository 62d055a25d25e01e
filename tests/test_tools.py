"""Tool calling as agents use it: the OpenAI and Anthropic SDKs and LangChain against SmolLM2
in-process, calls passed through to a real upstream (a second slmgate serving Gemma 3) on the
OpenAI and Anthropic wires, and a cascade judging a call by its own logprobs."""

import json

import anthropic
import httpx
import openai
import pytest

from conftest import Gateway, remote, smol

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "The city name"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "Get the local time in a timezone",
    "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]}}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def valid_weather_args(args):
    """What the schema allows: a string city, an optional unit from the enum, nothing else."""
    assert isinstance(args["city"], str)
    assert set(args) <= {"city", "unit"}
    assert args.get("unit", "celsius") in ("celsius", "fahrenheit")


@pytest.fixture(scope="module")
def gw(session_tmp, gemma_upstream):
    g = gemma_upstream.url
    cfg = f"""
[server]
listen = "127.0.0.1:@PORT@"

{smol(context=1024)}
{remote("gemma", g + "/v1", model="gemma3", max_retries=0)}
{remote("gemma-anthropic", g, model="gemma3", wire="anthropic", max_retries=0)}

[aliases]
auto = ["smollm2"]

[routes.cascade]
tiers = [{{ name = "local", models = ["smollm2"] }}, {{ name = "strong", models = ["gemma"] }}]
cascade = {{ signal = "mean_logprob", threshold = -100.0, first_tokens = 8 }}

[routes.escalate]
tiers = [{{ name = "local", models = ["smollm2"] }}, {{ name = "strong", models = ["gemma"] }}]
cascade = {{ signal = "mean_logprob", threshold = 100.0, first_tokens = 8 }}
"""
    gw = Gateway("tools", cfg, session_tmp)
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def client(gw):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0, timeout=120)


def forced(client, model="auto", **kw):
    args = dict(model=model, messages=ASK, tools=[WEATHER, TIME], tool_choice="required",
                temperature=0, max_tokens=80)
    args.update(kw)
    return client.chat.completions.create(**args)


def test_forced_call_parses_and_validates(client):
    c = forced(client)
    choice = c.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name in ("get_weather", "get_time")
    args = json.loads(call.function.arguments)
    if call.function.name == "get_weather":
        valid_weather_args(args)
    else:
        assert isinstance(args["timezone"], str)


def test_named_choice_calls_that_function(client):
    c = forced(client, tool_choice={"type": "function", "function": {"name": "get_time"}})
    calls = c.choices[0].message.tool_calls
    assert {k.function.name for k in calls} == {"get_time"}
    assert isinstance(json.loads(calls[0].function.arguments)["timezone"], str)


def test_auto_either_answers_or_calls(client):
    for prompt in ["What is the weather in Paris?", "Say hello.", "What time is it in Tokyo?"]:
        c = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": prompt}],
                                           tools=[WEATHER, TIME], temperature=0, max_tokens=60)
        m = c.choices[0].message
        if m.tool_calls:
            assert c.choices[0].finish_reason == "tool_calls"
            for call in m.tool_calls:
                args = json.loads(call.function.arguments)
                assert call.function.name in ("get_weather", "get_time") and isinstance(args, dict)
        else:
            assert m.content and "<tool_call>" not in m.content


def test_tool_choice_none_answers_in_text(client):
    c = forced(client, tool_choice="none", max_tokens=20)
    assert c.choices[0].message.tool_calls is None and c.choices[0].message.content


def test_two_step_round_trip(client):
    first = forced(client, tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "get_weather"}})
    call = first.choices[0].message.tool_calls[0]
    messages = ASK + [first.choices[0].message.model_dump(exclude_none=True),
                      {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21, "sky": "sunny"}'}]
    second = client.chat.completions.create(model="auto", messages=messages, tools=[WEATHER],
                                            temperature=0, max_tokens=40)
    m = second.choices[0].message
    # The model has its result: it answers (or, being small, calls again; either is well
    # formed; a 135M model may echo the result's tags, which is its answer to give).
    assert second.choices[0].finish_reason in ("stop", "length", "tool_calls")
    assert m.content or m.tool_calls
    if m.content:
        assert "<tool_call>" not in m.content


def test_stream_yields_the_same_call(client):
    whole = forced(client).choices[0].message.tool_calls
    calls, finish = {}, None
    for ch in forced(client, stream=True):
        for c in ch.choices:
            finish = c.finish_reason or finish
            for d in c.delta.tool_calls or []:
                slot = calls.setdefault(d.index, {"id": None, "name": "", "arguments": ""})
                slot["id"] = d.id or slot["id"]
                slot["name"] += d.function.name or ""
                slot["arguments"] += d.function.arguments or ""
    assert finish == "tool_calls"
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == \
           [(c.function.name, json.loads(c.function.arguments)) for c in whole]


@pytest.mark.parametrize("tools,param", [
    ([{"type": "function", "function": {"name": "f", "parameters": {"type": "object",
                                                                     "properties": {"x": {"type": "strng"}}}}}],
     "tools[0].function.parameters"),
    ([{"type": "function", "function": {"name": "bad name"}}], "tools[0].function.name"),
    ([WEATHER, {"type": "function", "function": {"name": "g", "parameters": {"type": "array"}}}],
     "tools[1].function.parameters"),
])
def test_schema_invalid_tools_are_400_naming_the_field(client, tools, param):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="auto", messages=ASK, tools=tools, max_tokens=5)
    assert e.value.body["param"] == param


def test_bad_tool_choice_and_tool_message_are_400(client):
    with pytest.raises(openai.BadRequestError) as e:
        forced(client, tool_choice={"type": "function", "function": {"name": "nope"}})
    assert e.value.body["param"] == "tool_choice"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="auto", max_tokens=5,
                                       messages=ASK + [{"role": "tool", "content": "x"}])
    assert e.value.body["param"] == "messages[1].tool_call_id"


@pytest.mark.parametrize("model", ["gemma", "gemma-anthropic"])
def test_calls_pass_through_remote_wires(client, model):
    """OpenAI → (OpenAI | Anthropic wire) → a second slmgate serving Gemma → back: the same call."""
    c = forced(client, model=model, tools=[WEATHER],
               tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert c.choices[0].finish_reason == "tool_calls"
    call = c.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    valid_weather_args(json.loads(call.function.arguments))


def test_both_wires_agree(client):
    a, b = (forced(client, model=m, tools=[WEATHER]).choices[0].message.tool_calls for m in ("gemma", "gemma-anthropic"))
    assert [(c.function.name, json.loads(c.function.arguments)) for c in a] == \
           [(c.function.name, json.loads(c.function.arguments)) for c in b]


def test_cascade_judges_the_call_by_its_logprobs(client):
    r = client.chat.completions.with_raw_response.create(
        model="cascade", messages=ASK, tools=[WEATHER], tool_choice="required", temperature=0, max_tokens=80)
    assert r.headers["x-slmgate-tier"] == "local"
    conf = float(r.headers["x-slmgate-confidence"])
    assert -20 < conf < 0
    assert r.parse().choices[0].message.tool_calls
    up = client.chat.completions.with_raw_response.create(
        model="escalate", messages=ASK, tools=[WEATHER], tool_choice="required", temperature=0, max_tokens=80)
    assert up.headers["x-slmgate-tier"] == "strong"
    assert up.parse().choices[0].message.tool_calls[0].function.name == "get_weather"


# ---- Anthropic SDK -----------------------------------------------------------------------

A_WEATHER = {"name": "get_weather", "description": "Get the current weather in a city",
             "input_schema": WEATHER["function"]["parameters"]}


@pytest.fixture(scope="module")
def aclient(gw):
    return anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0, timeout=120)


def test_anthropic_tool_use(aclient):
    m = aclient.messages.create(model="auto", max_tokens=80, tools=[A_WEATHER], tool_choice={"type": "any"},
                                messages=ASK, extra_body={"temperature": 0})
    assert m.stop_reason == "tool_use"
    use = [b for b in m.content if b.type == "tool_use"][0]
    assert use.name == "get_weather" and use.id
    valid_weather_args(use.input)
    # The round trip: the result goes back as a tool_result block.
    follow = aclient.messages.create(model="auto", max_tokens=30, tools=[A_WEATHER], extra_body={"temperature": 0},
                                     messages=ASK + [{"role": "assistant", "content": m.content},
                                                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                                                                   "content": "21 C and sunny"}]}])
    assert follow.content and follow.stop_reason in ("end_turn", "max_tokens", "tool_use")


def test_anthropic_tool_use_streams(aclient):
    whole = aclient.messages.create(model="auto", max_tokens=80, tools=[A_WEATHER],
                                    tool_choice={"type": "tool", "name": "get_weather"},
                                    messages=ASK, extra_body={"temperature": 0})
    with aclient.messages.stream(model="auto", max_tokens=80, tools=[A_WEATHER],
                                 tool_choice={"type": "tool", "name": "get_weather"},
                                 messages=ASK, extra_body={"temperature": 0}) as s:
        final = s.get_final_message()
    assert final.stop_reason == "tool_use"
    streamed = [(b.name, b.input) for b in final.content if b.type == "tool_use"]
    assert streamed == [(b.name, b.input) for b in whole.content if b.type == "tool_use"]


def test_anthropic_bad_tool_schema_is_400(aclient):
    with pytest.raises(anthropic.BadRequestError) as e:
        aclient.messages.create(model="auto", max_tokens=5, messages=ASK,
                                tools=[{"name": "f", "input_schema": {"type": "object", "properties": {"x": {"type": 5}}}}])
    assert "tools[0].function.parameters" in str(e.value.body)


# ---- LangChain ---------------------------------------------------------------------------

def test_langchain_bind_tools(gw):
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        return f"sunny in {city}"

    llm = ChatOpenAI(model="auto", base_url=gw.url + "/v1", api_key="unused", temperature=0, max_tokens=80,
                     max_retries=0)
    msg = llm.bind_tools([get_weather], tool_choice="get_weather").invoke("What is the weather in Paris?")
    assert msg.tool_calls and msg.tool_calls[0]["name"] == "get_weather"
    assert isinstance(msg.tool_calls[0]["args"]["city"], str)
    # The agent loop's second step: the tool's result goes back as a ToolMessage.
    from langchain_core.messages import HumanMessage, ToolMessage
    result = get_weather.invoke(msg.tool_calls[0]["args"])
    final = llm.bind_tools([get_weather]).invoke(
        [HumanMessage("What is the weather in Paris?"), msg, ToolMessage(result, tool_call_id=msg.tool_calls[0]["id"])])
    assert final.content or final.tool_calls


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_langchain_with_structured_output(gw, method):
    from pydantic import BaseModel
    from langchain_openai import ChatOpenAI

    class City(BaseModel):
        """A city and its country."""
        name: str
        country: str

    llm = ChatOpenAI(model="auto", base_url=gw.url + "/v1", api_key="unused", temperature=0, max_tokens=60,
                     max_retries=0)
    out = llm.with_structured_output(City, method=method).invoke("Paris is the capital of France. Extract the city.")
    assert isinstance(out, City) and isinstance(out.name, str) and isinstance(out.country, str)


def test_auto_never_takes_the_server_down(client, gw):
    """Regression: under `auto` a token that ran past the opening tag was replayed into the
    lazy grammar, llama.cpp threw across the FFI and the process aborted (on the first prompt)."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import tool_calls
    texts = ["Book me a flight to Paris from Berlin."] + [t for _, t in tool_calls.prompts(100)[:12]]
    for text in texts:
        r = httpx.post(gw.url + "/v1/chat/completions", timeout=120, json={
            "model": "auto", "messages": [{"role": "user", "content": text}], "tools": tool_calls.TOOL_DEFS,
            "tool_choice": "auto", "temperature": 0, "max_tokens": 96})
        # An answer, a call, or a call that broke its format (502, which a cascade escalates).
        assert r.status_code in (200, 502), r.text
    assert gw.proc.poll() is None
