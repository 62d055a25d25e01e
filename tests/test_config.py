"""Bad config stops the process with a message that names the field and the fix."""

import subprocess

import pytest

from conftest import BIN, SMOL


def check(tmp_path, text, env=None):
    p = tmp_path / "c.toml"
    p.write_text(text)
    import os
    r = subprocess.run([str(BIN), "check", "--config", str(p)], capture_output=True, text=True,
                       env={**os.environ, **(env or {})})
    return r.returncode, r.stdout + r.stderr


LOCAL = f'[models.m]\ntype = "local"\npath = "{SMOL}"\n'


def test_valid_config(tmp_path):
    code, out = check(tmp_path, LOCAL + '[aliases]\nauto = ["m"]\n')
    assert code == 0, out
    assert "alias auto: m" in out


@pytest.mark.parametrize("text,needles", [
    (LOCAL + "thredas = 2\n", ["thredas", "unknown field"]),
    (LOCAL + "context = \"big\"\n", ["context", "invalid type"]),
    (LOCAL + "parallel = 0\n", ["models.m.parallel", "between 1 and 256"]),
    ('[models.m]\ntype = "local"\npath = "/nope.gguf"\n', ["models.m.path", "make models"]),
    (LOCAL + '[aliases]\nauto = ["x"]\n', ["aliases.auto", "unknown model"]),
    (LOCAL + '[models.r]\ntype = "remote"\nwire = "openai"\nbase_url = "ftp://x"\nmodel = "g"\n', ["models.r.base_url"]),
    (LOCAL + '[models.r]\ntype = "remote"\nwire = "grpc"\nbase_url = "http://x"\nmodel = "g"\n', ["grpc", "openai"]),
    (LOCAL + '[models.r]\ntype = "remote"\nwire = "openai"\nbase_url = "http://x"\nmodel = "g"\napi_key = "${NO_SUCH_KEY_VAR}"\n', ["models.r.api_key", "NO_SUCH_KEY_VAR"]),
    (LOCAL + '[server]\nlisten = "localhost"\n', ["server.listen"]),
    ("[models]\n", ["no models"]),
    (LOCAL + "[auth]\nenabled = true\n", ["auth.admin_key", "SLMGATE_ADMIN_KEY"]),
    (LOCAL + '[auth]\nadmin_key = "short"\n', ["auth.admin_key", "16 characters"]),
    (LOCAL + "[review]\nsample = 5\n", ["review.sample", "between 0 and 1"]),
    (LOCAL + '[pii]\ntypes = ["email", "dna"]\n', ["pii.types", "dna", "known: email"]),
    (LOCAL + '[pii]\npolicy = "hide"\n', ["hide", "redact"]),
    (LOCAL + "[guard]\nthreshold = 1.5\n", ["guard.threshold"]),
    (LOCAL + '[audit]\ncontent = "some"\n', ["some", "redacted"]),
])
def test_invalid_config_names_the_field(tmp_path, text, needles):
    code, out = check(tmp_path, text)
    assert code != 0
    for n in needles:
        assert n in out, out


def test_missing_file(tmp_path):
    r = subprocess.run([str(BIN), "check", "--config", str(tmp_path / "none.toml")], capture_output=True, text=True)
    assert r.returncode != 0 and "cannot read config file" in r.stderr


def test_env_default_is_used(tmp_path):
    code, out = check(tmp_path, LOCAL + '[models.r]\ntype = "remote"\nwire = "openai"\nbase_url = "${R_URL:-http://127.0.0.1:1/v1}"\nmodel = "g"\n')
    assert code == 0 and "http://127.0.0.1:1/v1" in out


def test_embedded_default_config_is_valid():
    r = subprocess.run([str(BIN), "default-config"], capture_output=True, text=True)
    assert r.returncode == 0 and "[models.smollm2]" in r.stdout
