"""TLS to the shared backends: a managed Postgres or Redis (RDS, Cloud SQL, ElastiCache, a
company's own) usually demands it. A real PostgreSQL and redis-server with certificates from a
test CA, refusing unencrypted connections (tests/cluster.py). For Postgres the URL's
`sslmode` decides as libpq's does and `[storage] ca_file` adds the CA: verified connections
work, a wrong CA or host name is refused with a clear error. For Redis, `rediss://` with
`[cluster] redis_ca_file`. The serving gateway's own connections to both are encrypted."""

import subprocess

import httpx

import pytest

from cluster import Postgres, Redis, make_certs
from conftest import BIN, Gateway, remote

ADMIN = "adm-tls-secret-0042"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    # The certificate names 127.0.0.1 only, so `localhost` is the wrong name for it.
    return make_certs(tmp_path_factory.mktemp("tls-certs"), "IP:127.0.0.1")


@pytest.fixture(scope="module")
def tls_pg(certs):
    pg = Postgres("tls-pg", tls=certs)
    try:
        yield pg, certs
    finally:
        pg.stop()


@pytest.fixture(scope="module")
def tls_redis(certs):
    redis = Redis("tls-redis", tls=certs)
    try:
        yield redis
    finally:
        redis.stop()


def store_config(url, ca_file=None, extra=remote("paid", "http://127.0.0.1:9/v1")):
    ca = f'ca_file = "{ca_file}"\n' if ca_file else ""
    return f"""
[server]
listen = "127.0.0.1:@PORT@"

[auth]
enabled = true
admin_key = "{ADMIN}"

[storage]
backend = "postgres"
url = "{url}"
{ca}
{extra}"""


def keys_list(tmp_path, text):
    cfg = tmp_path / "store.toml"
    cfg.write_text(text.replace("@PORT@", "8080"))
    out = subprocess.run([str(BIN), "keys", "list", "--config", str(cfg)], capture_output=True, text=True,
                         timeout=60)
    return out.returncode, out.stdout + out.stderr


def test_sslmode_decides_as_libpq_does(tls_pg, tmp_path):
    pg, certs = tls_pg
    base = f"postgres://slmgate@127.0.0.1:{pg.port}/slmgate"
    # Verified against the test CA.
    rc, out = keys_list(tmp_path, store_config(base + "?sslmode=verify-full", certs / "ca.pem"))
    assert rc == 0, out
    # Encrypted without checking the certificate: libpq's `require` and `prefer`.
    for mode in ["?sslmode=require", ""]:
        rc, out = keys_list(tmp_path, store_config(base + mode))
        assert rc == 0, (mode, out)
    # No TLS: this server refuses it (pg_hba), and says so.
    rc, out = keys_list(tmp_path, store_config(base + "?sslmode=disable"))
    assert rc != 0 and "pg_hba.conf rejects connection" in out and "no encryption" in out, out
    # A CA that did not sign the server's certificate, or none: refused.
    rc, out = keys_list(tmp_path, store_config(base + "?sslmode=verify-full", certs / "other-ca.pem"))
    assert rc != 0 and "invalid peer certificate: UnknownIssuer" in out, out
    rc, out = keys_list(tmp_path, store_config(base + "?sslmode=verify-full"))
    assert rc != 0 and "invalid peer certificate: UnknownIssuer" in out, out
    # `require` with a CA file verifies too (libpq's rule).
    rc, out = keys_list(tmp_path, store_config(base + "?sslmode=require", certs / "other-ca.pem"))
    assert rc != 0 and "invalid peer certificate: UnknownIssuer" in out, out
    # The right CA, the wrong host name.
    local = f"postgres://slmgate@localhost:{pg.port}/slmgate?sslmode=verify-full"
    rc, out = keys_list(tmp_path, store_config(local, certs / "ca.pem"))
    assert rc != 0 and 'not valid for name "localhost"' in out, out
    # A CA file that cannot verify anything is a config error, before any connection.
    rc, out = keys_list(tmp_path, store_config(base, certs / "ca.pem"))
    assert rc != 0 and "storage.ca_file" in out, out


def cluster_section(redis, ca_file):
    ca = f'redis_ca_file = "{ca_file}"\n' if ca_file else ""
    return f'[cluster]\nredis_url = "{redis.url}"\n{ca}'


def test_the_gateway_talks_to_postgres_and_redis_over_verified_tls(tls_pg, tls_redis, session_tmp, fake_upstream):
    pg, certs = tls_pg
    url = f"postgres://slmgate@127.0.0.1:{pg.port}/slmgate?sslmode=verify-full&application_name=slmgate-tls-gw"
    model = remote("paid", fake_upstream.url + "/ok/v1", input_cost_per_mtok=1.0, output_cost_per_mtok=1.0)
    gw = Gateway("tls-gateway", store_config(url, certs / "ca.pem", model + cluster_section(tls_redis, certs / "ca.pem")),
                 session_tmp)
    try:
        r = httpx.post(gw.url + "/admin/keys", headers={"authorization": f"Bearer {ADMIN}"},
                       json={"models": ["paid"], "budget": "5/day", "rpm": 100}, timeout=30)
        assert r.status_code == 201, r.text
        key = r.json()["key"]
        # A budgeted key is refused while Redis cannot be reached (fail-closed): served, it
        # went through Redis over TLS.
        r = httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, timeout=30,
                       json={"model": "paid", "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200, r.text
        assert httpx.get(gw.url + "/ready").json()["redis"] == "up"
        assert int(tls_redis.cli("DBSIZE")) > 0
        # Every connection the gateway holds to Postgres is encrypted.
        row = pg.sql("SELECT bool_and(s.ssl), count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                     "WHERE a.application_name = 'slmgate-tls-gw'")
        encrypted, n = row.split("|")
        assert encrypted == "t" and int(n) >= 1, row
        # And the request is in the audit log it wrote through them.
        assert pg.sql("SELECT count(*) FROM audit WHERE key_id IS NOT NULL") != "0"
    finally:
        gw.stop()

    # Redis' certificate from a CA the gateway was not given: Redis counts as down.
    wrong = Gateway("tls-gateway-wrong-ca", store_config(url, certs / "ca.pem",
                                                         model + cluster_section(tls_redis, certs / "other-ca.pem")),
                    session_tmp)
    try:
        r = httpx.post(wrong.url + "/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, timeout=30,
                       json={"model": "paid", "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 503 and r.json()["error"]["code"] == "budget_unavailable", r.text
        assert httpx.get(wrong.url + "/ready").json()["redis"] == "down"
        assert "certificate" in wrong.logs().lower()
    finally:
        wrong.stop()
