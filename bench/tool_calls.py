#!/usr/bin/env python3
"""Tool-call validity on 120 labelled tool-use prompts: SmolLM2 in-process vs the same requests
through Gemma 3 as an upstream (a second slmgate), and the grammar's cost per token.

    python3 bench/tool_calls.py [--bin target/release/slmgate] [--n 120]

Every request offers all six tools with `tool_choice: "required"` (greedy). A call is *valid*
when its arguments parse and satisfy the tool's schema (required keys, types, enums, no extra
keys); *right* when it is the labelled tool. `auto` share: how often the model calls at all
when it may answer instead. Grammar cost: ms per generated token of forced calls vs plain
text answers of the same length budget, one request at a time.
"""

import argparse
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("MODELS_DIR", Path.home() / ".cache/slmgate/models"))

TOOLS = [
    ("get_weather", "Get the current weather in a city",
     {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, ["city"]),
    ("get_time", "Get the local time in a timezone", {"timezone": {"type": "string"}}, ["timezone"]),
    ("convert_currency", "Convert an amount between currencies",
     {"amount": {"type": "number"}, "from": {"type": "string"}, "to": {"type": "string"}}, ["amount", "from", "to"]),
    ("search_flights", "Search flights between two cities on a date",
     {"origin": {"type": "string"}, "destination": {"type": "string"}, "date": {"type": "string"}},
     ["origin", "destination"]),
    ("set_reminder", "Set a reminder in some minutes",
     {"text": {"type": "string"}, "minutes": {"type": "integer"}}, ["text", "minutes"]),
    ("calculate", "Evaluate an arithmetic expression", {"expression": {"type": "string"}}, ["expression"]),
]
SCHEMAS = {n: {"type": "object", "properties": p, "required": r} for n, _, p, r in TOOLS}
TOOL_DEFS = [{"type": "function", "function": {"name": n, "description": d, "parameters": SCHEMAS[n]}}
             for n, d, _, _ in TOOLS]

CITIES = ["Paris", "Tokyo", "Lima", "Oslo", "Cairo"]
TEMPLATES = {
    "get_weather": ["What is the weather in {c}?", "Is it raining in {c} right now?", "How hot is it in {c} today?",
                    "Tell me the temperature in {c} in fahrenheit."],
    "get_time": ["What time is it in {c}?", "What is the local time in the {c} timezone?",
                 "Tell me the current time in {c}.", "Is it night in {c} now?"],
    "convert_currency": ["Convert 100 dollars to euros.", "How many yen is 50 {c} pounds?",
                         "Change 20 euros into dollars.", "What is 75 USD in GBP?"],
    "search_flights": ["Find flights from {c} to London.", "Search a flight from New York to {c} on May 3.",
                       "Are there flights from {c} to Rome tomorrow?", "Book me a flight to {c} from Berlin."],
    "set_reminder": ["Remind me to call {c} in 10 minutes.", "Set a reminder to drink water in 30 minutes.",
                     "In 5 minutes remind me about the {c} meeting.", "Remind me in an hour to leave for {c}."],
    "calculate": ["What is 17 times 23?", "Compute 2 to the power of 10.", "Calculate (4 + 5) * 12.",
                  "What is 144 divided by 12?"],
}


def prompts(n):
    out = []
    for tool, temps in TEMPLATES.items():
        for t, c in itertools.product(temps, CITIES):
            out.append((tool, t.format(c=c)))
    # Interleave the tools so a short run still covers all of them.
    out.sort(key=lambda x: zlib.crc32(x[1].encode()))
    return out[:n]


def valid(name, args):
    s = SCHEMAS.get(name)
    if s is None or not isinstance(args, dict):
        return False
    if set(args) - set(s["properties"]) or any(r not in args for r in s["required"]):
        return False
    kinds = {"string": str, "number": (int, float), "integer": int}
    for k, v in args.items():
        p = s["properties"][k]
        if not isinstance(v, kinds[p["type"]]) or isinstance(v, bool):
            return False
        if "enum" in p and v not in p["enum"]:
            return False
    return True


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, cfg, tmp, name):
    port = free_port()
    path = Path(tmp) / f"{name}.toml"
    path.write_text(cfg.replace("@PORT@", str(port)))
    log = open(Path(tmp) / f"{name}.log", "w")
    p = subprocess.Popen([binary, "serve", "--config", str(path)], stdout=log, stderr=subprocess.STDOUT,
                         env={**os.environ, "SLMGATE_DATA_DIR": str(Path(tmp) / name)})
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/ready", timeout=1).status_code == 200:
                return p, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    sys.exit(f"{name} did not start; see {log.name}")


def run(url, model, items, choice="required"):
    stats = {"n": 0, "called": 0, "valid": 0, "right": 0, "errors": 0}
    for want, text in items:
        r = httpx.post(url + "/v1/chat/completions", timeout=300, json={
            "model": model, "messages": [{"role": "user", "content": text}], "tools": TOOL_DEFS,
            "tool_choice": choice, "temperature": 0, "max_tokens": 96})
        stats["n"] += 1
        if r.status_code != 200:
            stats["errors"] += 1
            continue
        calls = r.json()["choices"][0]["message"].get("tool_calls") or []
        if not calls:
            continue
        stats["called"] += 1
        c = calls[0]["function"]
        try:
            args = json.loads(c["arguments"])
        except json.JSONDecodeError:
            continue
        stats["valid"] += valid(c["name"], args)
        stats["right"] += c["name"] == want
    return stats


def per_token_ms(url, model, items, tools):
    total_ms, total_tok = 0.0, 0
    for _, text in items:
        body = {"model": model, "messages": [{"role": "user", "content": text}], "temperature": 0, "max_tokens": 48}
        if tools:
            body.update(tools=TOOL_DEFS, tool_choice="required")
        t = time.perf_counter()
        r = httpx.post(url + "/v1/chat/completions", json=body, timeout=300).json()
        total_ms += (time.perf_counter() - t) * 1000
        total_tok += r["usage"]["completion_tokens"]
    return total_ms / max(total_tok, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / "target/release/slmgate"))
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--skip-latency", action="store_true")
    a = ap.parse_args()
    items = prompts(a.n)
    with tempfile.TemporaryDirectory() as tmp:
        up, up_url = start(a.bin, f"""[server]\nlisten = "127.0.0.1:@PORT@"\n[models.gemma3]\ntype = "local"
path = "{MODELS}/gemma3-270m-q4_k_m.gguf"\nthreads = 2\ncontext = 2048\nparallel = 1\n""", tmp, "gemma")
        gw, url = start(a.bin, f"""[server]\nlisten = "127.0.0.1:@PORT@"\n[models.smollm2]\ntype = "local"
path = "{MODELS}/smollm2-135m-instruct-q4_1.gguf"\nthreads = 2\ncontext = 2048\nparallel = 1
[models.gemma]\ntype = "remote"\nwire = "openai"\nbase_url = "{up_url}/v1"\nmodel = "gemma3"\n""", tmp, "gw")
        try:
            print(f"{len(items)} labelled prompts, 6 tools offered, greedy")
            print("| model | tool_choice | called | valid (parses + schema) | right tool | errors |")
            print("|---|---|---|---|---|---|")
            for model in ("smollm2", "gemma"):
                for choice in ("required", "auto"):
                    s = run(url, model, items, choice)
                    n = s["n"]
                    print(f"| {model} | {choice} | {s['called']}/{n} | {s['valid']}/{s['called']} | "
                          f"{s['right']}/{s['called']} | {s['errors']} |", flush=True)
            if not a.skip_latency:
                sample = items[:20]
                plain = per_token_ms(url, "smollm2", sample, False)
                forced = per_token_ms(url, "smollm2", sample, True)
                print(f"\nSmolLM2, one request at a time, 20 prompts, 48 tokens max: plain {plain:.2f} ms/token, "
                      f"forced tool call {forced:.2f} ms/token (grammar + longer prompt: {forced - plain:+.2f})")
        finally:
            for p in (gw, up):
                p.terminate()
                p.wait()


if __name__ == "__main__":
    main()
