"""Speculative decoding through the real binary: a Q8_0 requantization of SmolLM2 (made with
`slmgate quantize`, llama.cpp's quantizer) drafted for by SmolLM2 Q4_1 (`draft = "smollm2"`),
prompt lookup per request, the counters on /metrics, and the errors: an incompatible draft
stops startup with the reason, a bad `speculative` value is a 400."""

import re
import subprocess

import httpx
import pytest

from conftest import BIN, GEMMA, SMOL, Gateway, smol

QUOTING = [
    "Repeat exactly: the quick brown fox jumps over the lazy dog, and the lazy dog sleeps.",
    "Context: The backup job runs every night at 02:00 and writes to /srv/backup/daily. "
    "Question: When does the backup job run and where does it write? Quote the context.",
    "What is the capital of France?",
]


@pytest.fixture(scope="module")
def q8(tmp_path_factory):
    out = tmp_path_factory.mktemp("spec") / "smollm2-q8_0.gguf"
    r = subprocess.run([str(BIN), "quantize", str(SMOL), str(out), "--type", "q8_0",
                        "--allow-requantize", "--threads", "2"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > SMOL.stat().st_size  # 8 bits a weight instead of 4.5
    return out


@pytest.fixture(scope="module")
def gw(tmp_path_factory, q8):
    tmp = tmp_path_factory.mktemp("specgw")
    text = f"""
[server]
listen = "${{SLMGATE_LISTEN:-127.0.0.1:0}}"
{smol(context=1024, parallel=2)}
[models.big]
type = "local"
path = "{q8}"
threads = 2
context = 1024
parallel = 2
draft = "smollm2"
draft_max = 8

[models.big-plain]
type = "local"
path = "{q8}"
threads = 2
context = 1024
parallel = 2
"""
    g = Gateway("speculative", text, tmp)
    yield g
    g.stop()


def chat(gw, model, prompt, **extra):
    r = httpx.post(gw.url + "/v1/chat/completions", timeout=120,
                   json={"model": model, "max_tokens": 48, "temperature": 0,
                         "messages": [{"role": "user", "content": prompt}], **extra})
    return r


def counter(gw, name, deployment):
    text = httpx.get(gw.url + "/metrics").text
    m = re.search(rf'^{name}{{deployment="{deployment}"}} (\d+)', text, re.M)
    return int(m.group(1)) if m else 0


def test_a_drafted_model_answers_as_the_model_alone(gw):
    before = counter(gw, "slmgate_speculative_accepted_tokens_total", "big")
    for p in QUOTING:
        spec = chat(gw, "big", p)
        alone = chat(gw, "big-plain", p)
        assert spec.status_code == 200 and alone.status_code == 200, spec.text
        assert spec.json()["choices"][0]["message"]["content"] == alone.json()["choices"][0]["message"]["content"]
        off = chat(gw, "big", p, speculative={"type": "none"})
        assert off.json()["choices"][0]["message"]["content"] == alone.json()["choices"][0]["message"]["content"]
    accepted = counter(gw, "slmgate_speculative_accepted_tokens_total", "big")
    drafted = counter(gw, "slmgate_speculative_draft_tokens_total", "big")
    steps = counter(gw, "slmgate_speculative_steps_total", "big")
    assert accepted > before and drafted >= accepted and steps > 0
    assert counter(gw, "slmgate_speculative_draft_tokens_total", "big-plain") == 0


def test_prompt_lookup_per_request_streams_the_same_text(gw):
    p = QUOTING[0]
    base = chat(gw, "smollm2", p).json()["choices"][0]["message"]["content"]
    before = counter(gw, "slmgate_speculative_accepted_tokens_total", "smollm2")
    text = ""
    with httpx.stream("POST", gw.url + "/v1/chat/completions", timeout=120,
                      json={"model": "smollm2", "max_tokens": 48, "temperature": 0, "stream": True,
                            "speculative": {"type": "lookup", "n_draft": 8, "ngram_max": 3},
                            "messages": [{"role": "user", "content": p}]}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                import json
                for ch in json.loads(line[6:])["choices"]:
                    text += ch["delta"].get("content") or ""
    assert text == base
    assert counter(gw, "slmgate_speculative_accepted_tokens_total", "smollm2") > before


@pytest.mark.parametrize("spec,needle", [
    ({"type": "sometimes"}, "speculative"),
    ({"type": "lookup", "n_draft": 0}, "n_draft"),
    ({"type": "lookup", "ngram_min": 4, "ngram_max": 2}, "ngram"),
    ({"type": "draft"}, "draft model"),
])
def test_bad_speculative_values_are_400(gw, spec, needle):
    r = chat(gw, "smollm2", "Hi", speculative=spec)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and needle in err["message"], err


def test_an_incompatible_draft_stops_startup_with_the_reason(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(f"""
[server]
listen = "127.0.0.1:0"
{smol()}
[models.gemma]
type = "local"
path = "{GEMMA}"
threads = 2
context = 512
parallel = 1
draft = "smollm2"
""")
    r = subprocess.run([str(BIN), "serve", "--config", str(cfg)], capture_output=True, text=True, timeout=120,
                       env={"PATH": "/usr/bin:/bin", "SLMGATE_DATA_DIR": str(tmp_path / "d")})
    assert r.returncode != 0
    assert "cannot draft for this model" in r.stderr and "gemma" in r.stderr, r.stderr[-2000:]


@pytest.mark.parametrize("extra,needle", [
    ('draft = "gemma-nope"', "names no configured model"),
    ('draft = "m"', "cannot draft for itself"),
    ('draft = "smollm2"\ndraft_max = 0', "draft_max"),
    ('lookup = { n_draft = 100 }', "n_draft"),
])
def test_speculation_config_errors(tmp_path, extra, needle):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'{smol()}\n[models.m]\ntype = "local"\npath = "{SMOL}"\n{extra}\n')
    r = subprocess.run([str(BIN), "check", "--config", str(cfg)], capture_output=True, text=True)
    assert r.returncode != 0 and needle in r.stdout + r.stderr, r.stdout + r.stderr
