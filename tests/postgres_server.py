"""A real PostgreSQL server on 127.0.0.1 for the tests of a study shared by several machines:
Debian's (or PATH's) `initdb` and `postgres`, a throw-away cluster in the test's folder, trust
authentication for the user `lab`. PostgreSQL refuses to run as root: as root the cluster is made
and served as the `postgres` system user that Debian's package creates."""

import glob
import os
import pwd
import shutil
import socket
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def server_programs() -> Path | None:
    """The folder holding `initdb` and `postgres`, or None where PostgreSQL's server is not installed."""
    found = shutil.which("postgres")
    if found:
        return Path(os.path.realpath(found)).parent
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return Path(debian[-1]).parent if debian else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    def __init__(self, folder: Path):
        programs = server_programs()
        if programs is None:  # .ci/run installs it, so CI always runs these tests
            pytest.skip("PostgreSQL's server is not installed (Debian: apt-get install postgresql)")
        # Not under the test's folder: pytest's are readable by their owner only.
        self.folder, self.port = Path(tempfile.mkdtemp(prefix="mnist-lab-postgres-")), _free_port()
        self.log = folder / "postgres.log"
        as_user = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            as_user = ["runuser", "-u", "postgres", "--"]
        data = self.folder / "data"
        subprocess.run([*as_user, programs / "initdb", "-D", data, "-A", "trust", "-U", "lab", "--no-sync"],
                       check=True, capture_output=True)
        self.command = [*as_user, programs / "postgres", "-D", data, "-p", str(self.port), "-k", self.folder,
                        "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
        self.url = f"postgresql://lab@127.0.0.1:{self.port}/postgres"
        self.start()

    def start(self):
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=open(self.log, "a"),
                                        start_new_session=True)
        deadline = time.monotonic() + 60
        while not self._accepts() and time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            time.sleep(0.05)

    def stop(self):
        os.killpg(self.process.pid, signal.SIGINT)  # a "fast" shutdown: it ends the clients' sessions
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def new_database(self, name: str) -> str:
        """The URL of a new, empty database ``name`` on the server."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def _accepts(self) -> bool:
        import psycopg

        try:
            psycopg.connect(self.url, connect_timeout=1).close()
            return True
        except psycopg.OperationalError:  # not listening yet, or still starting up
            return False

    def close(self):
        if self.process.poll() is None:
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
