#!/usr/bin/env python3
"""Builds the labelled set behind `slmgate rag grounding`: SmolLM2-135M answers each question
of tests/data/rag/questions.jsonl twice through a real gateway, with retrieval (a `rag` route,
one passage) and without; each answer is judged against the passage the RAG route retrieved,
and labelled grounded when it contains the reference answer (automatic labels: an answer
that is right but phrased without the reference's exact words counts as ungrounded).

    .venv/bin/python bench/make_grounding_set.py [--out tests/data/rag/grounding.jsonl]
    target/debug/slmgate rag grounding --data tests/data/rag/grounding.jsonl
"""

import argparse
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("SLMGATE_BIN", ROOT / "target" / "debug" / "slmgate"))
MODELS = Path(os.environ.get("MODELS_DIR", Path.home() / ".cache" / "slmgate" / "models"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "tests" / "data" / "rag" / "grounding.jsonl"))
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="slmgate-grounding-"))
    port = free_port()
    cfg = tmp / "g.toml"
    cfg.write_text(f"""
[server]
listen = "127.0.0.1:{port}"
[embeddings]
path = "{MODELS / 'all-MiniLM-L6-v2'}"
[models.smollm2]
type = "local"
path = "{MODELS / 'smollm2-135m-instruct-q4_1.gguf'}"
threads = 2
context = 2048
parallel = 2
[routes.docs]
tiers = [{{ name = "local", models = ["smollm2"] }}]
rag = {{ collection = "debian", top_k = 1, max_context_tokens = 400 }}
[routes.plain]
tiers = [{{ name = "local", models = ["smollm2"] }}]
""")
    env = {**os.environ, "SLMGATE_DATA_DIR": str(tmp / "data")}
    subprocess.run([str(BIN), "rag", "ingest", "--config", str(cfg), "--collection", "debian",
                    str(ROOT / "tests" / "data" / "rag" / "debian")], check=True, env=env)
    proc = subprocess.Popen([str(BIN), "serve", "--config", str(cfg)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        db = sqlite3.connect(tmp / "data" / "slmgate.db")

        def ask(route, q):
            r = httpx.post(url + "/v1/chat/completions", timeout=120, json={
                "model": route, "max_tokens": 40, "temperature": 0,
                "messages": [{"role": "user", "content": q}]}).json()
            return r["choices"][0]["message"]["content"], r.get("citations", [])

        rows = []
        questions = [json.loads(l) for l in (ROOT / "tests" / "data" / "rag" / "questions.jsonl").read_text().splitlines()]
        for q in questions:
            rag, cites = ask("docs", q["question"])
            plain, _ = ask("plain", q["question"])
            passages = "".join(
                "{}\n{}\n".format(*db.execute("SELECT heading, text FROM kn_chunks WHERE id = ?", (c["chunk_id"],)).fetchone())
                for c in cites)
            for answer in (rag, plain):
                rows.append({"question": q["question"], "passages": passages, "answer": answer,
                             "grounded": q["answer"] in answer})
        Path(a.out).write_text("".join(json.dumps(r) + "\n" for r in rows))
        right = sum(r["grounded"] for r in rows[0::2])
        print(f"{len(rows)} answers written to {a.out}; RAG right {right}/{len(questions)}, "
              f"without RAG right {sum(r['grounded'] for r in rows[1::2])}/{len(questions)}", file=sys.stderr)
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
