#!/usr/bin/env python3
"""Soak: the full governed path under mixed traffic for a long run, watching for leaks.

    python3 bench/soak.py [--secs 600] [--bin target/release/slmgate] [--svg docs/img/soak-rss.svg]

Starts the nginx mock upstream (bench/mock-upstream.nginx.conf) and one slmgate with auth
on (a key with a budget and rate limits far above the load), PII redaction, the injection
guard, review sampling, sync audit durability and SmolLM2 loaded. First measures the highest
rate this load generator reaches through the gateway (closed loop, 15 s), then runs open-loop
at 80 % of it for --secs with mixed traffic:

    55 % JSON answers from the mock, 25 % streams from the mock, 10 % streams cancelled after
    the first chunk, 5 % requests with an e-mail address (redacted and restored),
    5 % local SmolLM2 answers (8 tokens; at most 2 in flight, the rest of the 5 % go to
    the mock so the rate holds).

Every 10 s it records the gateway's RSS, its open file descriptors, the audit rows committed
and the errors so far. At the end it stops the gateway (SIGTERM), verifies the audit chain and
checks that every request sent has its entry. Prints a markdown table; writes the RSS curve
as an SVG. The load generator is Python (asyncio + httpx) on the same 2 cores, so the rate
is what it reaches here, stated in the output.
"""

import argparse
import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_overhead import rss_mb, start_nginx, wait_http  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("MODELS_DIR", Path.home() / ".cache/slmgate/models"))
ADMIN = "sk-admin-soak-0123456789abcdef"
PORT = 18190


def start_gateway(binary, tmp):
    cfg = tmp / "soak.toml"
    cfg.write_text(f"""
[server]
listen = "127.0.0.1:{PORT}"
[auth]
enabled = true
admin_key = "{ADMIN}"
[audit]
content = "redacted"
durability = "sync"
[pii]
policy = "redact"
[review]
sample = 0.05
[models.mock]
type = "remote"
wire = "openai"
base_url = "http://127.0.0.1:18080/v1"
model = "gpt-4o-mini"
max_retries = 0
input_cost_per_mtok = 0.15
output_cost_per_mtok = 0.6
[models.mock-stream]
type = "remote"
wire = "openai"
base_url = "http://127.0.0.1:18080/stream/v1"
model = "gpt-4o-mini"
max_retries = 0
input_cost_per_mtok = 0.15
output_cost_per_mtok = 0.6
[models.smollm2]
type = "local"
path = "{MODELS / 'smollm2-135m-instruct-q4_1.gguf'}"
threads = 1
context = 1024
parallel = 2
""")
    p = subprocess.Popen([str(binary), "serve", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                         stderr=open(tmp / "gateway.log", "w"),
                         env={**os.environ, "SLMGATE_LOG": "warn", "SLMGATE_DATA_DIR": str(tmp / "data")})
    wait_http(f"http://127.0.0.1:{PORT}/ready", timeout=180)
    return p, tmp / "data" / "slmgate.db"


def create_key(url):
    r = httpx.post(url + "/admin/keys", headers={"authorization": f"Bearer {ADMIN}"},
                   json={"name": "soak", "budget": "1000000/month", "rpm": 10_000_000})
    r.raise_for_status()
    return r.json()["key"]


class Load:
    def __init__(self, url, key):
        self.url = url + "/v1/chat/completions"
        self.headers = {"authorization": f"Bearer {key}"}
        self.sent = 0
        self.ok = 0
        self.errors = {}
        self.local_in_flight = 0
        # Requests not sent because the generator already had its connections' worth in
        # flight (a slow gateway shows up here and in the latencies, not as a pile-up).
        self.shed = 0
        self.latencies = []

    def body(self):
        x = random.random()
        msg = "Hello there, summarise our refund policy in one line."
        if x < 0.55:
            return "json", {"model": "mock", "messages": [{"role": "user", "content": msg}]}
        if x < 0.80:
            return "stream", {"model": "mock-stream", "stream": True, "messages": [{"role": "user", "content": msg}]}
        if x < 0.90:
            return "cancel", {"model": "mock-stream", "stream": True, "messages": [{"role": "user", "content": msg}]}
        if x < 0.95:
            return "pii", {"model": "mock", "messages": [{"role": "user", "content": "Mail jane.doe@example.com the invoice"}]}
        if self.local_in_flight < 2:
            return "local", {"model": "smollm2", "max_tokens": 8, "messages": [{"role": "user", "content": "Say hi."}]}
        return "json", {"model": "mock", "messages": [{"role": "user", "content": msg}]}

    def error(self, what):
        self.errors[what] = self.errors.get(what, 0) + 1

    async def one(self, client):
        t0 = time.monotonic()
        try:
            await self.send(client)
        finally:
            self.latencies.append(time.monotonic() - t0)

    async def send(self, client):
        kind, body = self.body()
        self.sent += 1
        if kind == "local":
            self.local_in_flight += 1
        try:
            if body.get("stream"):
                async with client.stream("POST", self.url, json=body, headers=self.headers) as r:
                    if r.status_code != 200:
                        await r.aread()
                        return self.error(f"{kind} {r.status_code}")
                    async for line in r.aiter_lines():
                        if kind == "cancel" and line.startswith("data: "):
                            self.ok += 1
                            return  # leaves mid-stream: the gateway audits a 499
                        if line == "data: [DONE]":
                            self.ok += 1
                            return
                    self.error(f"{kind} no [DONE]")
            else:
                r = await client.post(self.url, json=body, headers=self.headers)
                if r.status_code == 200:
                    self.ok += 1
                else:
                    self.error(f"{kind} {r.status_code}")
        except httpx.HTTPError as e:
            self.error(f"{kind} {type(e).__name__}")
        finally:
            if kind == "local":
                self.local_in_flight -= 1


async def closed_loop(load, secs, conc=32):
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=conc), timeout=30) as client:
        end = time.monotonic() + secs
        start_ok = load.ok

        async def worker():
            while time.monotonic() < end:
                await load.one(client)

        t0 = time.monotonic()
        await asyncio.gather(*[worker() for _ in range(conc)])
        return (load.ok - start_ok) / (time.monotonic() - t0)


async def open_loop(load, rate, secs, conns=256):
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=conns), timeout=30) as client:
        tasks = set()
        t0 = time.monotonic()
        n = 0
        while True:
            now = time.monotonic()
            if now - t0 >= secs:
                break
            due = t0 + n / rate
            if due > now:
                await asyncio.sleep(min(due - now, 0.05))
                continue
            n += 1
            if len(tasks) >= conns:
                load.shed += 1
                continue
            t = asyncio.create_task(load.one(client))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)


def audit_rows(db, exact=False):
    """Entries committed (the chain's last sequence number; exact: request entries)."""
    q = ("SELECT COUNT(*) FROM audit WHERE json_extract(entry, '$.kind') = 'request'" if exact
         else "SELECT COALESCE(MAX(seq), 0) FROM audit")
    try:
        c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        n = c.execute(q).fetchone()[0]
        c.close()
        return n
    except sqlite3.Error:
        return None


def svg(samples, path):
    w, h, pad = 640, 260, 48
    ts = [s["t"] for s in samples]
    rs = [s["rss_mb"] for s in samples]
    lo, hi = 0, max(rs) * 1.2
    x = lambda t: pad + (w - 2 * pad) * t / max(ts[-1], 1)
    y = lambda r: h - pad - (h - 2 * pad) * (r - lo) / (hi - lo)
    pts = " ".join(f"{x(t):.1f},{y(r):.1f}" for t, r in zip(ts, rs))
    ticks = "".join(f'<text x="{pad - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{v:.0f}</text>'
                    for v in [lo, hi / 2, hi])
    xt = "".join(f'<text x="{x(t):.1f}" y="{h - pad + 16}" text-anchor="middle" font-size="11">{t:.0f}</text>'
                 for t in [0, ts[-1] / 2, ts[-1]])
    path.write_text(f"""<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="{w / 2}" y="20" text-anchor="middle" font-size="13">slmgate RSS during the soak (MB over seconds)</text>
<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="black"/>
<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="black"/>
{ticks}{xt}
<polyline fill="none" stroke="#2563eb" stroke-width="2" points="{pts}"/>
</svg>
""")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--secs", type=int, default=600)
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "slmgate"))
    ap.add_argument("--svg", default=str(ROOT / "docs" / "img" / "soak-rss.svg"))
    ap.add_argument("--share", type=float, default=0.8, help="of the measured max rate")
    args = ap.parse_args()
    random.seed(7)
    tmp = Path(tempfile.mkdtemp())
    nginx = start_nginx(tmp)
    gw, db = start_gateway(args.bin, tmp)
    url = f"http://127.0.0.1:{PORT}"
    try:
        load = Load(url, create_key(url))
        top = asyncio.run(closed_loop(load, 15))
        rate = args.share * top
        print(f"max rate through the gateway with this load generator: {top:.0f} req/s; soak at {rate:.0f} req/s for {args.secs} s\n")
        samples = []
        stop = threading.Event()
        t0 = time.monotonic()

        def sample():
            # Off the event loop: a slow sample never delays the load.
            seen = 0
            while True:
                lat = sorted(load.latencies[seen:])
                seen += len(lat)
                s = {"t": round(time.monotonic() - t0), "rss_mb": rss_mb(gw.pid),
                     "fds": len(os.listdir(f"/proc/{gw.pid}/fd")), "audit_rows": audit_rows(db),
                     "sent": load.sent, "ok": load.ok, "errors": sum(load.errors.values()), "shed": load.shed,
                     "p99_ms": round(1000 * lat[int(len(lat) * 0.99)], 1) if lat else None}
                samples.append(s)
                print(f"t={s['t']:>4}s rss={s['rss_mb']:.1f} MB fds={s['fds']} audit={s['audit_rows']} "
                      f"sent={s['sent']} errors={s['errors']} shed={s['shed']} p99={s['p99_ms']} ms", flush=True)
                if stop.wait(10):
                    return

        sampler = threading.Thread(target=sample)
        before = load.sent
        sampler.start()
        asyncio.run(open_loop(load, rate, args.secs))
        achieved = (load.sent - before) / (time.monotonic() - t0)
        stop.set()
        sampler.join()
    finally:
        gw.send_signal(signal.SIGTERM)
        gw.wait()
        nginx.terminate()
    verify = subprocess.run([args.bin, "audit", "verify", "--db", str(db)], capture_output=True, text=True)
    rows = audit_rows(db, exact=True)
    # The first RSS sample after the warm-up phase is the baseline.
    base, peak, last = samples[1]["rss_mb"], max(s["rss_mb"] for s in samples[1:]), samples[-1]["rss_mb"]
    print("\n| measure | value |\n|---|---|")
    print(f"| rate | {achieved:.0f} req/s sent (target {rate:.0f}, 80 % of the {top:.0f} req/s max), {args.secs} s |")
    print(f"| requests | {load.sent} sent, {load.ok} ok, errors {load.errors or 0}, {load.shed} not sent (generator at its {256} connections) |")
    print(f"| latency | p99 per 10 s window: median {sorted(x['p99_ms'] for x in samples if x['p99_ms'])[len(samples) // 2 - 1]} ms, worst {max(x['p99_ms'] or 0 for x in samples)} ms |")
    print(f"| RSS | {base:.1f} MB at 10 s → {last:.1f} MB at the end (peak {peak:.1f} MB, growth {100 * (last - base) / base:+.1f} %) |")
    print(f"| open fds | {samples[1]['fds']} → {samples[-1]['fds']} |")
    print(f"| audit | {rows} request entries for {load.sent} requests sent; verify: {verify.stdout.strip().splitlines()[-1] if verify.stdout else verify.stderr.strip()} |")
    svg(samples, Path(args.svg))
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "soak.json").write_text(json.dumps({"max_rate": top, "rate": rate, "samples": samples, "errors": load.errors}, indent=1))
    print(f"\nRSS curve: {args.svg}; samples: bench/out/soak.json")
    ok = verify.returncode == 0 and rows == load.sent and (last - base) / base <= 0.10
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
