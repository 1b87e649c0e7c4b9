"""A throwaway PostgreSQL cluster on 127.0.0.1, from Debian's ``postgresql``.

``initdb`` a temporary directory, start ``postgres`` on a free high port with
trust authentication on loopback only, hand out its address, then stop it and
delete the directory. PostgreSQL refuses to run as root, so under root the
cluster runs as the ``postgres`` system user (or ``nobody``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Cluster:
    host: str
    port: int
    user: str

    def env(self) -> dict[str, str]:
        """What ``tests/settings_postgres.py`` reads."""
        return {
            "HYPERMAIL_TEST_PG_HOST": self.host,
            "HYPERMAIL_TEST_PG_PORT": str(self.port),
            "HYPERMAIL_TEST_PG_USER": self.user,
        }


def binaries() -> str | None:
    """The directory of the newest installed PostgreSQL's programs."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]),
    )
    return os.path.dirname(found[-1]) if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("PostgreSQL cannot run as root and no other user exists")


@contextlib.contextmanager
def cluster(bin_dir: str) -> Iterator[Cluster]:
    account = _run_as()
    home = tempfile.mkdtemp(prefix="hypermail-pg-")
    data = os.path.join(home, "data")
    if account is not None:
        os.chown(home, account.pw_uid, account.pw_gid)

    def run(*args: str) -> None:
        command = list(args)
        if account is not None:
            command = ["runuser", "-u", account.pw_name, "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=home)

    port = _free_port()
    user = "hypermail"
    run(
        f"{bin_dir}/initdb", "-D", data, "-U", user, "--auth=trust",
        "--no-sync", "-E", "UTF8", "--locale=C",
    )  # fmt: skip
    options = (
        f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off"
    )
    run(f"{bin_dir}/pg_ctl", "-D", data, "-o", options, "-w", "-l",
        os.path.join(home, "log"), "start")  # fmt: skip
    try:
        yield Cluster("127.0.0.1", port, user)
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            run(f"{bin_dir}/pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        shutil.rmtree(home, ignore_errors=True)
