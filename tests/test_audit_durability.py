"""The audit log survives crashes. Under `durability = "sync"` (the default) an answer leaves
only once its entry is committed: after `kill -9` under load the log verifies and holds every
request any client got an answer to. Under `"interval"` it holds every request answered
before the last flush interval. SIGTERM under load drains: nothing answered is lost. A full
disk refuses requests with 503 rather than answering them unaudited."""

import json
import os
import subprocess
import threading
import time

import httpx
import pytest

from conftest import BIN, Gateway

FLUSH_S = 0.1


def config(fake, durability="sync"):
    return f"""
[server]
listen = "127.0.0.1:@PORT@"

[audit]
durability = "{durability}"
flush_interval_ms = {int(FLUSH_S * 1000)}

[models.fast]
type = "remote"
wire = "openai"
base_url = "{fake}/ok/v1"
model = "fake"
max_retries = 0
"""


def logged(gw):
    """Request id → the status its entry records."""
    out = subprocess.run([str(BIN), "audit", "export", "--db", str(gw.db)], capture_output=True, text=True, check=True)
    entries = (json.loads(line)["entry"] for line in out.stdout.splitlines())
    return {e["id"]: e["status"] for e in entries if e["kind"] == "request"}


def verify(gw):
    r = subprocess.run([str(BIN), "audit", "verify", "--db", str(gw.db)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def load(gw, stop, done, stream=False):
    """Sends requests until stopped or the server goes; records (request id, status, when)
    of every response received in full."""
    with httpx.Client(timeout=10) as c:
        while not stop.is_set():
            body = {"model": "fast", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
            try:
                r = c.post(gw.url + "/v1/chat/completions", json=body)
                if stream and r.status_code == 200 and not r.text.rstrip().endswith("data: [DONE]"):
                    continue  # cut off before its end: not acknowledged
            except httpx.HTTPError:
                if stop.is_set():
                    return
                time.sleep(0.05)
                continue
            done.append((r.headers.get("x-request-id"), r.status_code, time.monotonic()))


def run_load(gw, seconds, workers=8, stream_share=2):
    stop, done = threading.Event(), []
    threads = [threading.Thread(target=load, args=(gw, stop, done, i < stream_share)) for i in range(workers)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    return stop, done, threads


def kill_9_under_load(gw, stream_share):
    """3 s of load, then `kill -9`: the responses received, and when the kill came."""
    stop, done, threads = run_load(gw, 3, stream_share=stream_share)
    killed_at = time.monotonic()
    gw.proc.kill()
    gw.proc.wait()
    stop.set()
    for t in threads:
        t.join()
    gw.log.close()
    return done, killed_at


def test_kill_9_under_load_loses_no_answered_request_in_sync_mode(session_tmp, fake_upstream):
    gw = Gateway("audit-kill9-sync", config(fake_upstream.url), session_tmp)
    done, _ = kill_9_under_load(gw, stream_share=2)
    answered = [rid for rid, status, _ in done if status == 200]
    assert len(answered) > 50, "the load ran"
    assert "chain intact" in verify(gw)
    ids = logged(gw)
    missing = [rid for rid in answered if rid not in ids]
    print(f"kill -9 (sync): {len(missing)} of {len(answered)} answered requests missing")
    assert not missing, f"{len(missing)} of {len(answered)} answered requests missing after kill -9"


def test_kill_9_under_load_loses_nothing_answered_before_the_last_flush(session_tmp, fake_upstream):
    gw = Gateway("audit-kill9", config(fake_upstream.url, "interval"), session_tmp)
    done, killed_at = kill_9_under_load(gw, stream_share=0)
    assert len(done) > 50, "the load ran"
    assert "chain intact" in verify(gw)
    ids = logged(gw)
    # Answered before the last flush interval (plus scheduling slack) must be on disk.
    must = [rid for rid, status, t in done if status == 200 and t < killed_at - FLUSH_S - 0.2]
    missing = [rid for rid in must if rid not in ids]
    assert not missing, f"{len(missing)} of {len(must)} answered requests missing after kill -9"


def test_sigterm_under_load_drains_and_loses_nothing(session_tmp, fake_upstream):
    gw = Gateway("audit-sigterm", config(fake_upstream.url), session_tmp)
    stop, done, threads = run_load(gw, 2)
    gw.stop()
    assert gw.proc.returncode == 0, gw.log_path.read_text()[-2000:]
    stop.set()
    for t in threads:
        t.join()
    assert "audit log flushed" in gw.log_path.read_text()
    answered = {rid: status for rid, status, _ in done if rid}
    assert len(answered) > 50
    ids = logged(gw)
    missing = [rid for rid in answered if rid not in ids]
    print(f"SIGTERM: {len(missing)} of {len(answered)} responses missing")
    assert not missing, f"{len(missing)} of {len(answered)} responses missing after SIGTERM"
    assert all(ids[rid] == status for rid, status in answered.items()), "each entry says what its client got"
    verify(gw)


def test_graceful_stop_flushes_every_entry(session_tmp, fake_upstream):
    gw = Gateway("audit-graceful", config(fake_upstream.url, "interval"), session_tmp)
    rids = []
    for _ in range(20):
        r = httpx.post(gw.url + "/v1/chat/completions",
                       json={"model": "fast", "messages": [{"role": "user", "content": "hi"}]})
        rids.append(r.headers["x-request-id"])
    gw.stop()
    assert "audit log flushed" in gw.log_path.read_text()
    assert set(rids) <= set(logged(gw))
    verify(gw)


def mount_tmpfs(path, size):
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root/CAP_SYS_ADMIN): {r.stderr.strip()}")


def fill(path):
    """Writes a file until the file system is full."""
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
        try:
            # Bytes still buffered cannot be written either.
            f.close()
        except OSError:
            pass


def test_a_full_disk_refuses_requests_instead_of_answering_them_unaudited(session_tmp, fake_upstream):
    data = session_tmp / "audit-full-data"
    mount_tmpfs(data, "4m")
    try:
        gw = Gateway("audit-full", config(fake_upstream.url), session_tmp)
        filler = data / "filler"
        fill(filler)
        got = []
        with httpx.Client(timeout=30) as c:
            for _ in range(400):
                r = c.post(gw.url + "/v1/chat/completions",
                           json={"model": "fast", "messages": [{"role": "user", "content": "hi " * 50}]})
                got.append((r.headers.get("x-request-id"), r.status_code, r.json()))
                if r.status_code == 503:
                    break
            rid, status, body = got[-1]
            print(f"full disk: {len(got) - 1} requests answered before the first 503")
            assert status == 503, "the disk filled up but requests were still answered"
            assert body["error"]["code"] == "audit_unavailable"
            assert c.get(gw.url + "/ready").json()["status"] == "audit_unavailable"
            r = c.post(gw.url + "/v1/chat/completions", json={"model": "fast", "messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == 503 and r.json()["error"]["code"] == "audit_unavailable", "refused while full"
            got.append((r.headers.get("x-request-id"), 503, None))
            # Space again: the writer's retry lands every held entry and service resumes.
            os.remove(filler)
            deadline = time.time() + 15
            while c.get(gw.url + "/ready").status_code != 200 and time.time() < deadline:
                time.sleep(0.2)
            r = c.post(gw.url + "/v1/chat/completions", json={"model": "fast", "messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == 200
            got.append((r.headers["x-request-id"], 200, None))
        gw.stop()
        ids = logged(gw)
        assert [ids.get(rid) for rid, _, _ in got] == [status for _, status, _ in got], \
            "every request is in the log with the status its client got"
        verify(gw)
    finally:
        subprocess.run(["umount", "-l", str(data)])
