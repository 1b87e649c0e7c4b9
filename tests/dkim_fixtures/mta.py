"""A self-contained Postfix with an OpenDKIM milter verifying, on loopback.

Debian's ``postfix`` and ``opendkim`` run from a temporary directory of their
own (``postfix -c DIR``): an smtpd on a free port of 127.0.0.1 hands every
message to OpenDKIM in verify mode (public keys from a ``TestPublicKeys``
file, as a DNS zone would publish them), then relays it to the test's
SMTP server, which receives it with OpenDKIM's ``Authentication-Results``.
Nothing of the system's own Postfix configuration is read or changed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

POSTFIX = "/usr/sbin/postfix"
OPENDKIM = "/usr/sbin/opendkim"

#: master.cf: only the services an smtpd-to-relay path needs, none chrooted.
MASTER_CF = """\
{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
meta_directory = {root}/etc
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
myhostname = mta.hypermail.test
mydomain = hypermail.test
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [127.0.0.1]:{relay_port}
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtputf8_enable = yes
smtpd_milters = inet:127.0.0.1:{milter_port}
non_smtpd_milters =
milter_default_action = tempfail
milter_protocol = 6
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
biff = no
alias_maps =
alias_database =
local_recipient_maps =
"""

OPENDKIM_CONF = """\
Mode v
Socket inet:{milter_port}@127.0.0.1
TestPublicKeys {root}/keys.txt
AuthservID mta.hypermail.test
AlwaysAddARHeader yes
Background no
Syslog no
LogResults no
PidFile {root}/opendkim.pid
UserID opendkim
MinimumKeyBits 1024
"""


def available() -> str | None:
    """Why the MTA cannot run here, or None when it can."""
    for program in (POSTFIX, OPENDKIM):
        if not os.access(program, os.X_OK):
            return f"{program} is not installed (apt-get install postfix opendkim)"
    if os.geteuid() != 0:
        return "Postfix's master daemon must be started as root"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, alive: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"{what} exited before listening on port {port}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=1),
        ):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within 30 s")


def _master_alive(root: Path) -> bool:
    """Postfix's master runs detached: is the pid in its pid file alive?"""
    pid_file = root / "queue" / "pid" / "master.pid"
    if not pid_file.exists():
        return True  # still starting: the port's deadline decides
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


@dataclass
class MTA:
    """The running pair: where to submit, and the log for failure messages."""

    host: str
    port: int
    root: Path

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""


@contextlib.contextmanager
def running_mta(relay_port: int, public_keys: dict[str, bytes]) -> Iterator[MTA]:
    """Start OpenDKIM and Postfix relaying to ``relay_port``; stop them after."""
    root = Path(tempfile.mkdtemp(prefix="hypermail-mta-"))
    os.chmod(root, 0o755)
    smtpd_port, milter_port = _free_port(), _free_port()
    values = {
        "root": root,
        "port": smtpd_port,
        "relay_port": relay_port,
        "milter_port": milter_port,
    }
    (root / "etc").mkdir()
    (root / "queue").mkdir()  # root's; Postfix makes its subdirectories
    (root / "data").mkdir()
    shutil.chown(root / "data", "postfix", "postfix")
    (root / "etc" / "main.cf").write_text(MAIN_CF.format(**values))
    (root / "etc" / "master.cf").write_text(MASTER_CF.format(**values))
    shutil.copy("/etc/postfix/postfix-files", root / "etc" / "postfix-files")
    shutil.copytree("/etc/postfix/postfix-files.d", root / "etc" / "postfix-files.d")
    (root / "keys.txt").write_bytes(
        b"".join(
            f"{name} ".encode() + record + b"\n" for name, record in public_keys.items()
        )
    )
    (root / "opendkim.conf").write_text(OPENDKIM_CONF.format(**values))
    etc = str(root / "etc")
    milter_log = open(root / "opendkim.log", "wb")  # noqa: SIM115 - closed below
    milter = subprocess.Popen(
        [OPENDKIM, "-f", "-x", str(root / "opendkim.conf")],
        stdout=milter_log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_port(milter_port, lambda: milter.poll() is None, "opendkim")
        started = subprocess.run(
            [POSTFIX, "-c", etc, "start"],
            capture_output=True,
            text=True,
            env={**os.environ, "MAIL_CONFIG": etc},
        )
        if started.returncode:
            raise RuntimeError(f"postfix start failed: {started.stderr.strip()}")
        try:
            _wait_for_port(smtpd_port, lambda: _master_alive(root), "postfix")
            yield MTA("127.0.0.1", smtpd_port, root)
        finally:
            subprocess.run(
                [POSTFIX, "-c", etc, "stop"],
                capture_output=True,
                env={**os.environ, "MAIL_CONFIG": etc},
            )
    finally:
        milter.terminate()
        milter.wait(10)
        milter_log.close()
        shutil.rmtree(root, ignore_errors=True)
