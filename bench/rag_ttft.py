#!/usr/bin/env python3
"""What retrieval adds to time-to-first-token: the same questions streamed through a route
with `rag = {...}` and through the same model without it.

Ingests tests/data/rag/debian (157 chunks) with `slmgate rag ingest`, starts a gateway with
SmolLM2-135M local (2 threads, one slot) and three routes:
  - plain:  no retrieval;
  - retrieve-only: retrieval with a 64-token budget that the passages do not fit (the prompt is plain's): the cost
            of embedding the question and searching alone;
  - rag-1:  rag = { top_k = 1, max_context_tokens = 400 }  (what small models answer best from);
  - rag-4:  rag = { top_k = 4, max_context_tokens = 1024 };
then streams each question of tests/data/rag/questions.jsonl (13) through each route, one at a
time, temperature 0, 16 tokens, and prints TTFT p50/p90 and prompt tokens per route. The
added TTFT is embedding the question (MiniLM), the fused search, and the prefill of the
passages (the larger part).

    cargo build --release -p slmgate && python3 bench/rag_ttft.py [--reps 3]
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from loopback import free_port, wait_ready

ROOT = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("MODELS_DIR", Path.home() / ".cache/slmgate/models"))
QUESTIONS = [json.loads(l)["question"] for l in (ROOT / "tests/data/rag/questions.jsonl").read_text().splitlines() if l.strip()]
ROUTES = ["plain", "retrieve-only", "rag-1", "rag-4"]


def ask(url, route, question):
    body = json.dumps({"model": route, "stream": True, "max_tokens": 16, "temperature": 0,
                       "stream_options": {"include_usage": True},
                       "messages": [{"role": "user", "content": question}]}).encode()
    req = urllib.request.Request(url + "/v1/chat/completions", body, {"content-type": "application/json"})
    t = time.perf_counter()
    first, prompt_tokens = None, None
    with urllib.request.urlopen(req, timeout=300) as r:
        for line in r:
            if not line.startswith(b"data: {"):
                continue
            if first is None and b'"content":"' in line:
                first = time.perf_counter() - t
            ev = json.loads(line[6:])
            if ev.get("usage"):
                prompt_tokens = ev["usage"]["prompt_tokens"]
    return first, prompt_tokens


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / "target/release/slmgate"))
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        cfg = Path(tmp) / "c.toml"
        cfg.write_text(f"""
[server]
listen = "127.0.0.1:{port}"
[storage]
path = "{tmp}/slmgate.db"
[embeddings]
path = "{MODELS}/all-MiniLM-L6-v2"
[models.smollm2]
type = "local"
path = "{MODELS}/smollm2-135m-instruct-q4_1.gguf"
threads = 2
context = 2048
parallel = 1
[routes.plain]
tiers = [{{ name = "local", models = ["smollm2"] }}]
[routes.retrieve-only]
tiers = [{{ name = "local", models = ["smollm2"] }}]
rag = {{ collection = "debian", top_k = 1, max_context_tokens = 64 }}
[routes.rag-1]
tiers = [{{ name = "local", models = ["smollm2"] }}]
rag = {{ collection = "debian", top_k = 1, max_context_tokens = 400 }}
[routes.rag-4]
tiers = [{{ name = "local", models = ["smollm2"] }}]
rag = {{ collection = "debian", top_k = 4, max_context_tokens = 1024 }}
""")
        subprocess.run([a.bin, "rag", "ingest", "--config", str(cfg), "--collection", "debian",
                        str(ROOT / "tests/data/rag/debian")], check=True, stdout=subprocess.DEVNULL)
        gw = subprocess.Popen([a.bin, "serve", "--config", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, proc=gw)
            for r in ROUTES:  # warm-up
                ask(url, r, "Warm up: say hello.")
            res = {}
            for r in ROUTES:
                xs, toks = [], []
                for _ in range(a.reps):
                    for q in QUESTIONS:
                        t, p = ask(url, r, q)
                        xs.append(t * 1000)
                        toks.append(p)
                xs.sort()
                res[r] = (statistics.median(xs), xs[int(0.9 * (len(xs) - 1))], statistics.median(toks))
            print("| route | prompt tokens (median) | TTFT p50 (ms) | TTFT p90 (ms) | added p50 vs plain (ms) |")
            print("|---|---|---|---|---|")
            for r in ROUTES:
                p50, p90, toks = res[r]
                added = "" if r == "plain" else f"{p50 - res['plain'][0]:+.1f}"
                print(f"| {r} | {toks:.0f} | {p50:.1f} | {p90:.1f} | {added} |")
        finally:
            gw.terminate()
            gw.wait()


if __name__ == "__main__":
    main()
