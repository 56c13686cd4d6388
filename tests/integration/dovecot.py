"""A real Dovecot IMAP server for the e-mail tests: Debian's dovecot-imapd (installed by
deploy/local/install-dovecot.sh), started on a free loopback port with a throwaway config,
a passwd-file user and a Maildir under a temporary folder, and stopped at the end.

Messages are delivered the way a mail server's delivery agent would leave them: IMAP APPEND.
"""

import contextlib
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "deploy" / "local" / "install-dovecot.sh"
USER = "helpdesk@example.com"
PASSWORD = "mail-secret"

CONFIG = """\
# Throwaway Dovecot for one test session; nothing here touches the system's Dovecot.
base_dir = {base}/run
state_dir = {base}/state
instance_name = helpdesk-test-{port}
log_path = {base}/dovecot.log
protocols = imap
listen = 127.0.0.1
# TLS on the imaps port and by STARTTLS; plain IMAP stays open for the test helpers.
ssl = yes
ssl_cert = <{base}/cert.pem
ssl_key = <{base}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal_user}
default_login_user = {login_user}
first_valid_uid = {uid}
last_valid_uid = 0
mail_location = maildir:{base}/mail/%n:LAYOUT=fs
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {base}/passwd
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
"""


def dovecot_binary() -> str:
    """The dovecot binary, installed first when missing (the script is idempotent and says
    clearly why when it cannot install)."""
    given = os.environ.get("HELPDESK_DOVECOT_BIN")
    if given:
        return given
    done = subprocess.run([str(INSTALL)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"Dovecot is needed for the e-mail tests and {INSTALL} could not install it:\n"
            f"{done.stdout}{done.stderr}"
        )
    return shutil.which("dovecot") or "/usr/sbin/dovecot"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stored:
    uid: int
    flags: tuple[str, ...]
    raw: bytes


class Dovecot:
    """One running Dovecot with one mailbox user."""

    def __init__(
        self, base: Path, port: int, imaps_port: int, process: subprocess.Popen[bytes]
    ) -> None:
        self.base = base
        self.port = port
        self.imaps_port = imaps_port
        # The self-signed certificate of the server, for clients to trust.
        self.ca_file = str(base / "cert.pem")
        self.process = process
        self.host = "127.0.0.1"
        self.user = USER
        self.password = PASSWORD

    def connect(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        client.login(self.user, self.password)
        return client

    @contextlib.contextmanager
    def session(self) -> Iterator[imaplib.IMAP4]:
        """A logged-in IMAP connection, logged out at the end."""
        client = self.connect()
        try:
            yield client
        finally:
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                client.logout()

    def deliver(self, raw: bytes, folder: str = "INBOX") -> None:
        """Puts a message into a folder as new mail (unseen), like a delivery agent."""
        with self.session() as client:
            status, reply = client.append(_quoted(folder), None, None, raw)
            assert status == "OK", reply

    def messages(self, folder: str = "INBOX") -> list[Stored]:
        """Every message in a folder with its flags (read-only: nothing is marked seen)."""
        found: list[Stored] = []
        with self.session() as client:
            status, _ = client.select(_quoted(folder), readonly=True)
            if status != "OK":
                return found
            _, data = client.uid("search", None, "ALL")
            for uid in data[0].split():
                _, parts = client.uid("fetch", uid, "(FLAGS BODY.PEEK[])")
                head, raw = parts[0] if isinstance(parts[0], tuple) else (parts[0], b"")
                flags = imaplib.ParseFlags(head)
                found.append(Stored(int(uid), tuple(f.decode() for f in flags), bytes(raw)))
        return found

    def folders(self) -> list[str]:
        with self.session() as client:
            _, listing = client.list()
        names = []
        for line in listing:
            if isinstance(line, bytes):
                names.append(line.decode().rsplit(' "/" ', 1)[-1].strip('"'))
        return names

    def clear(self) -> None:
        """Empties every folder, so that each test starts from an empty mailbox."""
        folders = self.folders()
        with self.session() as client:
            for folder in folders:
                status, data = client.select(_quoted(folder))
                if status == "OK" and data and data[0] not in (b"0", None):
                    client.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
                    client.expunge()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = (self.base / "dovecot.log").read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _quoted(folder: str) -> str:
    return f'"{folder}"'


def _self_signed(base: Path) -> None:
    """A key and a self-signed certificate for 127.0.0.1 (TLS tests trust it by file)."""
    made = subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(base / "key.pem"), "-out", str(base / "cert.pem"),
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    if made.returncode != 0:
        raise RuntimeError(f"openssl could not make a test certificate:\n{made.stderr}")


@contextlib.contextmanager
def running_dovecot(timeout: float = 20.0) -> Iterator[Dovecot]:
    """Starts a private Dovecot; yields it; stops it and removes its files."""
    binary = dovecot_binary()
    # Not under pytest's tmp_path: Dovecot's own users must traverse the folder, and its
    # unix sockets need a short path.
    base = Path(tempfile.mkdtemp(prefix="helpdesk-dovecot-"))
    try:
        with _started(binary, base, timeout) as server:
            yield server
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def _started(binary: str, base: Path, timeout: float) -> Iterator[Dovecot]:
    base.chmod(0o755)
    port, imaps_port = _free_port(), _free_port()
    if os.geteuid() == 0:
        # Root runs the daemon; mail is kept by Dovecot's own unprivileged user.
        owner = pwd.getpwnam("dovecot")
        internal_user, login_user = "dovecot", "dovenull"
    else:
        owner = pwd.getpwuid(os.geteuid())
        internal_user = login_user = owner.pw_name
    mail = base / "mail"
    mail.mkdir()
    os.chown(mail, owner.pw_uid, owner.pw_gid)
    (base / "passwd").write_text(
        f"{USER}:{{PLAIN}}{PASSWORD}:{owner.pw_uid}:{owner.pw_gid}::{mail}/helpdesk\n"
    )
    _self_signed(base)
    (base / "dovecot.conf").write_text(
        CONFIG.format(
            base=base,
            port=port,
            imaps_port=imaps_port,
            uid=owner.pw_uid,
            internal_user=internal_user,
            login_user=login_user,
        )
    )
    with (base / "stdout.log").open("wb") as log:
        process = subprocess.Popen(
            [binary, "-F", "-c", str(base / "dovecot.conf")], stdout=log, stderr=log
        )
    server = Dovecot(base, port, imaps_port, process)
    try:
        _wait_answering(server, timeout)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_answering(server: Dovecot, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            output = (server.base / "stdout.log").read_text(errors="replace")
            raise RuntimeError(
                f"dovecot exited with {server.process.returncode}:\n{output}\n{server.log_tail()}"
            )
        try:
            server.connect().logout()
            return
        except (OSError, imaplib.IMAP4.error):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"dovecot did not answer on port {server.port}:\n{server.log_tail()}"
                ) from None
            time.sleep(0.1)
