"""Helpers the bench scripts share: a free loopback port, and waiting for a server's
readiness endpoint (stdlib only, so any script runs with the system python3)."""

import socket
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, path="/ready", proc=None, timeout=300):
    """Polls url+path until it answers 200; exits if `proc` dies or `timeout` passes."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}")
        try:
            if urllib.request.urlopen(url + path, timeout=1).status == 200:
                return
        except Exception:
            pass
        time.sleep(0.2)
    sys.exit(f"{url} not ready")
