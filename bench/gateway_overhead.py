#!/usr/bin/env python3
"""Gateway overhead against a near-zero-cost upstream (nginx answering a fixed completion).

The method of ../shared/bench/README.md: nginx + the load generator (oha) pinned to CPU 0,
slmgate pinned to CPU 1; the same load against nginx directly and through slmgate; the
difference in latency is slmgate's overhead. Closed-loop at concurrency 1, 8, 32, 64, then
open-loop fixed rates below saturation (latency-corrected) for honest tails. Also records
slmgate's RSS idle and after the load, and with SmolLM2 loaded under local load.

    python3 bench/gateway_overhead.py [--secs 10] [--bin target/release/slmgate]
    python3 bench/gateway_overhead.py --before /tmp/slmgate-old   # before/after in one run
    python3 bench/gateway_overhead.py --durability   # audit interval vs sync, one binary, one run

The gateway runs its default governance config: no key required, but the PII scan, the
injection guard's rules, an audit entry per request (hash-chained, SQLite) and 5 % review
sampling are on, and every request is priced against the baseline. With `--before`, each
load point runs against the old binary and then the new one, one after the other, and the
table shows both side by side. Needs nginx (Debian) and oha (`cargo install oha`). Prints
markdown tables.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BODY = {"model": "mock", "messages": [{"role": "user", "content": "Hello"}]}


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_http(url, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def start_nginx(tmp):
    for d in ["tmp_body", "tmp_proxy", "tmp_fcgi", "tmp_uwsgi", "tmp_scgi"]:
        (tmp / d).mkdir(parents=True, exist_ok=True)
    conf = (ROOT / "bench" / "mock-upstream.nginx.conf").read_text().replace("@DIR@", str(tmp))
    (tmp / "nginx.conf").write_text(conf)
    p = subprocess.Popen(["taskset", "-c", "0", "nginx", "-c", str(tmp / "nginx.conf"), "-p", str(tmp) + "/"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http("http://127.0.0.1:18080/health")
    return p


def start_gateway(binary, tmp, port, extra=""):
    tmp.mkdir(parents=True, exist_ok=True)
    cfg = tmp / f"gw{port}.toml"
    cfg.write_text(f"""
[server]
listen = "127.0.0.1:{port}"
[models.mock]
type = "remote"
wire = "openai"
base_url = "http://127.0.0.1:18080/v1"
model = "gpt-4o-mini"
max_retries = 0
[models.mock-stream]
type = "remote"
wire = "openai"
base_url = "http://127.0.0.1:18080/stream/v1"
model = "gpt-4o-mini"
max_retries = 0
{extra}
""")
    p = subprocess.Popen(["taskset", "-c", "1", str(binary), "serve", "--config", str(cfg)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env={**os.environ, "SLMGATE_LOG": "warn", "SLMGATE_DATA_DIR": str(tmp / f"data{port}")})
    wait_http(f"http://127.0.0.1:{port}/ready", timeout=120)
    return p


def oha(url, body, secs, conc=None, rate=None):
    cmd = ["taskset", "-c", "0", "oha", "--no-tui", "--output-format", "json", "-z", f"{secs}s",
           "-m", "POST", "-H", "content-type: application/json", "-d", json.dumps(body)]
    if rate:
        cmd += ["-q", str(rate), "--latency-correction", "-c", "64"]
    else:
        cmd += ["-c", str(conc)]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    j = json.loads(out)
    pct = j["latencyPercentiles"]
    ok = sum(v for k, v in j.get("statusCodeDistribution", {}).items() if k.startswith("2"))
    # Requests still in flight when the -z timer ends are reported as aborted: not failures.
    errs = {k: v for k, v in j.get("errorDistribution", {}).items() if "deadline" not in k}
    total = sum(j.get("statusCodeDistribution", {}).values()) + sum(errs.values())
    return {"rps": j["summary"]["requestsPerSec"], "p50": pct["p50"] * 1000, "p99": pct["p99"] * 1000,
            "p999": pct.get("p99.9", pct["p99"]) * 1000, "errors": total - ok}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--secs", type=int, default=10)
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "slmgate"))
    ap.add_argument("--rates", default="1000,5000,10000")
    ap.add_argument("--before", help="an older slmgate binary to measure in the same run")
    ap.add_argument("--durability", action="store_true",
                    help='the same binary twice in one run: [audit] durability = "interval" (before) and "sync" (after)')
    ap.add_argument("--no-memory", action="store_true", help="skip the SmolLM2 memory run")
    args = ap.parse_args()
    if args.before or args.durability:
        return compare(args)
    for tool in ["nginx", "oha", "taskset"]:
        if not shutil.which(tool):
            sys.exit(f"{tool} is required (nginx: apt-get install nginx; oha: cargo install oha)")
    tmp = Path(tempfile.mkdtemp())
    nginx = start_nginx(tmp)
    gw = start_gateway(args.bin, tmp, 18181)
    try:
        time.sleep(1)
        idle = rss_mb(gw.pid)
        direct = "http://127.0.0.1:18080/v1/chat/completions"
        via = "http://127.0.0.1:18181/v1/chat/completions"
        print(f"slmgate idle RSS (no local model): {idle:.1f} MB\n")
        print("| load | direct rps | direct p50 / p99 ms | slmgate rps | slmgate p50 / p99 / p99.9 ms | overhead p50 / p99 ms | errors |")
        print("|---|---|---|---|---|---|---|")
        for c in [1, 8, 32, 64]:
            d = oha(direct, BODY, args.secs, conc=c)
            g = oha(via, BODY, args.secs, conc=c)
            print(f"| c={c} | {d['rps']:.0f} | {d['p50']:.3f} / {d['p99']:.3f} | {g['rps']:.0f} | "
                  f"{g['p50']:.3f} / {g['p99']:.3f} / {g['p999']:.3f} | {g['p50'] - d['p50']:.3f} / {g['p99'] - d['p99']:.3f} | {g['errors']} |")
        for r in [int(x) for x in args.rates.split(",")]:
            d = oha(direct, BODY, args.secs, rate=r)
            g = oha(via, BODY, args.secs, rate=r)
            print(f"| {r}/s fixed | {d['rps']:.0f} | {d['p50']:.3f} / {d['p99']:.3f} | {g['rps']:.0f} | "
                  f"{g['p50']:.3f} / {g['p99']:.3f} / {g['p999']:.3f} | {g['p50'] - d['p50']:.3f} / {g['p99'] - d['p99']:.3f} | {g['errors']} |")
        sb = dict(BODY, model="mock-stream", stream=True)
        d = oha("http://127.0.0.1:18080/stream/v1/chat/completions", sb, args.secs, conc=32)
        g = oha(via, sb, args.secs, conc=32)
        print(f"| stream c=32 | {d['rps']:.0f} | {d['p50']:.3f} / {d['p99']:.3f} | {g['rps']:.0f} | "
              f"{g['p50']:.3f} / {g['p99']:.3f} / {g['p999']:.3f} | {g['p50'] - d['p50']:.3f} / {g['p99'] - d['p99']:.3f} | {g['errors']} |")
        print(f"\nslmgate RSS after the load: {rss_mb(gw.pid):.1f} MB")
    finally:
        gw.send_signal(signal.SIGTERM)
        gw.wait()

    if not args.no_memory:
        memory(args, tmp)
    nginx.terminate()


def compare(args):
    """The same load points against two binaries in one run: both gateways run side by side
    (pinned to the same core; the one not under load is idle), each warmed up first, and each
    point runs against the old binary, then the new one."""
    for tool in ["nginx", "oha", "taskset"]:
        if not shutil.which(tool):
            sys.exit(f"{tool} is required (nginx: apt-get install nginx; oha: cargo install oha)")
    tmp = Path(tempfile.mkdtemp())
    nginx = start_nginx(tmp)
    if args.durability:
        gws = {"before": start_gateway(args.bin, tmp / "before", 18183, '[audit]\ndurability = "interval"'),
               "after": start_gateway(args.bin, tmp / "after", 18184, '[audit]\ndurability = "sync"')}
        print("before = durability interval, after = durability sync (same binary)\n")
    else:
        gws = {"before": start_gateway(args.before, tmp / "before", 18183),
               "after": start_gateway(args.bin, tmp / "after", 18184)}
    via = {"before": "http://127.0.0.1:18183/v1/chat/completions",
           "after": "http://127.0.0.1:18184/v1/chat/completions"}
    direct = "http://127.0.0.1:18080/v1/chat/completions"
    points = [("c=1", BODY, {"conc": 1}), ("c=8", BODY, {"conc": 8}), ("c=32", BODY, {"conc": 32}),
              ("c=64", BODY, {"conc": 64})]
    points += [(f"{r}/s fixed", BODY, {"rate": r}) for r in [int(x) for x in args.rates.split(",")]]
    points.append(("stream c=32", dict(BODY, model="mock-stream", stream=True), {"conc": 32}))
    rows = []
    try:
        # Warm up: connections to the upstream, allocator arenas, thread pools.
        for name in gws:
            oha(via[name], BODY, 3, conc=64)
        for label, body, how in points:
            d = oha(direct, body, args.secs, **how) if body is BODY else None
            row = {"label": label, "direct": d}
            for name in gws:
                row[name] = oha(via[name], body, args.secs, **how)
            rows.append(row)
        rss = {name: rss_mb(gw.pid) for name, gw in gws.items()}
    finally:
        for gw in gws.values():
            gw.send_signal(signal.SIGTERM)
            gw.wait()
        nginx.terminate()
    print("| load | direct p50 / p99 ms | before rps | before p50 / p99 / p99.9 ms | after rps | after p50 / p99 / p99.9 ms "
          "| overhead p99 before → after ms | errors before / after |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        d, b, a = r["direct"], r["before"], r["after"]
        dp = f"{d['p50']:.3f} / {d['p99']:.3f}" if d else "–"
        ov = f"{b['p99'] - d['p99']:.3f} → {a['p99'] - d['p99']:.3f}" if d else "–"
        print(f"| {r['label']} | {dp} | {b['rps']:.0f} | {b['p50']:.3f} / {b['p99']:.3f} / {b['p999']:.3f} | {a['rps']:.0f} | "
              f"{a['p50']:.3f} / {a['p99']:.3f} / {a['p999']:.3f} | {ov} | {b['errors']} / {a['errors']} |")
    print(f"\nRSS after the load: before {rss['before']:.1f} MB, after {rss['after']:.1f} MB")


def memory(args, tmp):
    # Memory with SmolLM2 loaded, idle and under 8 concurrent local streams.
    models = Path(os.environ.get("MODELS_DIR", Path.home() / ".cache/slmgate/models"))
    local = f"""
[models.smollm2]
type = "local"
path = "{models / 'smollm2-135m-instruct-q4_1.gguf'}"
threads = 1
context = 2048
parallel = 8
kv_cache = "q8_0"
"""
    gw = start_gateway(args.bin, tmp, 18182, local)
    try:
        time.sleep(1)
        idle = rss_mb(gw.pid)
        body = {"model": "smollm2", "messages": [{"role": "user", "content": "Write a story."}], "max_tokens": 64}
        r = subprocess.Popen(["taskset", "-c", "0", "oha", "--no-tui", "-z", "15s", "-c", "8", "-m", "POST",
                              "-H", "content-type: application/json", "-d", json.dumps(body),
                              "http://127.0.0.1:18182/v1/chat/completions"], stdout=subprocess.DEVNULL)
        peak = 0.0
        while r.poll() is None:
            peak = max(peak, rss_mb(gw.pid))
            time.sleep(0.2)
        print(f"slmgate RSS with SmolLM2 loaded (the default: context 2048 x 8 slots, q8_0 KV): idle {idle:.1f} MB, "
              f"peak under 8 concurrent requests {peak:.1f} MB")
    finally:
        gw.send_signal(signal.SIGTERM)
        gw.wait()


if __name__ == "__main__":
    main()
