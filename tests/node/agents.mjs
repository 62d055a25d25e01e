// The official Node SDKs (openai, @anthropic-ai/sdk) against slmgate: a forced tool call, an
// `auto` request, a two-step round trip, the Responses API (answer, stream, continuation) and
// legacy completions. Prints one JSON line of results; tests/test_node_sdks.py asserts on it.
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";

const base = process.argv[2];
const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0 });
const anthropic = new Anthropic({ baseURL: base, apiKey: "unused", maxRetries: 0 });
const weather = { type: "function", function: { name: "get_weather", description: "Get the weather in a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } };
const ask = [{ role: "user", content: "What is the weather in Paris?" }];
const out = {};

const forced = await openai.chat.completions.create({ model: "auto", messages: ask, tools: [weather],
  tool_choice: "required", temperature: 0, max_tokens: 80 });
const call = forced.choices[0].message.tool_calls[0];
out.forced = { finish: forced.choices[0].finish_reason, name: call.function.name, args: JSON.parse(call.function.arguments) };

const auto = await openai.chat.completions.create({ model: "auto", messages: ask, tools: [weather], temperature: 0, max_tokens: 40 });
out.auto = { content: auto.choices[0].message.content, calls: (auto.choices[0].message.tool_calls || []).length };

const second = await openai.chat.completions.create({ model: "auto", tools: [weather], temperature: 0, max_tokens: 30,
  messages: [...ask, forced.choices[0].message, { role: "tool", tool_call_id: call.id, content: "21 C, sunny" }] });
out.roundTrip = { finish: second.choices[0].finish_reason };

const r1 = await openai.responses.create({ model: "auto", input: "My name is Alice. Say OK.", max_output_tokens: 8, temperature: 0 });
const r2 = await openai.responses.create({ model: "auto", input: "What is my name?", previous_response_id: r1.id, max_output_tokens: 12 });
const events = [];
let streamed = "";
for await (const ev of await openai.responses.create({ model: "auto", input: "Say hi.", max_output_tokens: 30, stream: true, temperature: 0 })) {
  events.push(ev.type);
  if (ev.type === "response.output_text.delta") streamed += ev.delta;
}
out.responses = { text: r1.output_text, previous: r2.previous_response_id === r1.id, first: events[0], last: events.at(-1), streamed };

const c = await openai.completions.create({ model: "auto", prompt: "The capital of France is", max_tokens: 4, temperature: 0, logprobs: 1 });
out.completion = { text: c.choices[0].text, tokens: c.choices[0].logprobs.tokens.length };

const m = await anthropic.messages.create({ model: "auto", max_tokens: 80, tools: [{ name: "get_weather",
  input_schema: weather.function.parameters }], tool_choice: { type: "any" }, messages: ask, temperature: 0 });
const use = m.content.find((b) => b.type === "tool_use");
out.anthropic = { stop: m.stop_reason, name: use.name, input: use.input };

console.log(JSON.stringify(out));
