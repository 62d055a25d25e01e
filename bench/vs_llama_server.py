#!/usr/bin/env python3
"""slmgate against llama.cpp's own llama-server, side by side, on the same requests.

Both serve the same GGUF with the same threads and the same number of slots (sequences decoded
together), one at a time on this machine. llama-server is built from the llama.cpp that slmgate
links (bench/build-llama-server.sh). One load script sends the same streaming, greedy chat
requests to each: at concurrency 1, 8 and 32, with prompts of about 50 and 1,000 tokens; every
prompt starts with a distinct number, so no prefix cache shortcuts a request.

Reports per cell: TTFT p50/p99 (request sent -> first content token), aggregate completion tok/s
(all completion tokens / wall time of the cell), and the ratios slmgate / llama-server. Before
the load, it checks correctness: the greedy text of each 50-token prompt from both servers.

    bench/build-llama-server.sh
    python3 bench/vs_llama_server.py [--bin target/release/slmgate] [--model smollm2]
        [--threads 2] [--slots 8] [--max-tokens 64] [--requests 2]

--requests is per concurrency slot: a cell at concurrency c sends max(c * requests, 4).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from loopback import free_port, wait_ready

ROOT = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("MODELS_DIR", Path.home() / ".cache/slmgate/models"))
FILES = {"smollm2": "smollm2-135m-instruct-q4_1.gguf", "gemma3": "gemma3-270m-q4_k_m.gguf"}
FILLER = ("The backup service copies every changed file to the archive at night, keeps thirty "
          "daily snapshots, and mails the operator a short report when a copy fails. ")


def start_slmgate(bin_, model, threads, slots, ctx, tmp):
    port = free_port()
    cfg = Path(tmp) / "slmgate.toml"
    cfg.write_text(f"""
[server]
listen = "127.0.0.1:{port}"
[models.m]
type = "local"
path = "{model}"
threads = {threads}
context = {ctx}
parallel = {slots}
batch = 512
queue = 256
""")
    env = {**os.environ, "SLMGATE_DATA_DIR": str(Path(tmp) / "data"), "SLMGATE_LOG": "warn"}
    p = subprocess.Popen([bin_, "serve", "--config", str(cfg)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, "/ready", p)
    return p, url


def start_llama_server(bin_, model, threads, slots, ctx):
    port = free_port()
    # -c is the whole cache, shared by the slots: the same per-slot context as slmgate's.
    p = subprocess.Popen([bin_, "-m", str(model), "-t", str(threads), "-tb", str(threads),
                          "-np", str(slots), "-c", str(ctx * slots), "-b", "512", "-ub", "512",
                          "--host", "127.0.0.1", "--port", str(port), "--no-webui", "--jinja"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, "/health", p)
    return p, url


def prompt(i, tokens):
    words = max(1, int(tokens * 0.75) - 12)
    text = (FILLER * (words // len(FILLER.split()) + 1)).split()[:words]
    return f"Request {i}. " + " ".join(text) + " In one sentence, what does the service do?"


def stream(url, text, max_tokens):
    """(ttft seconds, completion tokens, text) of one streaming greedy chat request."""
    body = json.dumps({"model": "m", "max_tokens": max_tokens, "temperature": 0, "stream": True,
                       "stream_options": {"include_usage": True},
                       "messages": [{"role": "user", "content": text}]}).encode()
    req = urllib.request.Request(url + "/v1/chat/completions", data=body,
                                 headers={"content-type": "application/json"})
    t0 = time.perf_counter()
    ttft, out, usage = None, [], None
    with urllib.request.urlopen(req, timeout=600) as r:
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            ev = json.loads(line[6:])
            if ev.get("usage"):
                usage = ev["usage"]
            for ch in ev.get("choices") or []:
                c = (ch.get("delta") or {}).get("content")
                if c:
                    if ttft is None:
                        ttft = time.perf_counter() - t0
                    out.append(c)
    n = (usage or {}).get("completion_tokens") or len(out)
    return ttft if ttft is not None else time.perf_counter() - t0, n, "".join(out)


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def cell(url, conc, tokens, n, max_tokens, base):
    prompts = [prompt(base + i, tokens) for i in range(n)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(conc) as ex:
        res = list(ex.map(lambda p: stream(url, p, max_tokens), prompts))
    wall = time.perf_counter() - t0
    ttfts = [r[0] for r in res]
    return {"ttft_p50": statistics.median(ttfts), "ttft_p99": pct(ttfts, 0.99),
            "tok_s": sum(r[1] for r in res) / wall}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / "target/release/slmgate"))
    ap.add_argument("--llama-server", default=str(ROOT / "bench/out/llama-server/bin/llama-server"))
    ap.add_argument("--model", default="smollm2", choices=sorted(FILES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--slots", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--requests", type=int, default=2)
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--prompt-tokens", default="50,1000")
    a = ap.parse_args()
    model = MODELS / FILES[a.model]
    ctx = 1024 + 2 * a.max_tokens + 64
    concs = [int(c) for c in a.concurrency.split(",")]
    lens = [int(t) for t in a.prompt_tokens.split(",")]
    results = {}
    texts = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ["slmgate", "llama-server"]:
            if name == "slmgate":
                proc, url = start_slmgate(a.bin, model, a.threads, a.slots, ctx, tmp)
            else:
                proc, url = start_llama_server(a.llama_server, model, a.threads, a.slots, ctx)
            try:
                stream(url, prompt(10_000, 50), 8)  # warm-up
                texts[name] = [stream(url, prompt(20_000 + i, 50), a.max_tokens)[2] for i in range(4)]
                base = 0
                for tokens in lens:
                    for conc in concs:
                        n = max(conc * a.requests, 4)
                        results[(name, tokens, conc)] = cell(url, conc, tokens, n, a.max_tokens, base)
                        base += n
                        r = results[(name, tokens, conc)]
                        print(f"{name} prompt~{tokens} conc {conc}: TTFT p50 {r['ttft_p50']*1000:.0f} ms "
                              f"p99 {r['ttft_p99']*1000:.0f} ms, {r['tok_s']:.1f} tok/s", file=sys.stderr)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    same = sum(x == y for x, y in zip(texts["slmgate"], texts["llama-server"]))
    print(f"\nmodel {FILES[a.model]}, {a.threads} threads, {a.slots} slots, max_tokens {a.max_tokens}; "
          f"greedy text identical on {same}/{len(texts['slmgate'])} prompts\n")
    print("| prompt tokens | concurrency | slmgate TTFT p50 / p99 ms | llama-server TTFT p50 / p99 ms | "
          "slmgate tok/s | llama-server tok/s | tok/s ratio | TTFT p50 ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for tokens in lens:
        for conc in concs:
            s, l = results[("slmgate", tokens, conc)], results[("llama-server", tokens, conc)]
            print(f"| ~{tokens} | {conc} | {s['ttft_p50']*1000:.0f} / {s['ttft_p99']*1000:.0f} | "
                  f"{l['ttft_p50']*1000:.0f} / {l['ttft_p99']*1000:.0f} | {s['tok_s']:.1f} | {l['tok_s']:.1f} | "
                  f"{s['tok_s']/l['tok_s']:.2f}× | {s['ttft_p50']/l['ttft_p50']:.2f}× |")
    if same < len(texts["slmgate"]):
        for x, y in zip(texts["slmgate"], texts["llama-server"]):
            if x != y:
                print(f"\ndiffers:\n  slmgate:      {x!r}\n  llama-server: {y!r}")


if __name__ == "__main__":
    main()
