"""The audit log survives crashes: after `kill -9` under load it verifies and holds every
request answered before the last flush interval; a graceful stop flushes everything."""

import json
import subprocess
import threading
import time

import httpx

from conftest import BIN, Gateway

FLUSH_S = 0.1


def config(fake):
    return f"""
[server]
listen = "127.0.0.1:@PORT@"

[audit]
flush_interval_ms = {int(FLUSH_S * 1000)}

[models.fast]
type = "remote"
wire = "openai"
base_url = "{fake}/ok/v1"
model = "fake"
max_retries = 0
"""


def logged_ids(gw):
    out = subprocess.run([str(BIN), "audit", "export", "--db", str(gw.db)], capture_output=True, text=True, check=True)
    return {json.loads(line)["entry"]["id"] for line in out.stdout.splitlines()}


def verify(gw):
    r = subprocess.run([str(BIN), "audit", "verify", "--db", str(gw.db)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def load(gw, stop, done):
    with httpx.Client(timeout=5) as c:
        while not stop.is_set():
            try:
                r = c.post(gw.url + "/v1/chat/completions",
                           json={"model": "fast", "messages": [{"role": "user", "content": "hi"}]})
            except httpx.HTTPError:
                return
            if r.status_code == 200:
                done.append((r.headers["x-request-id"], time.monotonic()))


def test_kill_9_under_load_loses_nothing_answered_before_the_last_flush(session_tmp, fake_upstream):
    gw = Gateway("audit-kill9", config(fake_upstream.url), session_tmp)
    stop, done = threading.Event(), []
    workers = [threading.Thread(target=load, args=(gw, stop, done)) for _ in range(8)]
    for w in workers:
        w.start()
    time.sleep(3)
    killed_at = time.monotonic()
    gw.proc.kill()
    gw.proc.wait()
    stop.set()
    for w in workers:
        w.join()
    gw.log.close()
    assert len(done) > 50, "the load ran"
    assert "chain intact" in verify(gw)
    ids = logged_ids(gw)
    # Answered before the last flush interval (plus scheduling slack) must be on disk.
    must = [rid for rid, t in done if t < killed_at - FLUSH_S - 0.2]
    missing = [rid for rid in must if rid not in ids]
    assert not missing, f"{len(missing)} of {len(must)} answered requests missing after kill -9"


def test_graceful_stop_flushes_every_entry(session_tmp, fake_upstream):
    gw = Gateway("audit-graceful", config(fake_upstream.url), session_tmp)
    rids = []
    for _ in range(20):
        r = httpx.post(gw.url + "/v1/chat/completions",
                       json={"model": "fast", "messages": [{"role": "user", "content": "hi"}]})
        rids.append(r.headers["x-request-id"])
    gw.stop()
    assert "audit log flushed" in gw.log_path.read_text()
    assert set(rids) <= logged_ids(gw)
    verify(gw)
