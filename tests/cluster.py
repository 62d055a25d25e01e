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


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(d, san):
    """A test CA (`ca.pem`), a server certificate it signed for `san` (`server.pem`,
    `server.key`) and an unrelated CA (`other-ca.pem`), made with the openssl CLI."""
    d.mkdir(parents=True, exist_ok=True)
    for ca in ["ca", "other-ca"]:
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=slmgate test {ca}",
                 "-keyout", f"{ca}.key", "-out", f"{ca}.pem", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=slmgate test server",
             "-keyout", "server.key", "-out", "server.csr", cwd=d)
    (d / "ext.cnf").write_text(f"subjectAltName = {san}\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem", cwd=d)
    return d


class Postgres:
    """One PostgreSQL cluster on 127.0.0.1:port with database `slmgate`. With `tls`, a
    directory from `make_certs`: the server then speaks TLS with that certificate and
    refuses TCP connections without it."""

    def __init__(self, name="pg", tls=None):
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
        if tls is not None:
            for f in ["server.pem", "server.key"]:
                shutil.copy(tls / f, self.dir / f)
                os.chmod(self.dir / f, 0o600)
                if os.geteuid() == 0:
                    shutil.chown(self.dir / f, "postgres", "postgres")
            with open(self.dir / "postgresql.conf", "a") as conf:
                conf.write("ssl = on\nssl_cert_file = 'server.pem'\nssl_key_file = 'server.key'\n")
            hba = self.dir / "pg_hba.conf"
            hba.write_text("hostnossl all all all reject\n" + hba.read_text())
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
    """One redis-server on 127.0.0.1:port, no persistence. With `tls`, a directory from
    `make_certs`: it then speaks TLS only (`rediss://`), clients not asked for certificates."""

    def __init__(self, name="redis", tls=None):
        self.port = free_port()
        self.tls = tls
        self.url = f"{'rediss' if tls else 'redis'}://127.0.0.1:{self.port}/0"
        self.log_path = LOGS / f"{name}.log"
        LOGS.mkdir(exist_ok=True)
        self.proc = None
        self.start()

    def start(self):
        ports = ["--port", str(self.port)]
        if self.tls:
            ports = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.tls / "server.pem"),
                     "--tls-key-file", str(self.tls / "server.key"), "--tls-auth-clients", "no"]
        self.proc = subprocess.Popen(
            ["redis-server", *ports, "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--protected-mode", "no"],
            stdout=open(self.log_path, "a"), stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.cli("PING") == "PONG":
                return
            time.sleep(0.1)
        raise RuntimeError("redis did not start")

    def cli(self, *args):
        tls = ["--tls", "--cacert", str(self.tls / "ca.pem")] if self.tls else []
        out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *tls, *args],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
