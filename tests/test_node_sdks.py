"""The official Node SDKs (`openai`, `@anthropic-ai/sdk` from npm, pinned in
tests/node/package-lock.json) against SmolLM2: tools, the Responses API and completions."""

import json
import subprocess
from pathlib import Path

NODE = Path(__file__).resolve().parent / "node"


def test_node_sdks(local_gw):
    out = subprocess.run(["node", str(NODE / "agents.mjs"), local_gw.url], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["forced"]["finish"] == "tool_calls" and r["forced"]["name"] == "get_weather"
    assert isinstance(r["forced"]["args"]["city"], str)
    assert r["auto"]["content"] or r["auto"]["calls"]
    assert r["roundTrip"]["finish"] in ("stop", "length", "tool_calls")
    assert r["responses"]["text"].strip() and r["responses"]["previous"]
    assert r["responses"]["first"] == "response.created"
    assert r["responses"]["last"] in ("response.completed", "response.incomplete")
    assert r["responses"]["streamed"].strip()
    assert r["completion"]["text"] and r["completion"]["tokens"] >= 1
    assert r["anthropic"]["stop"] == "tool_use" and r["anthropic"]["name"] == "get_weather"
    assert isinstance(r["anthropic"]["input"]["city"], str)
