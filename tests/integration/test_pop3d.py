"""Integration tests for zolderd's POP3 service: a real zolderd on its own loopback address,
mail delivered over SMTP into the mbox spool, read and deleted with Python's poplib and curl."""

import base64
import os
import poplib
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "helper"))
from zolderd_instance import Zolderd, crypt_hash  # noqa: E402

ADDRESS = "127.0.1.40"
SMTP_PORT = 2525
POP3_PORT = 2110
POP3S_PORT = 2995
LAN_HOST = "127.0.1.5"
PASSWORD = "geheim wachtwoord"


def message(n, extra=""):
    return (f"From: sjoerd@zolder.thuis\r\nTo: bouke@zolder.thuis\r\nSubject: bericht {n}\r\n\r\n"
            f"Regel een van {n}\r\nFrom the attic {n}\r\n.punt {n}\r\n{extra}")


class SourcePOP3(poplib.POP3):
    """poplib.POP3 from a chosen source address (a LAN host, or 127.0.0.1)."""

    def __init__(self, host, port, source):
        self.source = source
        super().__init__(host, port, timeout=10)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self.source, 0))


class Pop3Case(unittest.TestCase):
    tls = False
    extra_conf = {}

    def setUp(self):
        conf = {"pop3": f"{ADDRESS}:{POP3_PORT}", "pop3_timeout": "30", **self.extra_conf}
        if self.tls:
            conf["pop3s"] = f"{ADDRESS}:{POP3S_PORT}"
        self.z = Zolderd(address=ADDRESS, port=SMTP_PORT, conf=conf, tls=self.tls,
                         users={"bouke": crypt_hash(PASSWORD), "sjoerd": crypt_hash("ander"), "admin": "*"})
        self.addCleanup(lambda: self.z.cleanup())
        self.z.start()

    def deliver(self, *numbers):
        with smtplib.SMTP(ADDRESS, SMTP_PORT, source_address=(LAN_HOST, 0), timeout=10) as s:
            for n in numbers:
                s.sendmail("sjoerd@zolder.thuis", ["bouke@zolder.thuis"], message(n))
        last = f"Subject: bericht {numbers[-1]}"
        self.z.wait_for(lambda: last in self.z.mbox("bouke"), what="delivery")

    def pop(self, source="127.0.0.1", login=True):
        p = SourcePOP3(ADDRESS, POP3_PORT, source)
        self.addCleanup(p.close)
        if login:
            p.user("bouke")
            p.pass_(PASSWORD)
        return p

    def uidls(self, p):
        return {int(n): u for n, u in (line.decode().split() for line in p.uidl()[1])}


class Pop3Test(Pop3Case):
    def test_login_stat_list_uidl_retr_top(self):
        self.deliver(1, 2, 3)
        p = self.pop()
        count, size = p.stat()
        self.assertEqual(count, 3)
        listing = p.list()[1]
        self.assertEqual(len(listing), 3)
        sizes = [int(line.split()[1]) for line in listing]
        self.assertEqual(sum(sizes), size)
        uids = self.uidls(p)
        self.assertEqual(len(set(uids.values())), 3)
        resp, lines, octets = p.retr(2)
        self.assertTrue(resp.startswith(b"+OK"))
        text = b"\r\n".join(lines) + b"\r\n"
        self.assertEqual(len(text), sizes[1])  # LIST size = the bytes RETR sends (unstuffed)
        self.assertIn(b"Subject: bericht 2", lines)
        self.assertIn(b"From the attic 2", lines)     # mboxrd quoting undone
        self.assertIn(b".punt 2", lines)              # dot-stuffing undone by poplib
        self.assertIn(b"Delivered-To: bouke@zolder.thuis", lines)
        top = p.top(3, 1)[1]
        self.assertIn(b"Subject: bericht 3", top)
        self.assertEqual(top[-1], b"Regel een van 3")
        self.assertEqual(p.uidl(1).split()[2].decode(), uids[1])
        with self.assertRaises(poplib.error_proto):
            p.retr(4)
        p.quit()
        self.assertIn("pop3d", self.z.log())
        self.assertIn("login user=bouke", self.z.log())

    def test_dele_quit_removes_exactly_those_and_keeps_a_message_delivered_meanwhile(self):
        self.deliver(1, 2, 3, 4)
        p = self.pop()
        before = self.uidls(p)
        p.dele(1)
        p.dele(3)
        with self.assertRaises(poplib.error_proto):
            p.retr(1)
        self.assertEqual(p.stat()[0], 2)
        # Delivery is not blocked by the session, and the new message is not in its view.
        self.deliver(5)
        self.assertEqual(p.stat()[0], 2)
        self.assertIn(b"+OK", p.quit())
        box = self.z.mbox("bouke")
        for n, kept in ((1, False), (2, True), (3, False), (4, True), (5, True)):
            self.assertEqual(f"Subject: bericht {n}\n" in box, kept, n)
        self.assertIn("deleted=2 removed=2", self.z.log())
        p = self.pop()
        after = self.uidls(p)
        self.assertEqual(len(after), 3)
        self.assertEqual(after[1], before[2])  # UIDL stable across sessions and the rewrite
        self.assertEqual(after[2], before[4])
        self.assertNotIn(after[3], before.values())
        p.quit()

    def test_rset_and_disconnect_without_quit_delete_nothing(self):
        self.deliver(1, 2)
        p = self.pop()
        p.dele(1)
        p.rset()
        p.dele(2)
        p.quit()
        self.assertIn("Subject: bericht 1\n", self.z.mbox("bouke"))
        self.assertNotIn("Subject: bericht 2\n", self.z.mbox("bouke"))
        p = self.pop()
        p.dele(1)
        p.sock.shutdown(socket.SHUT_RDWR)
        self.z.wait_log("disconnect from [127.0.0.1] user=bouke")
        self.assertIn("Subject: bericht 1\n", self.z.mbox("bouke"))

    def test_second_session_refused_while_one_is_open(self):
        self.deliver(1)
        first = self.pop()
        second = self.pop(login=False)
        second.user("bouke")
        with self.assertRaises(poplib.error_proto) as ctx:
            second.pass_(PASSWORD)
        self.assertIn(b"[IN-USE]", ctx.exception.args[0])
        first.quit()
        third = self.pop()
        self.assertEqual(third.stat()[0], 1)
        third.quit()

    def test_bad_password_and_auth_plain(self):
        p = self.pop(login=False)
        p.user("bouke")
        with self.assertRaises(poplib.error_proto) as ctx:
            p.pass_("wrong")
        self.assertIn(b"[AUTH]", ctx.exception.args[0])
        self.assertIn("login failed from [127.0.0.1] user=bouke", self.z.log())
        self.assertNotIn("wrong", self.z.log())
        token = base64.b64encode(b"\0bouke\0" + PASSWORD.encode()).decode()
        self.assertTrue(p._shortcmd(f"AUTH PLAIN {token}").startswith(b"+OK"))
        self.assertEqual(p.stat()[0], 0)
        p.quit()
        # Without an initial response: a "+ " continuation.
        p = self.pop(login=False)
        p._putcmd("AUTH PLAIN")
        self.assertEqual(p._getline()[0], b"+ ")
        self.assertTrue(p._shortcmd(token).startswith(b"+OK"))
        p.quit()

    def test_plaintext_refused_from_the_lan_without_tls(self):
        p = self.pop(source=LAN_HOST, login=False)
        caps = p.capa()
        self.assertNotIn("USER", caps)
        self.assertNotIn("SASL", caps)
        self.assertIn("UIDL", caps)
        with self.assertRaises(poplib.error_proto) as ctx:
            p.user("bouke")
        self.assertIn(b"[AUTH]", ctx.exception.args[0])
        with self.assertRaises(poplib.error_proto):
            p._shortcmd("AUTH PLAIN " + base64.b64encode(b"\0bouke\0" + PASSWORD.encode()).decode())
        p.quit()

    def test_commands_in_the_wrong_state_and_junk(self):
        p = self.pop(login=False)
        for cmd in ("STAT", "RETR 1", "LIST", "FOO", "RETR x", "TOP 1", "USER"):
            with self.assertRaises(poplib.error_proto, msg=cmd):
                p._shortcmd(cmd)
        p.quit()
        p = self.pop()
        for cmd in ("USER bouke", "RETR 0", "DELE 99999999999", "TOP 1 -1", "STLS"):
            with self.assertRaises(poplib.error_proto, msg=cmd):
                p._shortcmd(cmd)
        p.quit()

    @unittest.skipUnless(shutil.which("curl"), "curl not installed")
    def test_curl_pop3(self):
        self.deliver(1, 2)
        url = f"pop3://{ADDRESS}:{POP3_PORT}/"
        out = subprocess.run(["curl", "-s", "--user", f"bouke:{PASSWORD}", "--interface", "127.0.0.1",
                              url], capture_output=True, timeout=20)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(len(out.stdout.decode().split("\r\n")[:-1]), 2)
        out = subprocess.run(["curl", "-s", "--user", f"bouke:{PASSWORD}", "--interface", "127.0.0.1",
                              url + "2"], capture_output=True, timeout=20)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(b"Subject: bericht 2", out.stdout)


class Pop3TlsTest(Pop3Case):
    tls = True

    def context(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def test_stls_then_login_from_the_lan(self):
        self.deliver(1)
        p = self.pop(source=LAN_HOST, login=False)
        self.assertIn("STLS", p.capa())
        p.stls(context=self.context())
        caps = p.capa()
        self.assertIn("USER", caps)
        self.assertNotIn("STLS", caps)
        p.user("bouke")
        p.pass_(PASSWORD)
        self.assertEqual(p.stat()[0], 1)
        p.quit()
        self.assertIn("TLS established", self.z.log())

    def test_bytes_pipelined_after_stls_are_discarded(self):
        s = socket.create_connection((ADDRESS, POP3_PORT), 10, source_address=(LAN_HOST, 0))
        self.addCleanup(s.close)
        f = s.makefile("rb")
        self.assertTrue(f.readline().startswith(b"+OK"))
        s.sendall(b"STLS\r\nUSER bouke\r\n")
        self.assertTrue(f.readline().startswith(b"+OK"))
        self.z.wait_log("discarded 12 bytes pipelined after STLS")
        tls = self.context().wrap_socket(s)
        tf = tls.makefile("rb")
        tls.sendall(b"NOOP\r\n")
        self.assertTrue(tf.readline().startswith(b"-ERR"))  # NOOP before login
        tls.sendall(b"PASS x\r\n")
        self.assertIn(b"No username", tf.readline())  # the pipelined USER was not seen

    def test_pop3s_implicit_tls(self):
        self.deliver(1, 2)
        p = poplib.POP3_SSL(ADDRESS, POP3S_PORT, timeout=10, context=self.context())
        self.addCleanup(p.close)
        p.user("bouke")
        p.pass_(PASSWORD)
        self.assertEqual(p.stat()[0], 2)
        self.assertIn(b"Subject: bericht 1", p.retr(1)[1])
        p.quit()



class PlaintextFromTheLanTest(Pop3Case):
    """The seed's Windows clients read POP3 on the LAN without TLS: allowed only for the networks
    in plaintext_auth_from (Dovecot's disable_plaintext_auth = no, narrowed to the LAN)."""

    extra_conf = {"plaintext_auth_from": "127.0.1.0/24"}

    def test_lan_host_may_log_in_outsider_may_not(self):
        self.deliver(1)
        p = self.pop(source=LAN_HOST)
        self.assertEqual(p.stat()[0], 1)
        p.quit()
        outsider = self.pop(source="127.0.9.9", login=False)
        self.assertNotIn("USER", outsider.capa())
        with self.assertRaises(poplib.error_proto):
            outsider.user("bouke")
        outsider.quit()


class FailureDelayTest(Pop3Case):
    """A failed login is answered after auth_failure_delay, and meanwhile the server goes on
    serving everybody else: hashing and waiting happen off the event loop."""

    extra_conf = {"auth_failure_delay": "1"}

    def test_wrong_password_waits_others_do_not(self):
        self.deliver(1)
        guesser = socket.create_connection((ADDRESS, POP3_PORT), 10, source_address=("127.0.0.1", 0))
        self.addCleanup(guesser.close)
        reader = guesser.makefile("rb")
        self.assertTrue(reader.readline().startswith(b"+OK"))
        guesser.sendall(b"USER bouke\r\n")
        self.assertTrue(reader.readline().startswith(b"+OK"))
        t0 = time.monotonic()
        guesser.sendall(b"PASS fout\r\n")
        # another user logs in and reads while the guess is being held
        p = self.pop()
        self.assertEqual(p.stat()[0], 1)
        p.quit()
        served = time.monotonic()
        answer = reader.readline()
        answered = time.monotonic()
        self.assertTrue(answer.startswith(b"-ERR [AUTH]"), answer)
        self.assertGreaterEqual(answered - t0, 0.9)
        self.assertLess(served, answered)
        # the real password still works on the same connection after the failure
        guesser.sendall(b"USER bouke\r\nPASS " + PASSWORD.encode() + b"\r\n")
        self.assertTrue(reader.readline().startswith(b"+OK"))
        self.assertTrue(reader.readline().startswith(b"+OK Logged in"))

if __name__ == "__main__":
    unittest.main()
