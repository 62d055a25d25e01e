"""Continuous batching under load: 16 simultaneous streams, each with its own correct output."""

import asyncio

import openai

PROMPTS = [f"What is {a} plus {b}?" for a, b in zip(range(1, 17), range(3, 19))]


def test_sixteen_concurrent_streams_match_their_solo_answers(local_gw):
    client = openai.AsyncOpenAI(base_url=local_gw.url + "/v1", api_key="x", max_retries=0, timeout=120)

    async def solo(p):
        c = await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": p}],
                                                 temperature=0, max_tokens=24)
        return c.choices[0].message.content

    async def streamed(p):
        out = []
        async for ch in await client.chat.completions.create(
                model="auto", messages=[{"role": "user", "content": p}], temperature=0, max_tokens=24, stream=True):
            out.extend(c.delta.content or "" for c in ch.choices)
        return "".join(out)

    async def main():
        expected = [await solo(p) for p in PROMPTS]
        got = await asyncio.gather(*(streamed(p) for p in PROMPTS))
        return expected, got

    expected, got = asyncio.run(main())
    assert len(set(expected)) > 8  # prompts differ, so answers do
    assert got == expected
