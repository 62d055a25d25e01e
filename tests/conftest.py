"""Test harness: starts the real slmgate binary on loopback with the real models.

Environment: SLMGATE_BIN (default target/debug/slmgate), MODELS_DIR (default
~/.cache/slmgate/models). Gateways write their logs to tests/.logs/NAME.log; tests grep them.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("SLMGATE_BIN", ROOT / "target" / "debug" / "slmgate"))
MODELS = Path(os.environ.get("MODELS_DIR", Path.home() / ".cache" / "slmgate" / "models"))
LOGS = ROOT / "tests" / ".logs"
SMOL = MODELS / "smollm2-135m-instruct-q4_1.gguf"
GEMMA = MODELS / "gemma3-270m-q4_k_m.gguf"
MINILM = MODELS / "all-MiniLM-L6-v2"


# Prompts SmolLM2 answers with widely spread confidence: a cascade at mean logprob −0.6 keeps
# some local and escalates others (tests of the cost ledger and the dashboard rely on both).
CASCADE_PROMPTS = [
    "Repeat exactly: the cat sat on the mat.",
    "List the prime numbers below 20.",
    "Write a haiku about quantum chromodynamics.",
    "What is the capital of France?",
    "Explain the Riemann hypothesis in detail.",
    "Translate 'good morning' to German.",
]


def chat(gw, model, text, key=None, stream=False, max_tokens=24):
    """One greedy chat request through `gw`, optionally with an API key; the httpx response."""
    return httpx.post(gw.url + "/v1/chat/completions", timeout=120,
                      headers={"authorization": f"Bearer {key}"} if key else {},
                      json={"model": model, "max_tokens": max_tokens, "temperature": 0, "stream": stream,
                            "messages": [{"role": "user", "content": text}]})


def admin_call(gw, admin_key, method, path, **kw):
    """A request to the admin API of `gw` with the admin key."""
    return httpx.request(method, gw.url + path, headers={"authorization": f"Bearer {admin_key}"},
                         timeout=60, **kw)


def audit_entries(gw, kind=None):
    """The audit log's entries in order (of one `kind`: request, rollout, adapter, ...)."""
    import json
    import sqlite3
    with sqlite3.connect(gw.db) as c:
        rows = [json.loads(e) for (e,) in c.execute("SELECT entry FROM audit ORDER BY seq")]
    return [e for e in rows if kind is None or e["kind"] == kind]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    """One slmgate process serving a config written to a temp file."""

    def __init__(self, name, config_text, tmp_path, env=None):
        self.name = name
        self.data_dir = tmp_path / f"{name}-data"
        self.db = self.data_dir / "slmgate.db"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = tmp_path / f"{name}.toml"
        # No config text: the embedded default, listening where SLMGATE_LISTEN says.
        config_args = []
        if config_text is not None:
            self.config_path.write_text(config_text.replace("@PORT@", str(self.port)))
            config_args = ["--config", str(self.config_path)]
        LOGS.mkdir(exist_ok=True)
        self.log_path = LOGS / f"{name}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(BIN), "serve", *config_args],
            stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "SLMGATE_LOG": "info,slmgate_core=debug",
                 "SLMGATE_LISTEN": f"127.0.0.1:{self.port}", "SLMGATE_MODELS_DIR": str(MODELS),
                 "SLMGATE_DATA_DIR": str(tmp_path / f"{name}-data"), **(env or {})},
        )
        self.wait_ready()

    def wait_ready(self, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
            try:
                if httpx.get(self.url + "/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.log_path.read_text()}")

    def logs(self):
        self.log.flush()
        return self.log_path.read_text()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def smol(name="smollm2", context=512, parallel=2):
    """The `[models.NAME]` block of a local SmolLM2 deployment on 2 threads."""
    return f"""
[models.{name}]
type = "local"
path = "{SMOL}"
threads = 2
context = {context}
parallel = {parallel}
"""


def remote(name, base_url, model="fake", wire="openai", **fields):
    """The `[models.NAME]` block of a remote deployment; extra keys as TOML values
    (e.g. `max_retries=0`, `input_cost_per_mtok=3`, `residency="us"`)."""
    extra = "".join(f'{k} = "{v}"\n' if isinstance(v, str) else f"{k} = {v}\n" for k, v in fields.items())
    return f"""
[models.{name}]
type = "remote"
wire = "{wire}"
base_url = "{base_url}"
model = "{model}"
{extra}"""


def local_config():
    return f"""
[server]
listen = "127.0.0.1:@PORT@"
max_body_bytes = 65536

[models.smollm2]
type = "local"
path = "{SMOL}"
threads = 2
context = 1024
parallel = 8
batch = 512
queue = 32

[aliases]
auto = ["smollm2"]

[embeddings]
name = "all-minilm-l6-v2"
path = "{MINILM}"
"""


@pytest.fixture(scope="session")
def session_tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("slmgate")


@pytest.fixture(scope="session")
def local_gw(session_tmp):
    gw = Gateway("local", local_config(), session_tmp)
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def gemma_upstream(session_tmp):
    """A second slmgate serving Gemma 3 270M: the real 'LLM' upstream."""
    cfg = f"""
[server]
listen = "127.0.0.1:@PORT@"

[models.gemma3]
type = "local"
path = "{GEMMA}"
threads = 2
context = 1024
parallel = 4
"""
    gw = Gateway("gemma-upstream", cfg, session_tmp)
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def fake_upstream():
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fake_upstream.py"), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout.readline().strip() == "ready"

    class Fake:
        url = f"http://127.0.0.1:{port}"

        def log(self):
            return httpx.get(self.url + "/_log").json()

        def reset(self):
            httpx.post(self.url + "/_reset")

    yield Fake()
    proc.kill()
    proc.wait()
