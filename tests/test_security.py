"""The edge holds with auth on: the admin API and the dashboard's data answer nobody without
the admin key, whatever the path spelling or proxy header; request-size and header limits
hold; slow clients are cut off and cannot exhaust the connection limit; the session cookie
can be marked Secure."""

import socket
import time

import httpx
import pytest

from conftest import Gateway

ADMIN = "sk-admin-security-test-key-0123"


def config(fake, extra=""):
    return f"""
[server]
listen = "127.0.0.1:@PORT@"
max_body_bytes = 65536
max_header_bytes = 16384
header_read_timeout_secs = 1
body_read_timeout_secs = 2
max_connections = 8
{extra}

[auth]
enabled = true
admin_key = "{ADMIN}"

[models.fast]
type = "remote"
wire = "openai"
base_url = "{fake}/ok/v1"
model = "fake"
max_retries = 0
"""


@pytest.fixture(scope="module")
def gw(session_tmp, fake_upstream):
    g = Gateway("security", config(fake_upstream.url), session_tmp)
    yield g
    g.stop()


def raw(gw, data, timeout=5):
    """Sends raw bytes on a fresh connection; returns everything the server sent back."""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except socket.timeout:
            pass
        return out


def status_of(response):
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else None


PATHS = [
    "/admin/keys", "/admin/keys/", "//admin/keys", "/admin//keys", "/admin/./keys", "/v1/../admin/keys",
    "/admin/%6beys", "/%61dmin/keys", "/ADMIN/keys", "/admin/keys?x=1", "/admin/keys#x", "/admin/keys%00",
    "/admin/reviews", "/dashboard/api/summary", "/dashboard/api/../api/summary", "/dashboard//api/summary",
    "/dashboard/api/summary%2f", "/admin;/keys",
]
SMUGGLED = [
    "X-Forwarded-For: 127.0.0.1", "X-Real-IP: 127.0.0.1", "X-Original-URL: /health", "X-Rewrite-URL: /health",
    "X-Forwarded-Host: localhost", "Forwarded: for=127.0.0.1", "X-Api-Key: ", "Authorization: Basic YWRtaW46YWRtaW4=",
    "Cookie: slmgate_dashboard=9999999999.0000", "X-Forwarded-Proto: https",
]


@pytest.mark.parametrize("path", PATHS)
def test_admin_and_dashboard_data_need_the_admin_key_whatever_the_path(gw, path):
    for header in [""] + [h + "\r\n" for h in SMUGGLED]:
        req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{header}Connection: close\r\n\r\n".encode()
        resp = raw(gw, req)
        status = status_of(resp)
        assert status is not None, resp[:200]
        assert status in (400, 401, 403, 404, 405), f"{path} with {header!r}: {resp[:300]!r}"
        assert b"sk-slm-" not in resp and b"spend_usd" not in resp


def test_a_smuggled_second_request_is_still_checked(gw):
    # CL.TE: a proxy honouring Content-Length would forward this as one request; the gateway
    # (chunked wins, or the conflict is refused) must not serve the hidden one unauthenticated.
    hidden = b"GET /admin/keys HTTP/1.1\r\nHost: x\r\n\r\n"
    body = b"0\r\n\r\n" + hidden
    req = (b"POST /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + str(len(body)).encode()
           + b"\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n" + body)
    resp = raw(gw, req, timeout=3)
    assert b"HTTP/1.1 200" not in resp, resp[:500]
    assert b'"object":"list"' not in resp and b"sk-slm-" not in resp


def test_the_admin_key_opens_it(gw):
    r = httpx.get(gw.url + "/admin/keys", headers={"authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 200
    r = httpx.get(gw.url + "/admin/keys", headers={"authorization": f"Bearer {ADMIN[:-1]}X"})
    assert r.status_code == 401


def test_request_size_and_header_limits_hold(gw):
    key = {"authorization": f"Bearer {ADMIN}"}
    big = {"model": "fast", "messages": [{"role": "user", "content": "x" * 70_000}]}
    r = httpx.post(gw.url + "/v1/chat/completions", json=big, headers=key)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    resp = raw(gw, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
    assert status_of(resp) == 431, resp[:200]
    resp = raw(gw, b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(2000)) + b"\r\n")
    assert status_of(resp) in (431, 400), resp[:200]
    assert httpx.get(gw.url + "/health").status_code == 200


def test_slow_clients_are_cut_off_and_cannot_exhaust_connections(gw):
    # Twice the connection limit of slow-loris clients, each sending half a request head.
    slow = []
    for _ in range(16):
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        slow.append(s)
    t0 = time.time()
    # A normal client still gets through once the server has cut the slow ones off
    # (header_read_timeout_secs = 1).
    r = httpx.get(gw.url + "/health", timeout=15)
    assert r.status_code == 200
    assert time.time() - t0 < 8
    closed = 0
    for s in slow:
        try:
            s.settimeout(5)
            data = s.recv(1024)
            closed += data == b"" or data.startswith(b"HTTP/1.1 408")
        except (ConnectionResetError, socket.timeout):
            closed += 1
        s.close()
    assert closed == len(slow), "every slow client was disconnected"


def test_a_trickled_body_times_out(gw):
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ADMIN.encode()
                  + b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"model\"")
        t0 = time.time()
        out = b""
        while chunk := s.recv(4096):
            out += chunk
            if b"\r\n\r\n" in out:
                break
        assert status_of(out) == 408, out[:300]
        assert time.time() - t0 < 6


def test_the_session_cookie_is_secure_when_configured(session_tmp, fake_upstream, gw):
    def login(g):
        return httpx.post(g.url + "/dashboard/login", data={"key": ADMIN}, follow_redirects=False).headers["set-cookie"]

    assert "Secure" not in login(gw)
    g = Gateway("security-secure", config(fake_upstream.url, "secure_cookie = true"), session_tmp)
    try:
        c = login(g)
        assert "; Secure" in c and "HttpOnly" in c and "SameSite=Strict" in c
    finally:
        g.stop()
