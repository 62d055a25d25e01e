#!/usr/bin/env python3
"""Cascade time-to-first-token: what holding the first N local tokens costs.

Starts a Gemma 3 270M slmgate as the strong upstream and a gateway with SmolLM2 local, then
streams the same prompts (sequentially, temperature 0, 32 tokens) through:
  - direct:      the strong tier only (the baseline an escalated request is compared with);
  - escalate-N:  local → strong with a cascade that always escalates after N tokens
                 (signal mean_margin, threshold 100: no early decision): the worst-case TTFT
                 penalty of escalation;
  - early-N:     local → strong, mean_logprob with threshold 0: escalation is certain at the
                 first uncertain token and decided there (the early exit): the best case;
  - keep-N:      local → strong with a cascade that never escalates (threshold -100): the
                 cost of holding N tokens when the local answer is kept;
  - local:       SmolLM2 streaming straight to the client.

    python3 bench/cascade_ttft.py [--bin target/release/slmgate] [--reps 3]

Prints median and p90 TTFT per configuration and the penalty against its baseline.
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
PROMPTS = [
    "Explain what a hash map is.",
    "Write a short poem about autumn.",
    "What are the benefits of unit tests?",
    "Describe the water cycle.",
    "Give three tips for better sleep.",
    "What is the difference between TCP and UDP?",
    "Summarise the plot of Romeo and Juliet.",
    "How does a bicycle stay upright?",
]


def start(bin_, cfg_text, tmp):
    port = free_port()
    path = Path(tmp) / f"c{port}.toml"
    path.write_text(cfg_text.replace("@PORT@", str(port)))
    p = subprocess.Popen([bin_, "serve", "--config", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc=p)
    return p, url


def ttft(url, model, prompt):
    body = json.dumps({"model": model, "stream": True, "max_tokens": 32, "temperature": 0,
                       "messages": [{"role": "user", "content": prompt}]}).encode()
    req = urllib.request.Request(url + "/v1/chat/completions", body, {"content-type": "application/json"})
    t = time.perf_counter()
    first = None
    tier = None
    with urllib.request.urlopen(req, timeout=120) as r:
        tier = r.headers.get("x-slmgate-tier")
        for line in r:
            if line.startswith(b"data: {") and b'"content":"' in line and first is None:
                first = time.perf_counter() - t
    return first, tier


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / "target/release/slmgate"))
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        up, up_url = start(a.bin, f"""
[server]
listen = "127.0.0.1:@PORT@"
[models.gemma3]
type = "local"
path = "{MODELS}/gemma3-270m-q4_k_m.gguf"
threads = 1
context = 1024
parallel = 1
""", tmp)
        routes = ""
        for n in (4, 8, 16):
            for name, sig, thr in (("escalate", "mean_margin", 100.0), ("early", "mean_logprob", 0.0),
                                   ("keep", "mean_logprob", -100.0)):
                routes += f"""
[routes.{name}-{n}]
tiers = [{{ name = "local", models = ["smollm2"] }}, {{ name = "strong", models = ["gemma"] }}]
cascade = {{ signal = "{sig}", threshold = {thr}, first_tokens = {n} }}
"""
        gw, url = start(a.bin, f"""
[server]
listen = "127.0.0.1:@PORT@"
[models.smollm2]
type = "local"
path = "{MODELS}/smollm2-135m-instruct-q4_1.gguf"
threads = 1
context = 1024
parallel = 1
[models.gemma]
type = "remote"
wire = "openai"
base_url = "{up_url}/v1"
model = "gemma3"
[routes.direct]
tiers = [{{ name = "strong", models = ["gemma"] }}]
{routes}""", tmp)
        try:
            configs = ["direct", "smollm2"] + [f"{k}-{n}" for n in (4, 8, 16) for k in ("escalate", "early", "keep")]
            for c in configs:  # warm-up: prompt caches, connections
                ttft(url, c, PROMPTS[0])
            res = {}
            for c in configs:
                xs, tiers = [], set()
                for _ in range(a.reps):
                    for p in PROMPTS:
                        t, tier = ttft(url, c, p)
                        xs.append(t * 1000)
                        tiers.add(tier)
                xs.sort()
                res[c] = (statistics.median(xs), xs[int(0.9 * (len(xs) - 1))], tiers)
            print("| configuration | served by | TTFT p50 (ms) | TTFT p90 (ms) | penalty p50 (ms) |")
            print("|---|---|---|---|---|")
            for c in configs:
                p50, p90, tiers = res[c]
                base = "direct" if c.startswith(("escalate", "early")) else "smollm2" if c.startswith("keep") else None
                pen = f"{p50 - res[base][0]:+.1f} vs {base}" if base else ""
                print(f"| {c} | {','.join(sorted(t or '-' for t in tiers))} | {p50:.1f} | {p90:.1f} | {pen} |")
        finally:
            for p in (gw, up):
                p.terminate()
                p.wait()


if __name__ == "__main__":
    main()
