#!/usr/bin/env python3
"""How long `slmgate report` (and so the dashboard's summary, the same code) takes on a large
audit log. Writes N synthetic request entries (shaped like real ones: two tiers, 20 % escalated,
4 keys, 3 routes) into a fresh SQLite store, then times report variants.

    python3 bench/ledger_scale.py --rows 100000 [--bin target/release/slmgate]
"""

import argparse
import json
import random
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "slmgate"))
    a = ap.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as d:
        db = Path(d) / "slmgate.db"
        # The binary creates the schema.
        subprocess.run([a.bin, "keys", "list", "--db", str(db)], check=True, capture_output=True)
        now = int(time.time() * 1000)
        rows = []
        for i in range(a.rows):
            esc = rng.random() < 0.2
            p, c = rng.randint(50, 800), rng.randint(10, 300)
            e = {"kind": "request", "id": f"r{i}", "ts_ms": now - rng.randint(0, 7 * 86_400_000),
                 "endpoint": "chat", "key_id": f"key_{i % 4}", "team": None, "user": None,
                 "model": ["support", "extract", "auto"][i % 3], "stream": False, "status": 200,
                 "error": None, "plan": {"tiers": ["local", "frontier"], "rule": None,
                                         "router_score": None, "reasons": []},
                 "served": {"tier": "frontier" if esc else "local",
                            "deployment": "gpt-4o" if esc else "smollm2",
                            "confidence": None if esc else -rng.random() * 0.6},
                 "attempts": [], "escalations": ([{"from_tier": "local", "to_tier": "frontier",
                                                   "cause": "low_confidence", "deployment": "smollm2",
                                                   "confidence": -0.6 - rng.random(), "judged_tokens": 16}]
                                                 if esc else []),
                 "prompt_tokens": p, "completion_tokens": c,
                 "cost_usd": (p * 2.5 + c * 10) / 1e6 if esc else (p * 0.1 + c * 0.15) / 1e6,
                 "baseline_cost_usd": (p * 2.5 + c * 10) / 1e6, "latency_ms": rng.randint(50, 3000),
                 "pii": {"types": {}, "action": None}, "guard": None, "reviewed": False}
            rows.append((i + 1, e["id"], e["ts_ms"], e["key_id"], json.dumps(e), "", "", ""))
        with sqlite3.connect(db) as c:
            c.executemany("INSERT INTO audit (seq, id, ts_ms, key_id, entry, content_hash, prev_hash, hash)"
                          " VALUES (?,?,?,?,?,?,?,?)", rows)
        size = db.stat().st_size / 1e6
        print(f"{a.rows} entries, {size:.1f} MB")
        for args in (["--by", "model"], ["--by", "key", "--format", "json"],
                     ["--what-if", "cascade.threshold=-0.3"]):
            best = None
            for _ in range(3):
                t = time.perf_counter()
                subprocess.run([a.bin, "report", "--db", str(db), "--since", "all", *args],
                               check=True, capture_output=True)
                dt = time.perf_counter() - t
                best = dt if best is None else min(best, dt)
            print(f"report {' '.join(args):<40} {best * 1000:8.0f} ms (best of 3)")


if __name__ == "__main__":
    main()
