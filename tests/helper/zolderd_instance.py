"""A zolderd test instance: config, users, aliases and maps in a temp folder, started through
zolder_test.Instance and stopped by PID. Used by the integration tests and tools/demo."""

import imaplib
import os
import shutil
import pwd
import socket
import subprocess
import time

import zolder_test

CERTS = os.path.join(zolder_test.ROOT, "fixtures", "certs")

# Moves every test port (ZOLDER_TEST_PORT_OFFSET=1000: 2525 -> 3525), so two checkouts can
# run their suites side by side on one machine without meeting on an address.
PORT_OFFSET = int(os.environ.get("ZOLDER_TEST_PORT_OFFSET", "0"))


def test_port(port):
    return port + PORT_OFFSET


def crypt_hash(password):
    """A SHA-512 crypt hash, as in /etc/shadow, made by openssl (no Python crypt needed)."""
    out = subprocess.run(["openssl", "passwd", "-6", "-salt", "zoldertestsalt", password],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def ensure_certs():
    if not os.path.exists(os.path.join(CERTS, "zolder.thuis.pem")):
        subprocess.run([os.path.join(zolder_test.ROOT, "tools", "gen-certs"), CERTS], check=True)


def current_user():
    return pwd.getpwuid(os.geteuid()).pw_name


class Zolderd:
    """One zolderd in its own folder. `conf` holds extra config lines (key -> value)."""

    def __init__(self, address="127.0.1.20", port=2525, conf=None, users=None, aliases=None,
                 files=None, tls=False, keep=False, name="zolderd"):
        self.address = address
        self.port = test_port(port)
        self.inst = zolder_test.Instance(name=name, keep=keep)
        self.users = users if users is not None else {"sjoerd": "*", "bouke": "*", "admin": "*"}
        lines = {
            "hostname": "zolder.thuis",
            "listen": f"{address}:{self.port}",
            "local_domains": "zolder.thuis, localhost",
            "relay_from": "127.0.1.0/24",
            "state_dir": "var",
            "users": "users",
            "aliases": "aliases",
            "run_as": "zolder" if os.geteuid() == 0 else current_user(),
            "smtpd_timeout": "30",
            "queue_run_interval": "3600",
            # Never the host's resolver in tests: remote mail stays deferred unless a test
            # points zolderd at ispsim's nameserver (or a smarthost).
            "dns": "nodns",
        }
        if tls:
            ensure_certs()
            lines["tls_cert"] = os.path.join(CERTS, "zolder.thuis.pem")
            lines["tls_key"] = os.path.join(CERTS, "zolder.thuis.key")
        if files and "hosts" in files:
            lines["hosts_file"] = "hosts"
        lines.update(conf or {})
        self.conf_lines = lines
        self.inst.write("zolder.conf", "".join(f"{k} = {v}\n" for k, v in lines.items() if v is not None))
        self.inst.write("users", "".join(f"{u}:{h}\n" for u, h in self.users.items()))
        self.inst.write("aliases", aliases if aliases is not None else "root: admin\npostmaster: admin\n")
        for rel, text in (files or {}).items():
            # fetchmail's rule, which zolder keeps: an rc file others may read is refused
            private = os.path.basename(rel) == "fetchmailrc"
            self.inst.write(rel, text, mode=0o600 if private else None)
        self.config = self.inst.path("zolder.conf")
        self.valgrind_log = None

    def give_to_daemon(self, relpath):
        """As root, hands relpath (a folder, recursively) to run_as, as an admin would hand a
        user's mail folder to zolderd; otherwise the daemon runs as us and owns it already."""
        if os.geteuid() != 0:
            return
        user = self.conf_lines["run_as"]
        top = self.inst.path(relpath)
        shutil.chown(top, user, user)
        for root, dirs, files in os.walk(top):
            for name in dirs + files:
                shutil.chown(os.path.join(root, name), user, user)

    def start(self, wrapper=None, timeout=15.0, env=None):
        """Starts zolderd. ZOLDERD_VALGRIND=1 runs it under memcheck (unless a wrapper is
        given); stop() then fails the test on any error or definite leak."""
        self.valgrind_log = None
        if wrapper is None and os.environ.get("ZOLDERD_VALGRIND") == "1":
            self.valgrind_log = self.inst.path("valgrind.%p.log")
            wrapper = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
                       "--errors-for-leak-kinds=definite", f"--log-file={self.valgrind_log}"]
            timeout = max(timeout, 60.0)
        if not zolder_test.address_free(self.address, self.port):
            raise RuntimeError(f"{self.address}:{self.port} is in use by something we did not start")
        if os.geteuid() == 0:
            # The daemon drops to `zolder`; it must be able to reach its folder.
            os.chmod(self.inst.dir, 0o755)
            if self.valgrind_log:
                # The content filter's scanner process is forked after the drop: its own
                # valgrind.PID.log is created as `zolder`.
                os.chmod(self.inst.dir, 0o1777)
        return self.inst.start([zolder_test.binary("zolderd"), "-c", self.config],
                               ready="ready:", timeout=timeout, wrapper=wrapper, env=env)

    def stop(self):
        """Stops zolderd; a clean stop must exit 0 (ASan/LSan and Valgrind findings do not)."""
        was_running = self.inst.proc is not None and self.inst.proc.poll() is None
        rc = self.inst.stop()
        if was_running and rc not in (0, None):
            report = ""
            for name in os.listdir(self.inst.dir):
                if name.startswith("valgrind."):
                    with open(self.inst.path(name)) as f:
                        report += f.read()
            raise AssertionError(f"zolderd exited with {rc} on SIGTERM\n{report}\n--- log ---\n{self.log()[-4000:]}")
        return rc

    def kill9(self):
        self.inst.kill9()

    def cleanup(self):
        try:
            self.stop()
        finally:
            self.inst.cleanup()

    def log(self):
        return self.inst.log()

    def mbox_path(self, user):
        return self.inst.path("var", "spool", "mail", user)

    def mbox(self, user):
        try:
            with open(self.mbox_path(user), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def queue_ids(self):
        d = self.inst.path("var", "queue", "msg")
        try:
            return sorted(os.listdir(d))
        except FileNotFoundError:
            return []

    def wait_for(self, predicate, timeout=10.0, what="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}\n--- log ---\n{self.log()}")

    def wait_log(self, text, timeout=10.0):
        return self.wait_for(lambda: text in self.log(), timeout, f"log line {text!r}")

    def connect(self, source="127.0.1.5", timeout=10.0):
        """A raw socket to the server from a given source address (a LAN host by default)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.bind((source, 0))
        s.connect((self.address, self.port))
        return s

    def run_tool(self, name, *args, input=None, timeout=30):
        return subprocess.run([zolder_test.binary(name), *args], input=input, capture_output=True,
                              timeout=timeout)


class SMTPTalk:
    """A minimal line-level SMTP client for tests that need exact bytes (smuggling, pipelining)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def reply(self):
        """Reads one whole (possibly multi-line) reply; returns (code, text lines)."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError("connection closed; got " + repr(self.buf))
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            text = line.decode("utf-8", "replace")
            lines.append(text)
            if len(text) < 4 or text[3] != "-":
                return int(text[:3]), lines

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def closed(self, timeout=5.0):
        """True when the server closed the connection (after any pending bytes)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


# mbsync's channel for INBOX alone, both ways, deletions too
MBSYNC_INBOX_CHANNEL = ("Channel inbox\nFar :far:INBOX\nNear :near:INBOX\nSync All\nCreate Near\n"
                        "Expunge Both\nSyncState *\n")


def write_mbsyncrc(home, address, port, user, password, near, channel, near_extra=""):
    """An mbsyncrc in home: the IMAP server at address:port as "far", the Maildir tree near
    as "near", and the channel text given. Returns its path."""
    rc = os.path.join(home, "mbsyncrc")
    with open(rc, "w") as f:
        f.write(f"IMAPAccount zolder\nHost {address}\nPort {port}\nUser {user}\nPass \"{password}\"\n"
                "SSLType None\nAuthMechs LOGIN PLAIN\n\n"
                "IMAPStore far\nAccount zolder\n\n"
                f"MaildirStore near\nPath {near}/\nInbox {near}/INBOX\n{near_extra}\n"
                + channel)
    return rc


class SourceIMAP(imaplib.IMAP4):
    """imaplib's client from a chosen source address (a LAN host, or 127.0.0.1 for plain-text
    logins), as the tests of zolder's IMAP service need."""

    def __init__(self, host, port, source):
        self.source = source
        super().__init__(host, port, timeout=10)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self.source, 0))
