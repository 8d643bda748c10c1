"""zolder-fetch and zolderd's fetch service against ispsim's POP3 and IMAP (issue 6): the seed's
rc lines, keep mode, link cuts, 4xx from zolder, a full ISP mailbox, Debian's fetchmail side by
side. Mail goes through the modem (127.9.x.y) and into zolderd's mboxes over SMTP."""

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ispsim_common import CA, LINK_DEMON_POP3, LINK_PROVIDER1_IMAP, IspsimCase, zolder_test  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "helper"))
from zolderd_instance import Zolderd  # noqa: E402

ZOLDER = "127.0.1.20"
PORT = 2625


def seed_pop(user="sjoerd", password="geheim", extra=""):
    # the seed's line, with the account's names and the modem address as `via`
    return (f"poll pop3.demon.nl via {LINK_DEMON_POP3} proto pop3 aka provider.nl no dns "
            f"user {user} pass {password} is sjoerd {extra}\n")


def seed_imap(user="sjoerd", password="geheim2", extra=""):
    return (f"poll imap.provider1.nl via {LINK_PROVIDER1_IMAP} proto imap aka provider.nl no dns "
            f"user {user} pass {password} is bouke {extra}\n")


def message(n, size=0):
    body = f"Message {n}.\n" + ("x" * 70 + "\n") * (size // 71)
    return f"From: jan@paprika\nTo: sjoerd@demon.nl\nSubject: test {n}\n\n{body}"


class FetchCase(IspsimCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not os.path.exists(zolder_test.binary("zolder-fetch")):
            raise unittest.SkipTest("zolder-fetch not built")

    def setUp(self):
        super().setUp()
        self.z = Zolderd(address=ZOLDER, port=PORT, name="fetch-zolderd",
                         conf={"hostname": "zolder.thuis"})
        self.z.start()
        self.addCleanup(self.z.cleanup)
        self.home = self.z.inst.path("fetchhome")
        os.makedirs(self.home, exist_ok=True)

    def rc(self, text, name="fetchmailrc"):
        path = os.path.join(self.home, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path, 0o600)
        return path

    def fetch(self, text, *args, expect=None, timeout=120):
        rc = self.rc(text)
        r = subprocess.run([zolder_test.binary("zolder-fetch"), "-v", "-f", rc, "-c",
                            self.z.config, *args], capture_output=True, text=True,
                           timeout=timeout, env={**os.environ, "HOME": self.home})
        if expect is not None:
            self.assertEqual(r.returncode, expect, r.stdout + r.stderr)
        return r

    def uid_record(self):
        """The UIDs in the poller's records (STATE_DIR/fetch/*.uids), all accounts."""
        d = self.z.inst.path("var", "fetch")
        uids = []
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if name.endswith(".uids"):
                with open(os.path.join(d, name)) as f:
                    uids += [line[2:].strip() for line in f if line.startswith("U ")]
        return uids

    def cut_violations(self):
        # a cut link leaves the server without QUIT/LOGOUT: that is the cut, not us
        return [v for v in self.isp.violations() if v not in ("no-quit", "no-logout")]

    def subjects(self, user):
        return re.findall(r"^Subject: (.*)$", self.z.mbox(user), re.M)

    def wait_subjects(self, user, n):
        self.z.wait_for(lambda: len(self.subjects(user)) >= n, 20, f"{n} messages for {user}")
        time.sleep(0.2)
        return self.subjects(user)


class PipelineSmtp:
    """An SMTP stand-in for the hand-off that watches RFC 2920 pipelining: after each final
    dot it waits `wait` s and notes whether the next MAIL FROM came before its reply. mode
    "accept": 250 for every message; "drop": a session whose next MAIL came behind a dot is
    closed without a reply to that dot, every other message gets a 451."""

    def __init__(self, addr, port, mode, wait=0.2, chunking=False):
        self.mode, self.wait, self.chunking = mode, wait, chunking
        self.open_txn_refused = 0  # CHUNKING: MAIL while a failed transaction was open
        self.bodies = []
        self.accepted, self.behind_dot, self.drops, self.sessions = 0, 0, 0, 0
        self.lock = threading.Lock()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((addr, port))
        self.listener.listen(16)
        threading.Thread(target=self.accept, daemon=True).start()

    def close(self):
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept: the port is free
        except OSError:
            pass
        self.listener.close()

    def accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        try:
            self.dialogue(conn)
        except OSError:  # the poller went away mid-reply
            conn.close()

    def dialogue(self, conn):
        buf = b""
        txn = None

        def more(timeout):
            nonlocal buf
            conn.settimeout(timeout)
            try:
                data = conn.recv(65536)
            except socket.timeout:
                return True
            except OSError:  # reset by the poller's end
                return False
            if not data:
                return False
            buf += data
            return True

        with conn:
            conn.sendall(b"220 fake ESMTP\r\n")
            while True:
                while b"\r\n" not in buf:
                    if not more(30):
                        return
                line, buf = buf.split(b"\r\n", 1)
                verb = line[:4].upper()
                if verb == b"EHLO":
                    with self.lock:
                        self.sessions += 1  # hand-off sessions (the smtphost probe sends none)
                    conn.sendall(b"250-fake\r\n250-PIPELINING\r\n" +
                                 (b"250-CHUNKING\r\n" if self.chunking else b"") + b"250 8BITMIME\r\n")
                elif verb == b"MAIL" and self.chunking:
                    # as zolderd: a transaction whose RCPTs all failed stays open until RSET
                    if txn is not None:
                        self.open_txn_refused += 1
                        conn.sendall(b"503 nested MAIL\r\n")
                    else:
                        txn = {"refuse": b"refuse" in line, "rcpts": 0}
                        conn.sendall(b"250 ok\r\n")
                elif verb == b"RCPT" and self.chunking:
                    if txn is None or txn["refuse"]:
                        conn.sendall(b"550 no such user\r\n")
                    else:
                        txn["rcpts"] += 1
                        conn.sendall(b"250 ok\r\n")
                elif verb == b"RSET":
                    txn = None
                    conn.sendall(b"250 ok\r\n")
                elif verb == b"BDAT" and self.chunking:
                    size = int(line.split()[1])
                    while len(buf) < size:
                        if not more(30):
                            return
                    body, buf = buf[:size], buf[size:]
                    behind = buf.startswith(b"RSET")  # the next transaction came before our reply
                    ok = txn is not None and txn["rcpts"] > 0
                    with self.lock:
                        self.behind_dot += behind
                        if self.mode == "drop" and behind:
                            self.drops += 1
                        elif self.mode == "accept":
                            self.accepted += ok
                        self.bodies.append(body)
                    if self.mode == "drop":
                        if behind:
                            return  # the session is lost: no reply to this BDAT
                        conn.sendall(b"451 later\r\n")
                    elif ok:
                        txn = None
                        conn.sendall(b"250 queued\r\n")
                    else:
                        conn.sendall(b"554 no valid recipients\r\n")
                elif verb in (b"MAIL", b"RCPT", b"NOOP"):
                    conn.sendall(b"250 ok\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                elif verb == b"DATA":
                    conn.sendall(b"354 go\r\n")
                    while b"\r\n.\r\n" not in buf:
                        if not more(30):
                            return
                    buf = buf.split(b"\r\n.\r\n", 1)[1]
                    deadline = time.monotonic() + self.wait
                    while not buf.startswith(b"MAIL FROM") and time.monotonic() < deadline:
                        if not more(max(0.01, deadline - time.monotonic())):
                            return
                    behind = buf.startswith(b"MAIL FROM")
                    with self.lock:
                        self.behind_dot += behind
                        if self.mode == "drop" and behind:
                            self.drops += 1
                        elif self.mode == "accept":
                            self.accepted += 1
                    if self.mode == "drop" and behind:
                        return  # the session is lost: no reply to this dot
                    conn.sendall(b"250 queued\r\n" if self.mode == "accept" else b"451 later\r\n")
                else:
                    conn.sendall(b"500 what\r\n")


class TestFetchPop3(FetchCase):
    def test_seed_line_delivers_with_received_chain(self):
        self.isp.inject("mailstore", "sjoerd", message(1))
        self.isp.inject("mailstore", "sjoerd", "Subject: dots\n\n.punt\n..twee\n")
        r = self.fetch(seed_pop(), expect=0)
        self.assertIn("2 messages for sjoerd at pop3.demon.nl", r.stdout)
        self.assertIn("reading message sjoerd@pop3.demon.nl:1 of 2", r.stdout)
        self.assertIn("flushed", r.stdout)
        self.assertNotIn("geheim", r.stdout + r.stderr)
        self.assertEqual(sorted(self.wait_subjects("sjoerd", 2)), ["dots", "test 1"])
        box = self.z.mbox("sjoerd")
        # newest first: zolderd's own line, then fetch's, then the ISP's
        hops = re.findall(r"^Received: from (\S+)", box, re.M)
        self.assertEqual(hops[:2], ["localhost", "pop3.demon.nl"], box)
        # the seed's trace: by localhost ... for sjoerd@localhost (single-drop)
        self.assertRegex(box, r"Received: from pop3.demon.nl\n\tby localhost with POP3 "
                              r"\(zolder-fetch [0-9.]+\)\n\tfor sjoerd@localhost \(single-drop\);")
        self.assertIn("\n.punt\n..twee\n", box.replace(">", ""))
        self.assertEqual(self.isp.messages("mailstore", "sjoerd"), [])
        self.assertEqual(self.isp.violations(), [])
        # nothing left: a second poll finds no mail
        r = self.fetch(seed_pop(), expect=1)
        self.assertIn("No mail for sjoerd at pop3.demon.nl", r.stdout)

    def test_keep_does_not_refetch(self):
        for i in range(3):
            self.isp.inject("mailstore", "sjoerd", message(i))
        self.fetch(seed_pop(extra="keep"), expect=0)
        self.assertEqual(len(self.wait_subjects("sjoerd", 3)), 3)
        self.assertEqual(len(self.isp.messages("mailstore", "sjoerd")), 3)
        self.isp.inject("mailstore", "sjoerd", message(9))
        r = self.fetch(seed_pop(extra="keep"), expect=0)
        self.assertIn("4 messages (3 seen)", r.stdout)
        subjects = self.wait_subjects("sjoerd", 4)
        time.sleep(0.5)
        self.assertEqual(sorted(self.subjects("sjoerd")), ["test 0", "test 1", "test 2", "test 9"])
        self.assertEqual(len(subjects), 4)

    def test_refuses_readable_rc(self):
        path = self.rc(seed_pop())
        os.chmod(path, 0o644)
        r = subprocess.run([zolder_test.binary("zolder-fetch"), "-f", path, "-c", self.z.config],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 6, r.stderr)
        self.assertIn("0700", r.stderr)

    def test_wrong_password(self):
        self.isp.inject("mailstore", "sjoerd", message(1))
        r = self.fetch(seed_pop(password="fout"), expect=3)
        self.assertNotIn("fout", r.stdout + r.stderr)
        self.assertEqual(len(self.isp.messages("mailstore", "sjoerd")), 1)


    def pop3_sessions(self):
        return len({r["session"] for r in self.isp.records("pop3")
                    if r.get("dir") == "c" and r.get("line", "").startswith("USER")})

    def test_link_cut_mid_retr_then_each_message_once(self):
        n = 12
        for i in range(n):
            self.isp.inject("mailstore", "sjoerd", message(i, 3000))
        # the first connection through the modem is cut in the middle of the RETRs: the RETRs
        # are pipelined (ispsim offers PIPELINING) and the answers come in 16 KiB TLS
        # records, so the cut comes after the handshake and the first record, in the second
        self.isp.link_profile(cut_after=26000, cut_times=1)
        r = self.fetch(seed_pop(), expect=2)
        got = self.wait_subjects("sjoerd", 1)
        self.assertLess(len(got), n, r.stdout + r.stderr)
        # nothing was deleted (no QUIT), but the UID record knows what zolder has
        self.assertEqual(len(self.isp.messages("mailstore", "sjoerd")), n)
        self.assertEqual(len(self.uid_record()), len(got))
        r = self.fetch(seed_pop(), expect=0)
        self.assertIn("seen)", r.stdout)
        got = self.wait_subjects("sjoerd", n)
        time.sleep(0.5)
        got = self.subjects("sjoerd")
        self.assertEqual(sorted(got), sorted(f"test {i}" for i in range(n)), r.stdout)
        self.assertEqual(self.isp.messages("mailstore", "sjoerd"), [])
        self.assertEqual(self.cut_violations(), [])
        # and the record is empty again: a third poll finds nothing
        self.assertEqual(self.uid_record(), [])
        self.fetch(seed_pop(), expect=1)

    def test_link_down_then_up(self):
        self.isp.inject("mailstore", "sjoerd", message(1))
        self.isp.link_down()
        try:
            self.fetch(seed_pop(), expect=2)
        finally:
            self.isp.link_up()
        self.assertEqual(len(self.isp.messages("mailstore", "sjoerd")), 1)
        self.assertEqual(self.uid_record(), [])
        self.fetch(seed_pop(), expect=0)
        self.assertEqual(self.wait_subjects("sjoerd", 1), ["test 1"])

    def test_stalled_link_times_out_then_each_message_once(self):
        for i in range(4):
            self.isp.inject("mailstore", "sjoerd", message(i, 3000))
        self.isp.link_profile(stall_after=7000)
        try:
            t0 = time.monotonic()
            self.fetch(f"poll pop3.demon.nl via {LINK_DEMON_POP3} proto pop3 timeout 2 "
                       "user sjoerd pass geheim is sjoerd\n", expect=2)
            self.assertLess(time.monotonic() - t0, 30)
        finally:
            self.isp.link_profile(clear=True)
        self.fetch(seed_pop(), expect=0)
        self.wait_subjects("sjoerd", 4)
        time.sleep(0.3)
        self.assertEqual(sorted(self.subjects("sjoerd")), [f"test {i}" for i in range(4)])
        self.assertEqual(self.isp.messages("mailstore", "sjoerd"), [])
        self.assertEqual(self.uid_record(), [])

    def test_tempfail_leaves_mail_on_server_and_5xx_deletes(self):
        self.z.cleanup()
        self.z = Zolderd(address=ZOLDER, port=PORT, name="fetch-zolderd-access",
                         conf={"access": "access"},
                         files={"access": "From:later@paprika ERROR:4.3.0:451 try again later\n"
                                          "From:spam@paprika ERROR:5.7.1:550 go away\n"})
        self.z.start()
        self.addCleanup(self.z.cleanup)
        self.home = self.z.inst.path("fetchhome")
        os.makedirs(self.home, exist_ok=True)
        self.isp.inject("mailstore", "sjoerd", message(1))
        self.isp.inject("mailstore", "sjoerd", "From: later@paprika\nSubject: later\n\nhold\n")
        self.isp.inject("mailstore", "sjoerd", "From: spam@paprika\nSubject: spam\n\nno\n")
        self.isp.inject("mailstore", "sjoerd", message(2))
        r = self.fetch("set no bouncemail\n" + seed_pop(), expect=0)
        self.assertIn("not flushed", r.stdout)
        self.assertEqual(sorted(self.wait_subjects("sjoerd", 2)), ["test 1", "test 2"])
        # the 550: an RFC 3464 DSN to the postmaster (alias admin): the reply, the header
        self.z.wait_for(lambda: "Undelivered Mail" in self.z.mbox("admin"), 20, "the notice")
        notice = self.z.mbox("admin")
        self.assertIn("Diagnostic-Code: smtp; 550 5.7.1 go away", notice)
        self.assertIn("report-type=delivery-status", notice)
        self.assertIn("Content-Type: message/delivery-status", notice)
        self.assertIn("Status: 5.7.1", notice)
        self.assertIn("Action: failed", notice)
        self.assertIn("Final-Recipient: rfc822; sjoerd@localhost", notice)
        self.assertIn("Content-Type: text/rfc822-headers", notice)
        self.assertIn("Subject: spam", notice)
        self.assertNotIn("\nno\n", notice)  # the header only, not the body
        self.assertIn("From MAILER-DAEMON", notice)
        left = self.isp.messages("mailstore", "sjoerd")
        self.assertEqual(len(left), 1)
        self.assertIn("Subject: later", self.isp.read("mailstore", "sjoerd", left[0]["uid"]))
        # the next poll tries only that one again
        r = self.fetch("set no bouncemail\n" + seed_pop(), expect=1)
        self.assertIn("1 messages for sjoerd", r.stdout)
        self.assertEqual(self.z.mbox("admin").count("Subject: Undelivered Mail"), 1)
        self.assertEqual(len(self.subjects("sjoerd")), 2)
        self.assertEqual(len(self.isp.messages("mailstore", "sjoerd")), 1)

    def test_zolder_down_is_smtp_error_and_nothing_lost(self):
        self.isp.inject("mailstore", "sjoerd", message(1))
        self.z.stop()
        r = self.fetch(seed_pop(), expect=10)
        self.assertEqual(len(self.isp.messages("mailstore", "sjoerd")), 1, r.stdout + r.stderr)
        self.z.start()
        self.fetch(seed_pop(), expect=0)
        self.assertEqual(self.wait_subjects("sjoerd", 1), ["test 1"])
        self.assertEqual(self.isp.messages("mailstore", "sjoerd"), [])

    def test_handoff_pipelines_the_next_transaction_behind_the_dot(self):
        """RFC 2920 3.1: the next message's MAIL, RCPT and DATA follow a final dot without
        waiting for its 250 (zolderd answers them in the turn of its commit round)."""
        smtp = PipelineSmtp("127.0.1.22", 2698, "accept")
        self.addCleanup(smtp.close)
        for i in range(20):
            self.isp.inject("mailstore", "sjoerd", message(i))
        self.fetch(seed_pop(extra="smtphost 127.0.1.22/2698"), expect=0)
        self.assertEqual(smtp.accepted, 20)
        self.assertGreater(smtp.behind_dot, 0, "no MAIL FROM came behind a final dot")
        self.assertEqual(self.isp.messages("mailstore", "sjoerd"), [])

    def test_handoff_pipelines_whole_messages_with_chunking(self):
        """CHUNKING and PIPELINING offered: whole messages (RSET, MAIL, RCPT, BDAT n LAST and
        the bytes) follow each other without waiting for the replies; a transaction refused
        at RCPT (BDAT then only answers 554 and the transaction stays open) does not spoil
        the next one, thanks to its RSET."""
        smtp = PipelineSmtp("127.0.1.22", 2698, "accept", wait=0, chunking=True)
        self.addCleanup(smtp.close)
        for i in range(24):
            self.isp.inject("mailstore", "sjoerd", message(i) if i != 5 else
                            "From: refuse@paprika\nSubject: refused\n\nno\n")
        with open(self.z.config, "a") as f:
            f.write("fetch_smtp_sessions = 1\nfetch_refused = keep\n")
        self.fetch(seed_pop(extra="smtphost 127.0.1.22/2698"))
        self.assertEqual(smtp.accepted, 23)
        self.assertEqual(smtp.open_txn_refused, 0, "a MAIL met a transaction left open")
        self.assertGreater(smtp.behind_dot, 0, "no transaction came before the previous reply")
        left = self.isp.messages("mailstore", "sjoerd")
        self.assertEqual(len(left), 1, "the refused one stays on the server")
        self.assertIn("Subject: refused", self.isp.read("mailstore", "sjoerd", left[0]["uid"]))
        # the bytes are the message with CRLF line ends, unstuffed, as DATA would carry them
        one = [b for b in smtp.bodies if b"Subject: test 7\r\n" in b]
        self.assertEqual(len(one), 1)
        self.assertTrue(one[0].endswith(b"Message 7.\r\n"), one[0][-40:])

    def test_fetch_smtp_sessions_sets_the_hand_off_sessions(self):
        smtp = PipelineSmtp("127.0.1.22", 2698, "accept")
        self.addCleanup(smtp.close)
        for i in range(30):
            self.isp.inject("mailstore", "sjoerd", message(i))
        with open(self.z.config, "a") as f:
            f.write("fetch_smtp_sessions = 3\n")
        self.fetch(seed_pop(extra="smtphost 127.0.1.22/2698"), expect=0)
        self.assertEqual(smtp.accepted, 30)
        self.assertEqual(smtp.sessions, 3, "the replies wait 0.2 s: every session allowed opens")
        with open(self.z.config, "a") as f:
            f.write("fetch_smtp_sessions = 17\n")
        r = subprocess.run([zolder_test.binary("zolderd"), "-t", "-c", self.z.config],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("fetch_smtp_sessions", r.stdout + r.stderr)

    def test_session_lost_with_a_transaction_behind_the_dot_loses_nothing(self):
        """A session lost after a final dot with the next transaction pipelined behind it:
        neither message is recorded or deleted; the next poll delivers each once."""
        for i in range(20):
            self.isp.inject("mailstore", "sjoerd", message(i))
        # with CHUNKING (whole messages in flight) first, then behind a DATA's final dot
        smtp = PipelineSmtp("127.0.1.22", 2698, "drop", chunking=True)
        r = self.fetch(seed_pop(extra="smtphost 127.0.1.22/2698"))
        smtp.close()
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertGreater(smtp.drops, 0, "no session was lost with a transaction in flight behind")
        self.assertEqual(len(self.isp.messages("mailstore", "sjoerd")), 20, "nothing deleted")
        self.assertEqual(self.uid_record(), [], "nothing recorded as delivered")
        smtp = PipelineSmtp("127.0.1.22", 2698, "drop")
        self.addCleanup(smtp.close)
        r = self.fetch(seed_pop(extra="smtphost 127.0.1.22/2698"))
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertGreater(smtp.drops, 0, "no session was lost with a MAIL FROM behind its dot")
        self.assertIn("hand-off session lost", r.stdout + r.stderr)
        self.assertEqual(len(self.isp.messages("mailstore", "sjoerd")), 20, "nothing deleted")
        self.assertEqual(self.uid_record(), [], "nothing recorded as delivered")
        smtp.close()
        self.fetch(seed_pop(), expect=0)
        subjects = self.wait_subjects("sjoerd", 20)
        self.assertEqual(sorted(subjects), sorted(f"test {i}" for i in range(20)))
        self.assertEqual(self.isp.messages("mailstore", "sjoerd"), [])

    def test_full_isp_mailbox_drains_in_one_session(self):
        for i in range(40):
            self.isp.inject("mailstore", "sjoerd", message(i, 4000))
        self.isp.call("mailstore.quota", store="mailstore", user="sjoerd", bytes=100000)
        r = self.fetch(seed_pop(), expect=0)
        self.assertEqual(self.pop3_sessions(), 1, r.stdout)
        self.assertEqual(len(self.wait_subjects("sjoerd", 40)), 40)
        self.assertEqual(self.isp.messages("mailstore", "sjoerd"), [])
        quota = self.isp.call("mailstore.quota", store="mailstore", user="sjoerd")
        self.assertEqual(quota["bytes"], 0)

    def test_limit_skips_oversized_and_warns_the_postmaster_once(self):
        self.isp.inject("mailstore", "sjoerd", message(1))
        self.isp.inject("mailstore", "sjoerd", message(2, 6000))
        self.isp.inject("mailstore", "sjoerd", message(3))
        r = self.fetch(seed_pop(extra="limit 3000"), expect=0)
        self.assertRegex(r.stdout, r"skipping message sjoerd@pop3.demon.nl:2 \(\d+ octets\) "
                                   r"not flushed")
        self.assertEqual(sorted(self.wait_subjects("sjoerd", 2)), ["test 1", "test 3"])
        left = self.isp.messages("mailstore", "sjoerd")
        self.assertEqual(len(left), 1)
        self.assertIn("Subject: test 2", self.isp.read("mailstore", "sjoerd", left[0]["uid"]))
        self.z.wait_for(lambda: "oversized-messages warning" in self.z.mbox("admin"), 20,
                        "the warning")
        warning = self.z.mbox("admin")
        self.assertIn("remain on server pop3.demon.nl account sjoerd", warning)
        self.assertRegex(warning, r"  2 msg \d+ octets long skipped by zolder-fetch")
        self.assertIn("From MAILER-DAEMON", warning)
        # a second poll: still skipped, the postmaster is not told again
        r = self.fetch(seed_pop(extra="limit 3000"), expect=1)
        self.assertIn("not flushed", r.stdout)
        self.assertEqual(len(self.isp.messages("mailstore", "sjoerd")), 1)
        # limitflush deletes it (never delivered), again without a second warning
        r = self.fetch(seed_pop(extra="limit 3000 limitflush"), expect=1)
        self.assertRegex(r.stdout, r"skipping message sjoerd@pop3.demon.nl:1 \(\d+ octets\) "
                                   r"flushed")
        self.assertEqual(self.isp.messages("mailstore", "sjoerd"), [])
        time.sleep(0.5)
        self.assertEqual(self.z.mbox("admin").count("oversized-messages warning"), 1)
        self.assertEqual(sorted(self.subjects("sjoerd")), ["test 1", "test 3"])
        self.assertEqual(self.isp.violations(), [])

    def test_flush_deletes_delivered_messages_kept_before(self):
        for i in range(2):
            self.isp.inject("mailstore", "sjoerd", message(i))
        self.fetch(seed_pop(extra="keep"), expect=0)
        self.assertEqual(len(self.wait_subjects("sjoerd", 2)), 2)
        self.assertEqual(len(self.isp.messages("mailstore", "sjoerd")), 2)
        self.isp.inject("mailstore", "sjoerd", message(5))
        r = self.fetch(seed_pop(extra="keep flush"), expect=0)
        self.assertIn("3 messages (2 seen)", r.stdout)
        self.assertEqual(sorted(self.wait_subjects("sjoerd", 3)), ["test 0", "test 1", "test 5"])
        left = self.isp.messages("mailstore", "sjoerd")
        self.assertEqual(len(left), 1)  # the new one is kept, the old ones flushed
        self.assertIn("Subject: test 5", self.isp.read("mailstore", "sjoerd", left[0]["uid"]))
        self.assertEqual(len(self.uid_record()), 1)
        self.fetch(seed_pop(extra="keep"), expect=1)
        time.sleep(0.3)
        self.assertEqual(len(self.subjects("sjoerd")), 3)

    def test_smtphost_is_used_instead_of_fetch_smtp(self):
        self.isp.inject("mailstore", "sjoerd", message(1))
        # -s names a dead port: only the smtphost (fetchmail's HOST/PORT form) reaches zolder
        r = self.fetch(seed_pop(extra=f"smtphost {ZOLDER}/{PORT}"), "-s", "127.0.1.21:2699",
                       expect=0)
        self.assertIn(f"handing mail to smtphost {ZOLDER}:{PORT}", r.stdout)
        self.assertEqual(self.wait_subjects("sjoerd", 1), ["test 1"])
        self.assertEqual(self.isp.messages("mailstore", "sjoerd"), [])
        # and the other way round: a dead smtphost is an SMTP failure, nothing lost
        self.isp.inject("mailstore", "sjoerd", message(2))
        r = self.fetch(seed_pop(extra="smtphost 127.0.1.21:2699"), expect=10)
        self.assertEqual(len(self.isp.messages("mailstore", "sjoerd")), 1)
        self.assertIn("no smtphost answered", r.stdout + r.stderr)
        # a name is looked up (here: dns = nodns and not in the hosts file): exit 10 too
        before = len(self.isp.records("pop3"))
        r = self.fetch(seed_pop(extra="smtphost mail.example.org"), expect=10)
        self.assertIn("smtphost mail.example.org: cannot resolve mail.example.org",
                      r.stdout + r.stderr)
        self.assertEqual(len(self.isp.messages("mailstore", "sjoerd")), 1)
        self.assertEqual(len(self.isp.records("pop3")), before, "no server session without one")

    def test_smtphost_list_first_that_answers_and_names_resolve(self):
        self.isp.inject("mailstore", "sjoerd", message(1))
        hosts = os.path.join(self.home, "hosts")
        with open(hosts, "w") as f:
            f.write(f"{ZOLDER} zolder.lan\n")
        with open(self.z.config) as f:
            conf = f.read()
        conf_path = os.path.join(self.home, "zolder.conf")
        with open(conf_path, "w") as f:
            f.write(conf + f"hosts_file = {hosts}\n")
        # fetchmail's list: a dead port, an unknown name, then a name that resolves (through
        # the poller's resolver: the hosts file) and answers
        rc = self.rc(seed_pop(extra=f"smtphost 127.0.1.21/2699 nergens.lan zolder.lan/{PORT}"))
        r = subprocess.run([zolder_test.binary("zolder-fetch"), "-v", "-f", rc, "-c", conf_path,
                            "-d", self.z.inst.path("var"), "-s", "127.0.1.21:2698"],
                           capture_output=True, text=True, timeout=60,
                           env={**os.environ, "HOME": self.home})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"smtphost 127.0.1.21/2699: Connection refused")
        self.assertIn("smtphost nergens.lan: cannot resolve nergens.lan", r.stdout)
        self.assertIn(f"handing mail to smtphost {ZOLDER}:{PORT}", r.stdout)
        self.assertEqual(self.wait_subjects("sjoerd", 1), ["test 1"])
        self.assertEqual(self.isp.messages("mailstore", "sjoerd"), [])
        self.assertRegex(self.z.mbox("sjoerd"), r"Received: from pop3.demon.nl\n\tby localhost ")

    def test_set_logfile_gets_the_session(self):
        self.isp.inject("mailstore", "sjoerd", message(1))
        log = os.path.join(self.home, "fetch.log")
        self.fetch(f"set logfile \"{log}\"\n" + seed_pop(), expect=0)
        self.wait_subjects("sjoerd", 1)
        with open(log, encoding="utf-8") as f:
            text = f.read()
        self.assertIn("reading message sjoerd@pop3.demon.nl:1 of 1", text)
        self.assertIn("message", text)
        self.assertRegex(text, r"delivered to sjoerd \(250")
        self.assertNotIn("geheim", text)
        # appended, not overwritten
        self.fetch(f"set logfile \"{log}\"\n" + seed_pop(), expect=1)
        with open(log, encoding="utf-8") as f:
            self.assertIn(text, f.read())

    def test_set_idfile_keeps_the_uid_records_in_its_folder(self):
        for i in range(2):
            self.isp.inject("mailstore", "sjoerd", message(i))
        ids = os.path.join(self.home, "ids")
        os.makedirs(ids)
        rc = f'set idfile "{ids}/fetchids"\n' + seed_pop(extra="keep")
        self.fetch(rc, expect=0)
        self.assertEqual(len(self.wait_subjects("sjoerd", 2)), 2)
        records = [n for n in os.listdir(os.path.join(ids, "fetch")) if n.endswith(".uids")]
        self.assertEqual(len(records), 1, records)
        with open(os.path.join(ids, "fetch", records[0])) as f:
            self.assertEqual(sum(1 for line in f if line.startswith("U ")), 2)
        self.assertEqual(self.uid_record(), [])  # not under -c's state_dir
        # the next poll reads them there: nothing twice
        r = self.fetch(rc, expect=1)
        self.assertIn("2 messages (2 seen)", r.stdout)
        # -d still wins, as fetchmail's --idfile over the rc: a fresh record fetches again
        r = self.fetch(rc, "-d", self.z.inst.path("var"), "-k", expect=0)
        self.assertEqual(len(self.uid_record()), 2)

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("unshare") and
                         not os.path.exists("/dev/log"),
                         "needs root, unshare and no system syslog socket")
    def test_set_syslog_sends_the_session_to_syslog(self):
        import socket
        self.isp.inject("mailstore", "sjoerd", message(1))
        sock_path = os.path.join(self.home, "log.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(sock_path)
        self.addCleanup(sock.close)
        rc = self.rc("set syslog\n" + seed_pop())
        # a private /dev (own mount namespace) whose `log` is our socket: the host has none
        dev = os.path.join(self.home, "dev")
        os.makedirs(dev)
        script = (f'set -e; mount -t tmpfs none "{dev}"; '
                  f'for n in null urandom random log; do touch "{dev}/$n"; done; '
                  f'for n in null urandom random; do mount --bind /dev/$n "{dev}/$n"; done; '
                  f'mount --bind "{sock_path}" "{dev}/log"; mount --rbind "{dev}" /dev; '
                  f'exec "$@"')
        r = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh",
                            zolder_test.binary("zolder-fetch"), "-f", rc, "-c", self.z.config],
                           capture_output=True, text=True, timeout=60,
                           env={**os.environ, "HOME": self.home})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")  # no -v: the progress goes to syslog only
        sock.settimeout(2)
        lines = []
        try:
            while True:
                lines.append(sock.recv(65536).decode("utf-8", "replace"))
        except socket.timeout:
            pass
        text = "\n".join(lines)
        # <PRI>: facility mail (2) * 8 + info (6) = 22
        self.assertRegex(text, r"<22>.*zolder-fetch\[\d+\]: reading message "
                               r"sjoerd@pop3.demon.nl:1 of 1")
        self.assertRegex(text, r"<22>.*zolder-fetch\[\d+\]: fetch: .*delivered to sjoerd")
        self.assertNotIn("geheim", text)
        self.assertEqual(self.wait_subjects("sjoerd", 1), ["test 1"])

    def test_names_from_the_hosts_file_without_getaddrinfo(self):
        self.isp.inject("mailstore", "sjoerd", message(1))
        hosts = os.path.join(self.home, "hosts")
        with open(hosts, "w") as f:
            f.write(f"{LINK_DEMON_POP3} pop3.demon.nl\n")
        with open(self.z.config) as f:
            conf = f.read()
        conf_path = os.path.join(self.home, "zolder.conf")
        with open(conf_path, "w") as f:
            f.write(conf + f"hosts_file = {hosts}\n")
        rc = self.rc("poll pop3.demon.nl proto pop3 user sjoerd pass geheim is sjoerd\n")
        r = subprocess.run([zolder_test.binary("zolder-fetch"), "-v", "-f", rc, "-c", conf_path,
                            "-d", self.z.inst.path("var")],
                           capture_output=True, text=True, timeout=60,
                           env={**os.environ, "HOME": self.home})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.wait_subjects("sjoerd", 1), ["test 1"])
        # a name in neither (dns = nodns): exit 11, at once
        rc = self.rc("poll pop9.demon.nl proto pop3 user sjoerd pass geheim is sjoerd\n")
        r = subprocess.run([zolder_test.binary("zolder-fetch"), "-f", rc, "-c", conf_path],
                           capture_output=True, text=True, timeout=60,
                           env={**os.environ, "HOME": self.home})
        self.assertEqual(r.returncode, 11, r.stdout + r.stderr)

    @unittest.skipUnless(shutil.which("fetchmail"), "fetchmail not installed")
    def test_same_messages_as_debian_fetchmail(self):
        for i in range(4):
            self.isp.inject("mailstore", "sjoerd", message(i))
        # fetchmail 6.4 checks certificates when it upgrades to TLS: both get the test CA
        rc = ("set no bouncemail\n" +
              seed_pop(extra=f'keep smtphost {ZOLDER}/{self.z.port} smtpaddress localhost sslproto "TLS1.2+" '
                             f'sslcertck sslcertfile "{CA}" sslcommonname "pop3.demon.nl"'))
        path = self.rc(rc, "fetchmailrc")
        r = subprocess.run(["fetchmail", "-f", path, "--nodetach", "--nosyslog", "-v",
                            "--idfile", os.path.join(self.home, "ids"),
                            "--pidfile", os.path.join(self.home, "pid")],
                           env={**os.environ, "HOME": self.home}, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        by_fetchmail = sorted(self.wait_subjects("sjoerd", 4))
        self.assertIn("(fetchmail-", self.z.mbox("sjoerd"))
        r = self.fetch(rc, expect=0)
        self.wait_subjects("sjoerd", 8)
        time.sleep(0.3)
        box = self.z.mbox("sjoerd")
        by_zolder = sorted(re.findall(r"\(zolder-fetch [^)]*\)\n\tfor sjoerd@localhost "
                                      r"\(single-drop\); [^\n]*\n(?:.*\n)*?Subject: (.*)", box))
        self.assertEqual(by_fetchmail, [f"test {i}" for i in range(4)])
        self.assertEqual(by_zolder, by_fetchmail, r.stdout)
        self.assertEqual(len(self.isp.messages("mailstore", "sjoerd")), 4)


    def test_multidrop_maps_envelope_and_to_cc_else_postmaster(self):
        self.isp.inject("mailstore", "sjoerd", "Delivered-To: bouke@demon.nl\nTo: list@x.example\n"
                        "Subject: md envelope\n\nfor bouke\n")
        self.isp.inject("mailstore", "sjoerd", "To: Sjoerd <sjoerd@demon.nl>, \"A, B\" "
                        "<admin@sjoerd-visser.spam.demon.nl>\nCc: x@elsewhere.example\n"
                        "Subject: md to cc\n\nfor two\n")
        self.isp.inject("mailstore", "sjoerd", "To: stranger@elsewhere.example\n"
                        "Subject: md stranger\n\nnobody here\n")
        rc = (f"poll pop3.demon.nl via {LINK_DEMON_POP3} proto pop3 localdomains demon.nl "
              "aka sjoerd-visser.spam.demon.nl user sjoerd pass geheim is * here\n")
        self.fetch(rc, expect=0)
        self.z.wait_for(lambda: "md stranger" in self.z.mbox("admin") and
                        "md to cc" in self.z.mbox("sjoerd"), 20, "multidrop deliveries")
        time.sleep(0.3)
        self.assertEqual(self.subjects("bouke"), ["md envelope"])
        self.assertEqual(self.subjects("sjoerd"), ["md to cc"])
        # admin: the Cc'd copy and, as the postmaster (alias), the stranger's
        self.assertEqual(sorted(self.subjects("admin")), ["md stranger", "md to cc"])
        self.assertIn("(multi-drop)", self.z.mbox("bouke"))
        self.assertEqual(self.isp.messages("mailstore", "sjoerd"), [])

    def test_proto_auto_falls_back_to_pop3_when_imap_is_refused(self):
        # pop3.demon.nl has no IMAP: its port 143 refuses, so auto (the default) goes to 110
        self.isp.inject("mailstore", "sjoerd", message(1))
        r = self.fetch(f"poll pop3.demon.nl via {LINK_DEMON_POP3} user sjoerd pass geheim "
                       "is sjoerd\n", expect=0)
        self.assertIn("proto auto: pop3.demon.nl port 143:", r.stdout)
        self.assertIn("trying POP3 on port 110", r.stdout)
        self.assertEqual(self.wait_subjects("sjoerd", 1), ["test 1"])
        self.assertEqual(self.isp.messages("mailstore", "sjoerd"), [])
        self.assertEqual(self.isp.records("imap"), [])
        # the record is the POP3 one: a POP3 poll of the same account knows nothing new
        self.assertEqual(self.uid_record(), [])
        # with ssl: 993 refuses, 995 (implicit TLS) answers
        self.isp.inject("mailstore", "sjoerd", message(2))
        r = self.fetch(f"poll pop3.demon.nl via {LINK_DEMON_POP3} user sjoerd pass geheim "
                       f"is sjoerd ssl sslcertck sslcertfile \"{CA}\"\n", expect=0)
        self.assertIn("proto auto: pop3.demon.nl port 993:", r.stdout)
        self.assertIn("trying POP3 on port 995", r.stdout)
        self.assertEqual(sorted(self.wait_subjects("sjoerd", 2)), ["test 1", "test 2"])

    def test_proto_auto_with_a_port_goes_by_the_greeting(self):
        self.isp.inject("mailstore", "sjoerd", message(3))
        r = self.fetch(f"poll pop3.demon.nl via {LINK_DEMON_POP3} port 110 user sjoerd "
                       "pass geheim is sjoerd\n", expect=0)
        self.assertIn("proto auto: pop3.demon.nl port 110 greets as POP3: using POP3", r.stdout)
        self.assertNotIn("trying POP3", r.stdout)
        self.assertEqual(self.wait_subjects("sjoerd", 1), ["test 3"])
        self.assertEqual(self.isp.messages("mailstore", "sjoerd"), [])

    def test_sslproto_empty_stays_in_the_clear(self):
        self.isp.inject("mailstore", "sjoerd", message(5))
        r = self.fetch(seed_pop(extra="sslproto ''"), expect=0)
        self.assertNotIn("upgrade to TLS", r.stdout)
        self.assertEqual(self.isp.records("tls"), [])
        self.assertEqual(self.wait_subjects("sjoerd", 1), ["test 5"])


class TestFetchImap(FetchCase):
    def test_seed_line_imap(self):
        self.isp.inject("provider1", "sjoerd", message(1))
        self.isp.inject("provider1", "sjoerd", message(2))
        r = self.fetch(seed_imap(), expect=0)
        self.assertIn("2 messages for sjoerd at imap.provider1.nl", r.stdout)
        self.assertEqual(sorted(self.wait_subjects("bouke", 2)), ["test 1", "test 2"])
        self.assertRegex(self.z.mbox("bouke"), r"Received: from imap.provider1.nl\n\tby localhost "
                                                r"with IMAP \(zolder-fetch")
        self.assertEqual(self.isp.messages("provider1", "sjoerd"), [])
        self.assertEqual(self.isp.violations(), [])
        commands = [r["line"].split(" ", 2)[1] for r in self.isp.records("imap")
                    if r.get("dir") == "c" and " " in r["line"]]
        self.assertIn("STARTTLS", commands)  # offered, so used

    def test_imap_keep_and_link_cut(self):
        for i in range(5):
            self.isp.inject("provider1", "sjoerd", message(i, 3000))
        self.isp.link_profile(cut_after=12000, cut_times=1)
        self.fetch(seed_imap(), expect=2)
        self.assertEqual(len(self.isp.messages("provider1", "sjoerd")), 5)
        self.fetch(seed_imap(), expect=0)
        self.wait_subjects("bouke", 5)
        time.sleep(0.5)
        self.assertEqual(sorted(self.subjects("bouke")), [f"test {i}" for i in range(5)])
        self.assertEqual(self.isp.messages("provider1", "sjoerd"), [])
        self.assertEqual(self.cut_violations(), [])

    def test_imap_keep_marks_seen_and_does_not_refetch(self):
        for i in range(3):
            self.isp.inject("provider1", "sjoerd", message(i))
        self.fetch(seed_imap(extra="keep"), expect=0)
        self.assertEqual(len(self.wait_subjects("bouke", 3)), 3)
        self.fetch(seed_imap(extra="keep fetchall"), expect=1)
        # an UNSEEN search that sees none of them must not make the record forget them
        self.fetch(seed_imap(extra="keep"), expect=1)
        self.fetch(seed_imap(extra="keep fetchall"), expect=1)
        time.sleep(0.3)
        self.assertEqual(len(self.subjects("bouke")), 3)
        self.assertEqual(len(self.isp.messages("provider1", "sjoerd")), 3)

    def test_imap_limit_leaves_oversized_unseen(self):
        self.isp.inject("provider1", "sjoerd", message(1))
        self.isp.inject("provider1", "sjoerd", message(2, 6000))
        r = self.fetch(seed_imap(extra="limit 3000"), expect=0)
        self.assertRegex(r.stdout, r"skipping message sjoerd@imap.provider1.nl:\d+ "
                                   r"\(\d+ octets\) not flushed")
        self.assertEqual(self.wait_subjects("bouke", 1), ["test 1"])
        left = self.isp.messages("provider1", "sjoerd")
        self.assertEqual(len(left), 1)
        self.z.wait_for(lambda: "oversized-messages warning" in self.z.mbox("admin"), 20,
                        "the warning")
        # never fetched, so never seen: an UNSEEN search still finds it, without a new warning
        r = self.fetch(seed_imap(extra="limit 3000"), expect=1)
        self.assertIn("not flushed", r.stdout)
        r = self.fetch(seed_imap(extra="limit 3000 limitflush"), expect=1)
        self.assertIn(" flushed", r.stdout)
        self.assertEqual(self.isp.messages("provider1", "sjoerd"), [])
        time.sleep(0.3)
        self.assertEqual(self.z.mbox("admin").count("oversized-messages warning"), 1)
        self.assertEqual(self.subjects("bouke"), ["test 1"])

    def test_imap_flush_deletes_only_what_was_delivered(self):
        for i in range(2):
            self.isp.inject("provider1", "sjoerd", message(i))
        self.fetch(seed_imap(extra="keep"), expect=0)
        self.assertEqual(len(self.wait_subjects("bouke", 2)), 2)
        self.isp.inject("provider1", "sjoerd", message(7))
        r = self.fetch(seed_imap(extra="keep flush"), expect=0)
        self.assertEqual(sorted(self.wait_subjects("bouke", 3)), ["test 0", "test 1", "test 7"])
        left = self.isp.messages("provider1", "sjoerd")
        self.assertEqual(len(left), 1, r.stdout)
        self.assertIn("Subject: test 7", self.isp.read("provider1", "sjoerd", left[0]["uid"]))
        self.fetch(seed_imap(extra="keep flush"), expect=1)
        self.assertEqual(self.isp.messages("provider1", "sjoerd"), [])
        time.sleep(0.3)
        self.assertEqual(len(self.subjects("bouke")), 3)

    def test_several_folders_each_in_turn(self):
        self.isp.inject("provider1", "sjoerd", message(1))
        # ispsim has only INBOX: the second pass fails on its own (exit 7, SELECT), the
        # first delivers; each folder has its own record and its own result line
        r = self.fetch(seed_imap(extra="folders INBOX Archief"), expect=7)
        self.assertIn("sjoerd at imap.provider1.nl folder INBOX: 1 messages", r.stdout)
        self.assertIn("sjoerd at imap.provider1.nl folder Archief: SELECT failed", r.stdout)
        self.assertEqual(self.wait_subjects("bouke", 1), ["test 1"])
        self.assertEqual(self.isp.messages("provider1", "sjoerd"), [])
        selects = [r["line"].split(" ", 1)[1] for r in self.isp.records("imap")
                   if r.get("dir") == "c" and " SELECT " in r["line"]]
        self.assertEqual(selects, ['SELECT "INBOX"', 'SELECT "Archief"'])

    def test_proto_auto_picks_imap_where_it_greets(self):
        # imap.provider1.nl has IMAP only: auto (no proto) takes it on 143, one connection
        self.isp.inject("provider1", "sjoerd", message(4))
        r = self.fetch(f"poll imap.provider1.nl via {LINK_PROVIDER1_IMAP} user sjoerd "
                       "pass geheim2 is bouke\n", expect=0)
        self.assertIn("proto auto: imap.provider1.nl port 143 greets as IMAP: using IMAP",
                      r.stdout)
        self.assertNotIn("trying POP3", r.stdout)
        self.assertEqual(self.wait_subjects("bouke", 1), ["test 4"])
        self.assertEqual(self.isp.messages("provider1", "sjoerd"), [])
        self.assertEqual(self.isp.records("pop3"), [])
        self.assertEqual(self.isp.violations(), [])
        # a second poll with `proto imap` uses the same (IMAP) record: nothing new
        self.fetch(seed_imap(), expect=1)

    def test_idle_outside_zolderd_polls_once(self):
        self.isp.inject("provider1", "sjoerd", message(6))
        r = self.fetch(seed_imap(extra="idle"), expect=0)
        self.assertIn("idle: IMAP IDLE is kept between zolderd's polls only: polled once",
                      r.stdout)
        self.assertEqual(self.wait_subjects("bouke", 1), ["test 6"])
        lines = [x["line"] for x in self.isp.records("imap") if x.get("dir") == "c"]
        self.assertFalse(any(line.endswith(" IDLE") for line in lines), lines)
        self.assertTrue(any(line.endswith(" LOGOUT") for line in lines), lines)

    def test_imaps_993_with_certificate_check(self):
        self.isp.inject("provider1", "sjoerd", message(7))
        r = self.fetch(f"poll imap.provider1.nl via {LINK_PROVIDER1_IMAP} proto imap port 993 "
                       f"user sjoerd pass geheim2 is bouke ssl sslcertck sslcertfile \"{CA}\"\n",
                       expect=0)
        self.assertIn("upgrade to TLS succeeded", r.stdout)
        self.assertEqual(self.wait_subjects("bouke", 1), ["test 7"])


class TestFetchInZolderd(IspsimCase):
    """zolderd's own poller: fetchmailrc + fetch_interval, and `zolderctl fetch`."""

    def start(self, rc, interval="0", conf=None, files=None):
        self.z = Zolderd(address=ZOLDER, port=PORT, name="fetch-zolderd-svc",
                         conf={"fetchmailrc": "fetchmailrc", "fetch_interval": interval,
                               **(conf or {})},
                         files={"fetchmailrc": rc, **(files or {})})
        os.chmod(self.z.inst.path("fetchmailrc"), 0o600)
        self.z.start()
        self.addCleanup(self.z.cleanup)

    def ctl(self, *args):
        return self.z.run_tool("zolderctl", "-c", self.z.config, *args, timeout=120)

    def subjects(self, user):
        return re.findall(r"^Subject: (.*)$", self.z.mbox(user), re.M)

    def test_zolderctl_fetch_polls_both_seed_accounts(self):
        self.isp.inject("mailstore", "sjoerd", message(1))
        self.isp.inject("provider1", "sjoerd", message(2))
        self.start(seed_pop() + seed_imap())
        r = self.ctl("fetch")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"fetch done: status 0, 2 accounts, 2 delivered", r.stdout)
        self.z.wait_for(lambda: self.subjects("sjoerd") == ["test 1"] and
                        self.subjects("bouke") == ["test 2"], 20, "both delivered")
        self.assertEqual(self.isp.messages("mailstore", "sjoerd"), [])
        self.assertEqual(self.isp.messages("provider1", "sjoerd"), [])
        self.assertNotIn("geheim", self.z.log())
        r = self.ctl("fetch")
        self.assertIn(b"status 1", r.stdout + r.stderr, self.z.log()[-3000:])

    def test_seed_lines_verbatim_resolved_through_the_world_dns(self):
        # no `via`: pop3.demon.nl and imap.provider1.nl are looked up as outbound delivery
        # does (the nameserver answers their modem addresses)
        self.isp.inject("mailstore", "sjoerd", message(1))
        self.isp.inject("provider1", "sjoerd", message(2))
        self.start("poll pop3.demon.nl proto pop3 aka demon.nl no dns user sjoerd pass geheim "
                   "is sjoerd\n"
                   "poll imap.provider1.nl proto imap aka provider1.nl no dns user sjoerd "
                   "pass geheim2 is bouke\n",
                   conf={"dns": "canonify", "nameserver": "127.0.2.53:53"})
        r = self.ctl("fetch")
        self.assertIn(b"fetch done: status 0, 2 accounts, 2 delivered", r.stdout, self.z.log())
        self.z.wait_for(lambda: self.subjects("sjoerd") == ["test 1"] and
                        self.subjects("bouke") == ["test 2"], 20, "both delivered")
        self.assertTrue(any(q["name"].rstrip(".") == "pop3.demon.nl"
                            for q in self.isp.records("dns")))

    def test_proto_auto_in_zolderd_for_both_seed_accounts(self):
        # no proto: the POP3 host refuses 143 and is polled over POP3, the IMAP host over IMAP
        self.isp.inject("mailstore", "sjoerd", message(1))
        self.isp.inject("provider1", "sjoerd", message(2))
        self.start(f"poll pop3.demon.nl via {LINK_DEMON_POP3} user sjoerd pass geheim "
                   "is sjoerd\n"
                   f"poll imap.provider1.nl via {LINK_PROVIDER1_IMAP} user sjoerd pass geheim2 "
                   "is bouke\n")
        r = self.ctl("fetch")
        self.assertIn(b"fetch done: status 0, 2 accounts, 2 delivered", r.stdout, self.z.log())
        self.z.wait_for(lambda: self.subjects("sjoerd") == ["test 1"] and
                        self.subjects("bouke") == ["test 2"], 20, "both delivered")
        log = self.z.log()
        self.assertEqual(log.count("proto auto: pop3.demon.nl port 143:"), 1, log)
        self.assertEqual(log.count("trying POP3 on port 110"), 1, log)
        self.assertEqual(log.count("proto auto: imap.provider1.nl port 143 greets as IMAP"), 1,
                         log)

    def test_interval_polls_an_entry_every_nth_cycle(self):
        self.isp.inject("mailstore", "sjoerd", message(1))
        self.isp.inject("provider1", "sjoerd", message(2))
        self.start(f"poll pop3.demon.nl via {LINK_DEMON_POP3} proto pop3 interval 2 "
                   f"user sjoerd pass geheim is sjoerd\n" + seed_imap())
        r = self.ctl("fetch")  # cycle 1: both
        self.assertIn(b"fetch done: status 0, 2 accounts, 2 delivered", r.stdout, self.z.log())
        self.isp.inject("mailstore", "sjoerd", message(3))
        r = self.ctl("fetch")  # cycle 2: the POP3 entry waits
        self.assertIn(b"fetch done: status 1, 1 accounts, 0 delivered", r.stdout, self.z.log())
        self.assertIn("interval not reached, not querying pop3.demon.nl", self.z.log())
        self.assertEqual(len(self.isp.messages("mailstore", "sjoerd")), 1)
        r = self.ctl("fetch")  # cycle 3: polled again
        self.assertIn(b"fetch done: status 0, 2 accounts, 1 delivered", r.stdout, self.z.log())
        self.z.wait_for(lambda: sorted(self.subjects("sjoerd")) == ["test 1", "test 3"], 20,
                        "the third cycle")
        self.assertEqual(self.isp.messages("mailstore", "sjoerd"), [])

    def test_fetch_interval_schedule(self):
        self.isp.inject("mailstore", "sjoerd", message(3))
        self.start(seed_pop(), interval="1")
        self.z.wait_for(lambda: self.subjects("sjoerd") == ["test 3"], 20, "scheduled poll")
        self.isp.inject("mailstore", "sjoerd", message(4))
        self.z.wait_for(lambda: sorted(self.subjects("sjoerd")) == ["test 3", "test 4"], 20,
                        "second scheduled poll")

    def imap_client_lines(self):
        return [r["line"] for r in self.isp.records("imap") if r.get("dir") == "c"]

    def uids(self):
        d = self.z.inst.path("var", "fetch")
        out = []
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if name.endswith(".uids"):
                with open(os.path.join(d, name)) as f:
                    out += [line[2:].strip() for line in f if line.startswith("U ")]
        return out

    def test_idle_fetches_new_mail_at_once_and_nothing_twice(self):
        self.isp.inject("provider1", "sjoerd", message(1))
        # an hour between polls: only IDLE can bring the later messages in time
        self.start(seed_imap(extra="idle"), interval="3600", conf={"fetch_idle_renew": "2"})
        r = self.ctl("fetch")
        self.assertIn(b"fetch done: status 0, 1 accounts, 1 delivered", r.stdout, self.z.log())
        self.z.wait_log("idling (IMAP IDLE)", timeout=10)
        self.z.wait_for(lambda: self.subjects("bouke") == ["test 1"], 20, "the poll's message")
        for n in (2, 3):
            t0 = time.monotonic()
            self.isp.inject("provider1", "sjoerd", message(n))
            self.z.wait_for(lambda: f"test {n}" in self.subjects("bouke"), 15,
                            f"message {n} through IDLE")
            self.assertLess(time.monotonic() - t0, 10)
            self.z.wait_for(lambda: self.isp.messages("provider1", "sjoerd") == [], 10,
                            "the ISP mailbox emptied")
        self.assertIn("new mail while idling", self.z.log())
        # a poll while idling leaves the account to its IDLE session
        r = self.ctl("fetch")
        self.assertIn(b"fetch done: status 1, 0 accounts, 0 delivered", r.stdout, self.z.log())
        self.assertIn("idling (IMAP IDLE), not polled", self.z.log())
        # renewed every 2 s (fetch_idle_renew): DONE, then IDLE again, same session, no search
        def counts():
            lines = self.imap_client_lines()
            return (sum(1 for line in lines if line.endswith(" IDLE")), lines.count("DONE"),
                    sum(1 for line in lines if " UID SEARCH " in line))
        idles0, dones0, searches0 = counts()
        time.sleep(5)
        idles, dones, searches = counts()
        self.assertGreaterEqual(idles - idles0, 2, self.imap_client_lines())
        self.assertGreaterEqual(dones - dones0, 2)
        self.assertEqual(searches, searches0, "a renewal fetches nothing")
        lines = self.imap_client_lines()
        self.assertEqual(sum(1 for line in lines if " LOGIN" in line or " AUTHENTICATE" in line),
                         1, "one session throughout")
        self.assertNotIn(" LOGOUT", " ".join(lines))
        # a message after the renewals still comes at once, and nothing came twice
        self.isp.inject("provider1", "sjoerd", message(4))
        self.z.wait_for(lambda: "test 4" in self.subjects("bouke"), 15, "message 4")
        time.sleep(0.5)
        self.assertEqual(self.subjects("bouke"), ["test 1", "test 2", "test 3", "test 4"])
        self.z.wait_for(lambda: self.isp.messages("provider1", "sjoerd") == [], 10, "emptied")
        # the record forgets what was expunged: nothing is left in it, nothing pending
        self.z.wait_for(lambda: self.uids() == [], 5, "the UID record pruned")
        self.assertNotIn("geheim2", self.z.log())
        # a reload ends the IDLE session (the rc may have changed); the next poll IDLEs anew
        import signal
        os.kill(self.z.inst.proc.pid, signal.SIGHUP)
        self.z.wait_log("IDLE session closed", timeout=10)
        self.isp.inject("provider1", "sjoerd", message(5))
        r = self.ctl("fetch")
        self.assertIn(b"fetch done: status 0, 1 accounts, 1 delivered", r.stdout, self.z.log())
        self.z.wait_for(lambda: self.z.log().count("idling (IMAP IDLE) for new mail") == 2, 10,
                        "idling again after the reload")
        self.z.wait_for(lambda: "test 5" in self.subjects("bouke"), 10, "message 5")
        time.sleep(0.3)
        self.assertEqual(self.subjects("bouke"), [f"test {i}" for i in range(1, 6)])

    def test_idle_link_cut_falls_back_to_the_schedule(self):
        self.start(seed_imap(extra="idle keep"), interval="4")
        self.isp.inject("provider1", "sjoerd", message(1))
        self.z.wait_log("idling (IMAP IDLE)", timeout=20)
        self.z.wait_for(lambda: self.subjects("bouke") == ["test 1"], 20, "the first poll")
        self.assertEqual(self.uids().__len__(), 1)
        # the line drops while idling: the session ends, the mail waits for the schedule
        self.isp.link_down()
        try:
            self.z.wait_log("IDLE session ended", timeout=10)
            self.isp.inject("provider1", "sjoerd", message(2))
            time.sleep(1)
        finally:
            self.isp.link_up()
        # the next scheduled poll connects again, fetches what is new (keep: test 1 stays on
        # the server, known by its UID), and idles again
        self.z.wait_for(lambda: "test 2" in self.subjects("bouke"), 20, "the next poll")
        self.z.wait_for(lambda: self.z.log().count("idling (IMAP IDLE) for new mail") >= 2, 20,
                        "idling again")
        self.isp.inject("provider1", "sjoerd", message(3))
        self.z.wait_for(lambda: "test 3" in self.subjects("bouke"), 15, "message 3 by IDLE")
        time.sleep(0.5)
        self.assertEqual(self.subjects("bouke"), ["test 1", "test 2", "test 3"])
        self.assertEqual(len(self.isp.messages("provider1", "sjoerd")), 3)
        self.assertEqual(sorted(self.uids()), sorted(str(m["uid"]) for m in
                                                     self.isp.messages("provider1", "sjoerd")))

    def test_idle_link_cut_during_a_wake_fetch_then_each_message_once(self):
        self.start(seed_imap(extra="idle"), interval="4")
        self.isp.inject("provider1", "sjoerd", message(1))
        self.z.wait_log("idling (IMAP IDLE)", timeout=20)
        self.z.wait_for(lambda: self.subjects("bouke") == ["test 1"], 20, "the first poll")
        # a slow line (80 kbit/s, it applies to the open session too) and new mail: a small
        # message, then one of 100 KB that takes seconds; the line drops during its FETCH
        self.isp.link_profile(bandwidth=80000)
        try:
            self.isp.inject("provider1", "sjoerd", message(2))
            self.isp.inject("provider1", "sjoerd", message(3, 100000))
            self.z.wait_log("new mail while idling: fetching", timeout=10)
            self.z.wait_for(lambda: "test 2" in self.subjects("bouke"), 15, "the small one")
            self.isp.link_down()
            self.z.wait_log("IDLE session ended", timeout=15)
        finally:
            self.isp.link_profile(clear=True)
            self.isp.link_up()
        self.assertNotIn("test 3", self.subjects("bouke"))
        # the big one is still there (the small one too, unless its EXPUNGE went through)
        left = self.isp.messages("provider1", "sjoerd")
        self.assertIn(len(left), (1, 2))
        self.assertIn("Subject: test 3", self.isp.read("provider1", "sjoerd", left[-1]["uid"]))
        # the next scheduled poll fetches what is missing, nothing twice, and idles again
        self.z.wait_for(lambda: "test 3" in self.subjects("bouke"), 30, "the big one")
        self.z.wait_for(lambda: self.isp.messages("provider1", "sjoerd") == [], 20, "emptied")
        self.z.wait_for(lambda: self.z.log().count("idling (IMAP IDLE) for new mail") >= 2, 20,
                        "idling again")
        time.sleep(0.5)
        self.assertEqual(self.subjects("bouke"), ["test 1", "test 2", "test 3"])
        self.z.wait_for(lambda: self.uids() == [], 10, "the UID record pruned")

    def test_idle_waits_while_zolder_defers_a_message(self):
        # a 4xx from zolder leaves a message for the next poll: an idling account would not
        # get one before new mail came, so it logs out instead and IDLEs once all went
        self.isp.inject("provider1", "sjoerd", "From: later@paprika\nSubject: later\n\nhold\n")
        self.isp.inject("provider1", "sjoerd", message(1))
        self.start(seed_imap(extra="idle"), conf={"access": "access"},
                   files={"access": "From:later@paprika ERROR:4.3.0:451 try again later\n"})
        r = self.ctl("fetch")
        self.assertIn(b"fetch done: status 0, 1 accounts, 1 delivered", r.stdout, self.z.log())
        self.assertIn("1 message left for the next poll: not idling this time", self.z.log())
        self.assertNotIn("idling (IMAP IDLE)", self.z.log())
        self.assertTrue(any(line.endswith(" LOGOUT") for line in self.imap_client_lines()))
        self.assertEqual(len(self.isp.messages("provider1", "sjoerd")), 1)
        # zolder takes it now: the next poll delivers it and idles
        self.z.inst.write("access", "")
        r = self.ctl("reload")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.ctl("fetch")
        self.assertIn(b"fetch done: status 0, 1 accounts, 1 delivered", r.stdout, self.z.log())
        self.z.wait_log("idling (IMAP IDLE)", timeout=10)
        self.z.wait_for(lambda: sorted(self.subjects("bouke")) == ["later", "test 1"], 20,
                        "both delivered")
        self.assertEqual(self.isp.messages("provider1", "sjoerd"), [])

    def test_idle_needs_one_folder_and_says_so_once(self):
        self.isp.inject("provider1", "sjoerd", message(1))
        self.start(seed_imap(extra="idle folders INBOX Archief"))
        self.ctl("fetch")
        self.ctl("fetch")
        self.z.wait_for(lambda: self.subjects("bouke") == ["test 1"], 20, "delivered")
        log = self.z.log()
        # told once (the INBOX pass; the Archief pass fails at SELECT before that point)
        self.assertEqual(log.count("IDLE watches one folder"), 1, log)
        self.assertNotIn("idling (IMAP IDLE)", log)
        self.assertIn(" LOGOUT", " ".join(self.imap_client_lines()))

    def test_readable_rc_is_refused_at_start(self):
        z = Zolderd(address=ZOLDER, port=PORT, name="fetch-zolderd-bad",
                    conf={"fetchmailrc": "fetchmailrc"}, files={"fetchmailrc": seed_pop()})
        self.addCleanup(z.inst.cleanup)
        os.chmod(z.inst.path("fetchmailrc"), 0o644)
        r = z.run_tool("zolderd", "-c", z.config, "-t")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"0700", r.stderr)


DOVECOT = "127.0.14.1"
DOVECOT_CONF = """base_dir = {dir}/run
state_dir = {dir}/state
log_path = /dev/stderr
info_log_path = /dev/stderr
listen = {addr}
protocols = pop3 imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = {uid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={dir}/home/%u
}}
mail_location = maildir:~/Maildir
pop3_uidl_format = %08Xu%08Xv
service imap-login {{
  inet_listener imap {{
    port = 10143
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 10110
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"""


@unittest.skipUnless(shutil.which("dovecot") and os.geteuid() == 0,
                     "needs Debian's dovecot and root")
class TestFetchDovecot(unittest.TestCase):
    """zolder-fetch against a private Debian dovecot on loopback (issue 6, section 6)."""

    def setUp(self):
        import pwd
        if not zolder_test.address_free(DOVECOT, 10110) or not zolder_test.address_free(DOVECOT, 10143):
            self.skipTest("dovecot test addresses in use")
        self.dv = zolder_test.Instance(name="fetch-dovecot")
        self.addCleanup(self.dv.cleanup)
        self.addCleanup(self.dv.stop)
        pw = pwd.getpwnam("zolder")
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        d = self.dv.dir
        os.chmod(d, 0o755)
        self.dv.write("dovecot.conf", DOVECOT_CONF.format(dir=d, addr=DOVECOT, uid=self.uid,
                                                          gid=self.gid))
        self.dv.write("passwd", "bench:{PLAIN}geheim3\n")
        self.maildir = self.dv.path("home", "bench", "Maildir")
        for sub in ("new", "cur", "tmp"):
            os.makedirs(os.path.join(self.maildir, sub), exist_ok=True)
        self.dv.start(["dovecot", "-F", "-c", self.dv.path("dovecot.conf")],
                      ready="starting up", timeout=30)
        self.z = Zolderd(address=ZOLDER, port=PORT, name="fetch-zolderd-dv")
        self.z.start()
        self.addCleanup(self.z.cleanup)

    def put(self, n):
        for i in range(n):
            with open(os.path.join(self.maildir, "new", f"1700000000.M{i}P1.test"), "w") as f:
                f.write(message(i).replace("\n", "\r\n"))
        for root, dirs, files in os.walk(self.dv.path("home")):
            for name in dirs + files:
                os.chown(os.path.join(root, name), self.uid, self.gid)
        os.chown(self.dv.path("home"), self.uid, self.gid)

    def run_fetch(self, proto, port, extra=""):
        rc = self.z.inst.write("dvrc", f"poll {DOVECOT} proto {proto} port {port} user bench "
                                       f"pass geheim3 is sjoerd {extra}\n", mode=0o600)
        return subprocess.run([zolder_test.binary("zolder-fetch"), "-v", "-f", rc, "-c",
                               self.z.config], capture_output=True, text=True, timeout=60)

    def subjects(self):
        return re.findall(r"^Subject: (.*)$", self.z.mbox("sjoerd"), re.M)

    def test_pop3_and_imap_from_dovecot(self):
        self.put(3)
        r = self.run_fetch("pop3", 10110, "keep")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.dv.log()[-2000:])
        self.z.wait_for(lambda: len(self.subjects()) == 3, 20, "3 from dovecot POP3")
        # keep: the IMAP poll of the same mailbox with its own record fetches them once more
        # (a different account key), then deletes them
        r = self.run_fetch("imap", 10143, "fetchall")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.dv.log()[-2000:])
        self.z.wait_for(lambda: len(self.subjects()) == 6, 20, "3 more from dovecot IMAP")
        left = [f for sub in ("new", "cur") for f in os.listdir(os.path.join(self.maildir, sub))]
        self.assertEqual(left, [])
        self.assertEqual(sorted(self.subjects()), sorted([f"test {i}" for i in range(3)] * 2))


if __name__ == "__main__":
    unittest.main()
