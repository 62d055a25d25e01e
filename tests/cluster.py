"""Real Postgres and Redis servers for the scale-out tests: Debian's packages (installed by
scripts/install-test-deps.sh), each started here on loopback on a free port, in a fresh data
directory, and stopped after. Postgres refuses to run as root: as root, its commands run as
the `postgres` user.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

LOGS = Path(__file__).resolve().parent / ".logs"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin():
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise RuntimeError("no PostgreSQL server (run scripts/install-test-deps.sh)")
    return found[-1].parent


def _as_postgres(cmd):
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class Postgres:
    """One PostgreSQL cluster on 127.0.0.1:port with database `slmgate`."""

    def __init__(self, name="pg"):
        self.bin = _pg_bin()
        # Not under pytest's private (0700) temp folder: the postgres user must reach it.
        self.root = Path(tempfile.mkdtemp(prefix=f"slmgate-{name}-"))
        os.chmod(self.root, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.dir = self.root / "data"
        self.dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.port = free_port()
        # Written by the postgres user: beside its data (copied to tests/.logs at stop).
        self.log = self.root / "server.log"
        self.name = name
        subprocess.run(_as_postgres([str(self.bin / "initdb"), "-D", str(self.dir), "-U", "slmgate",
                                     "--auth=trust", "-E", "UTF8", "--no-sync"]),
                       check=True, capture_output=True, timeout=120)
        self.start()
        subprocess.run(_as_postgres([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                                     "-U", "slmgate", "slmgate"]), check=True, capture_output=True, timeout=60)
        self.url = f"postgres://slmgate@127.0.0.1:{self.port}/slmgate"

    def start(self):
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir} -c max_connections=200"
        out = subprocess.run(_as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.dir), "-l", str(self.log),
                                           "-o", opts, "-w", "-t", "60", "start"]), capture_output=True,
                             text=True, timeout=90)
        if out.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"postgres did not start: {out.stdout}{out.stderr}\n{log}")

    def sql(self, query):
        out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "slmgate", "-d", "slmgate",
                              "-At", "-c", query], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def stop(self, remove=True):
        subprocess.run(_as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.dir), "-m", "fast", "-w", "stop"]),
                       capture_output=True, timeout=60)
        if remove:
            LOGS.mkdir(exist_ok=True)
            if self.log.exists():
                shutil.copy(self.log, LOGS / f"{self.name}.log")
            shutil.rmtree(self.root, ignore_errors=True)


class Redis:
    """One redis-server on 127.0.0.1:port, no persistence."""

    def __init__(self, name="redis"):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = LOGS / f"{name}.log"
        LOGS.mkdir(exist_ok=True)
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--protected-mode", "no"],
            stdout=open(self.log_path, "a"), stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.cli("PING") == "PONG":
                return
            time.sleep(0.1)
        raise RuntimeError("redis did not start")

    def cli(self, *args):
        out = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
