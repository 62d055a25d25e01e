#!/usr/bin/env python3
"""Scale-out throughput: 1, 2 and 3 slmgate replicas on one Postgres and one Redis, against
the nginx mock upstream (a fixed chat completion), every request through the shared parts:
an API key (looked up in Postgres), rpm/tpm and a budget (two Lua scripts in Redis per
request plus the settle), an audit entry committed to the shared chain before the answer
(`durability = "sync"`).

    python3 bench/replicas.py [--secs 10] [--conc 32] [--durability sync|interval]
                              [--bin target/release/slmgate]

For each replica count the load (oha, closed loop, `--conc` connections in all) is split
evenly over the replicas, one oha per replica, at once; the table sums their requests/s and
gives the slowest replica's p50/p99. Then the Redis round trip itself
(`slmgate_redis_seconds` by operation, from the replicas' /metrics histograms) and the p99
Redis adds to a request: one replica at a fixed rate with `[cluster] redis_url` and the same
replica config without it (its own in-memory limits), same Postgres. Postgres, Redis, nginx,
oha and the replicas share this machine's cores: on a 2-core box more replicas add no CPU,
so the scaling measured is that of the shared state, not of hardware. Prints markdown.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from cluster import Postgres, Redis  # noqa: E402
from loopback import free_port, wait_ready  # noqa: E402

ADMIN = "bench-admin-key-0123456789"
BODY = {"model": "mock", "max_tokens": 16, "messages": [{"role": "user", "content": "Hello"}]}


def start_nginx(tmp):
    for d in ["tmp_body", "tmp_proxy", "tmp_fcgi", "tmp_uwsgi", "tmp_scgi"]:
        (tmp / d).mkdir(parents=True, exist_ok=True)
    conf = (ROOT / "bench" / "mock-upstream.nginx.conf").read_text().replace("@DIR@", str(tmp))
    (tmp / "nginx.conf").write_text(conf)
    p = subprocess.Popen(["nginx", "-c", str(tmp / "nginx.conf"), "-p", str(tmp) + "/"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready("http://127.0.0.1:18080", "/health", p)
    return p


DURABILITY = "sync"


def config(pg, redis_url):
    cluster = f'[cluster]\nredis_url = "{redis_url}"\n' if redis_url else ""
    return f"""
[server]
listen = "127.0.0.1:@PORT@"
[auth]
enabled = true
admin_key = "{ADMIN}"
[storage]
backend = "postgres"
url = "{pg.url}"
pool_size = 8
[audit]
durability = "{DURABILITY}"
{cluster}
[models.mock]
type = "remote"
wire = "openai"
base_url = "http://127.0.0.1:18080/v1"
model = "gpt-4o-mini"
max_retries = 0
input_cost_per_mtok = 0.15
output_cost_per_mtok = 0.6
"""


def start_replica(binary, tmp, name, text):
    port = free_port()
    cfg = tmp / f"{name}.toml"
    cfg.write_text(text.replace("@PORT@", str(port)))
    p = subprocess.Popen([str(binary), "serve", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL,
                         env={**os.environ, "SLMGATE_LOG": "warn", "SLMGATE_DATA_DIR": str(tmp / name)})
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, "/ready", p, timeout=120)
    return p, url


def new_key(url):
    req = urllib.request.Request(url + "/admin/keys", method="POST",
                                 data=json.dumps({"budget": "100000/day", "rpm": 10_000_000,
                                                  "tpm": 1_000_000_000}).encode(),
                                 headers={"authorization": f"Bearer {ADMIN}", "content-type": "application/json"})
    return json.load(urllib.request.urlopen(req))["key"]


def oha_cmd(url, key, secs, conc=None, rate=None):
    cmd = ["oha", "--no-tui", "--output-format", "json", "-z", f"{secs}s", "-m", "POST",
           "-H", "content-type: application/json", "-H", f"authorization: Bearer {key}",
           "-d", json.dumps(BODY)]
    cmd += ["-q", str(rate), "--latency-correction", "-c", "32"] if rate else ["-c", str(conc)]
    return cmd + [url + "/v1/chat/completions"]


def summary(out):
    j = json.loads(out)
    pct = j["latencyPercentiles"]
    codes = j.get("statusCodeDistribution", {})
    ok = sum(v for k, v in codes.items() if k.startswith("2"))
    errs = {k: v for k, v in j.get("errorDistribution", {}).items() if "deadline" not in k}
    return {"rps": j["summary"]["requestsPerSec"], "p50": pct["p50"] * 1000, "p99": pct["p99"] * 1000,
            "errors": sum(codes.values()) - ok + sum(errs.values())}


def load(urls, key, secs, conc):
    """One oha per replica, at once, `conc` connections in all."""
    per = max(1, conc // len(urls))
    procs = [subprocess.Popen(oha_cmd(u, key, secs, conc=per), stdout=subprocess.PIPE, text=True) for u in urls]
    return [summary(p.communicate()[0]) for p in procs]


def quantile(buckets, q):
    """A quantile from Prometheus cumulative buckets [(le, count)], linear within a bucket."""
    total = buckets[-1][1]
    if total == 0:
        return float("nan")
    want = q * total
    prev_le, prev_c = 0.0, 0
    for le, c in buckets:
        if c >= want:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (want - prev_c) / max(c - prev_c, 1)
        prev_le, prev_c = le, c
    return prev_le


def redis_histograms(urls):
    """slmgate_redis_seconds buckets by op, summed over replicas."""
    sums = {}
    for u in urls:
        text = urllib.request.urlopen(u + "/metrics").read().decode()
        for m in re.finditer(r'^slmgate_redis_seconds_bucket\{([^}]*)\} (\d+)', text, re.M):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
            key = (labels["op"], le)
            sums[key] = sums.get(key, 0) + int(m.group(2))
    ops = {}
    for (op, le), c in sums.items():
        ops.setdefault(op, []).append((le, c))
    return {op: sorted(v) for op, v in ops.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--secs", type=int, default=10)
    ap.add_argument("--conc", type=int, default=32)
    ap.add_argument("--rate", type=int, default=300, help="the fixed rate of the Redis comparison")
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "slmgate"))
    ap.add_argument("--durability", default="sync", choices=["sync", "interval"],
                    help="[audit] durability of the replicas")
    args = ap.parse_args()
    global DURABILITY
    DURABILITY = args.durability
    for tool in ["nginx", "oha", "redis-server"]:
        if not shutil.which(tool):
            sys.exit(f"{tool} is required (nginx, redis-server: apt; oha: cargo install oha)")
    tmp = Path(tempfile.mkdtemp())
    nginx = start_nginx(tmp)
    pg, redis = Postgres("bench-pg"), Redis("bench-redis")
    running = []
    try:
        print(f"{args.conc} connections in all, closed loop, {args.secs} s per point; "
              f"auth + rpm/tpm + budget + {args.durability} audit on every request\n")
        print("| replicas | requests/s (sum) | slowest p50 / p99 ms | errors |")
        print("|---|---|---|---|")
        for n in [1, 2, 3]:
            while len(running) < n:
                running.append(start_replica(args.bin, tmp, f"r{len(running)}", config(pg, redis.url)))
            urls = [u for _, u in running]
            key = new_key(urls[0])
            load(urls, key, 3, args.conc)  # warm up: pools, buckets, the key on every replica
            rs = load(urls, key, args.secs, args.conc)
            print(f"| {n} | {sum(r['rps'] for r in rs):.0f} | {max(r['p50'] for r in rs):.2f} / "
                  f"{max(r['p99'] for r in rs):.2f} | {sum(r['errors'] for r in rs)} |")
        hist = redis_histograms([u for _, u in running])
        print("\n| Redis call (all replicas) | calls | p50 ms | p99 ms |")
        print("|---|---|---|---|")
        for op in ["admit", "reserve", "settle", "ping"]:
            if op in hist:
                b = hist[op]
                print(f"| {op} | {b[-1][1]} | {quantile(b, 0.5) * 1000:.3f} | {quantile(b, 0.99) * 1000:.3f} |")
        for p, _ in running:
            p.send_signal(signal.SIGTERM)
            p.wait()
        running.clear()
        # One replica, a fixed rate below saturation: with Redis, then without (its own limits).
        print(f"\n| one replica at {args.rate} req/s | p50 ms | p99 ms | errors |")
        print("|---|---|---|---|")
        rows = {}
        for label, url_ in [("with Redis", redis.url), ("without Redis", None)]:
            p, u = start_replica(args.bin, tmp, f"fixed-{label[:4]}", config(pg, url_))
            key = new_key(u)
            summary(subprocess.run(oha_cmd(u, key, 3, rate=args.rate), capture_output=True, text=True).stdout)
            r = summary(subprocess.run(oha_cmd(u, key, args.secs, rate=args.rate), capture_output=True,
                                       text=True).stdout)
            rows[label] = r
            print(f"| {label} | {r['p50']:.2f} | {r['p99']:.2f} | {r['errors']} |")
            p.send_signal(signal.SIGTERM)
            p.wait()
        print(f"\nRedis adds {rows['with Redis']['p50'] - rows['without Redis']['p50']:.2f} ms at p50, "
              f"{rows['with Redis']['p99'] - rows['without Redis']['p99']:.2f} ms at p99")
    finally:
        for p, _ in running:
            p.send_signal(signal.SIGTERM)
        redis.stop()
        pg.stop()
        nginx.terminate()


if __name__ == "__main__":
    main()
