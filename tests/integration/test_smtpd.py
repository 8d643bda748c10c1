"""Integration tests: a real zolderd on its own loopback address, driven by real clients
(Python smtplib, raw sockets for exact bytes, swaks and curl when installed)."""

import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "helper"))
from zolderd_instance import SMTPTalk, Zolderd, crypt_hash, test_port  # noqa: E402

SEED_MESSAGE = (
    "From: Sjoerd <sjoerd@ecs.thuis>\r\n"
    "To: bouke@zolder.thuis\r\n"
    "Subject: Langs welke weg gaat mijn post?\r\n"
    "\r\n"
    "Hallo Bouke,\r\n"
    "From the attic: this line must be quoted in the mbox.\r\n"
    ".a line that starts with a dot\r\n"
)

OUTSIDER = "127.0.9.9"   # not in relay_from: any other network on the internet
LAN_HOST = "127.0.1.5"   # ecs.thuis, inside relay_from


class ZolderdCase(unittest.TestCase):
    port = 2525
    address = "127.0.1.20"
    tls = False
    conf = None

    def setUp(self):
        self.z = Zolderd(address=self.address, port=self.port, conf=self.conf, tls=self.tls,
                         files={"hosts": "127.0.1.5 ecs.thuis\n127.0.1.10 visser.thuis\n"})
        self.addCleanup(lambda: self.z.cleanup())  # the current instance, also if start fails
        self.z.start()

    def smtp(self, source=LAN_HOST):
        return smtplib.SMTP(self.z.address, self.z.port, source_address=(source, 0), timeout=10)

    def talk(self, source=LAN_HOST):
        t = SMTPTalk(self.z.connect(source))
        self.addCleanup(t.close)
        code, lines = t.reply()
        self.assertEqual(code, 220, lines)
        return t


class DeliveryTest(ZolderdCase):
    def test_seed_message_lands_in_mbox_with_received_line(self):
        with self.smtp() as s:
            s.ehlo("hccnet.nl")
            refused = s.sendmail("sjoerd@ecs.thuis", ["bouke@zolder.thuis"], SEED_MESSAGE)
            self.assertEqual(refused, {})
        self.z.wait_for(lambda: "Langs welke weg" in self.z.mbox("bouke"), what="delivery")
        box = self.z.mbox("bouke")
        self.assertTrue(box.startswith("From sjoerd@ecs.thuis "), box[:80])
        self.assertIn("\n>From the attic", box)
        self.assertIn("\n.a line that starts with a dot\n", box)
        self.assertNotIn("\r", box)
        self.assertTrue(box.endswith("\n\n"))
        received = re.search(r"^Received: from hccnet\.nl \(ecs\.thuis \[127\.0\.1\.5\]\)\n"
                             r"\tby zolder\.thuis \(zolder [0-9.]+\) with ESMTP id ([0-9A-Z]{16})\n"
                             r"\tfor <bouke@zolder\.thuis>; \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}$",
                             box, re.M)
        self.assertIsNotNone(received, box)
        qid = received.group(1)
        self.assertIn(f"Message-ID: <{qid}@zolder.thuis>", box)  # added for a trusted LAN client
        self.assertIn("Date: ", box)
        self.z.wait_for(lambda: not self.z.queue_ids(), what="queue file removal")
        # the log line follows the unlink and the folder's fsync (slow under valgrind)
        self.z.wait_log(f"{qid}: removed")
        self.assertIn(f"{qid}: to=<bouke@zolder.thuis>, relay=local, status=sent", self.z.log())

    def test_alias_root_goes_to_admin_and_unknown_user_is_refused(self):
        with self.smtp() as s:
            s.sendmail("sjoerd@zolder.thuis", ["root@zolder.thuis"], "Subject: to root\r\n\r\nx\r\n")
            with self.assertRaises(smtplib.SMTPRecipientsRefused) as ctx:
                s.sendmail("sjoerd@zolder.thuis", ["nobody@zolder.thuis"], "Subject: x\r\n\r\nx\r\n")
            code, text = ctx.exception.recipients["nobody@zolder.thuis"]
            self.assertEqual(code, 550)
            self.assertIn(b"5.1.1", text)
        self.z.wait_for(lambda: "to root" in self.z.mbox("admin"), what="alias delivery")
        self.assertIn("Delivered-To: root@zolder.thuis", self.z.mbox("admin"))

    def test_masquerading_rewrites_envelope_and_headers(self):
        self.z.stop()
        self.z.cleanup()
        self.z = Zolderd(address=self.address, port=self.port,
                         conf={"masquerade": "ecs.thuis visser.thuis -> mijn.domein.nl"})
        self.z.start()
        with self.smtp() as s:
            s.sendmail("sjoerd@ecs.thuis", ["bouke@zolder.thuis"],
                       "From: \"ecs.thuis user\" <sjoerd@ecs.thuis>\r\nSubject: m\r\n\r\nbody\r\n")
        self.z.wait_for(lambda: "Subject: m" in self.z.mbox("bouke"), what="delivery")
        box = self.z.mbox("bouke")
        self.assertTrue(box.startswith("From sjoerd@mijn.domein.nl "), box[:60])
        self.assertIn("From: \"ecs.thuis user\" <sjoerd@mijn.domein.nl>", box)

    def test_help_and_greeting_like_the_seed(self):
        t = self.talk()
        code, lines = t.cmd("HELP")
        self.assertEqual(code, 214)
        text = "\n".join(lines)
        for verb in "HELO EHLO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY EXPN VERB ETRN DSN AUTH STARTTLS".split():
            self.assertIn(verb, text)
        self.assertEqual(t.cmd("VRFY sjoerd")[0], 502)
        self.assertEqual(t.cmd("EXPN staff")[0], 502)
        self.assertEqual(t.cmd("QUIT")[0], 221)

    def test_bdat_chunking(self):
        t = self.talk()
        t.cmd("EHLO ecs.thuis")
        t.cmd("MAIL FROM:<sjoerd@zolder.thuis>")
        t.cmd("RCPT TO:<bouke@zolder.thuis>")
        part1 = b"Subject: chunked\r\n\r\nfirst "
        part2 = b"second\r\n"
        t.send(b"BDAT %d\r\n" % len(part1) + part1)
        self.assertEqual(t.reply()[0], 250)
        t.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
        code, lines = t.reply()
        self.assertEqual(code, 250, lines)
        self.z.wait_for(lambda: "first second" in self.z.mbox("bouke"), what="BDAT delivery")

    def test_pipelined_transaction(self):
        t = self.talk()
        t.cmd("EHLO ecs.thuis")
        t.send("MAIL FROM:<sjoerd@zolder.thuis>\r\nRCPT TO:<bouke@zolder.thuis>\r\n"
               "RCPT TO:<nobody@zolder.thuis>\r\nRCPT TO:<sjoerd@zolder.thuis>\r\nDATA\r\n")
        codes = [t.reply()[0] for _ in range(5)]
        self.assertEqual(codes, [250, 250, 550, 250, 354])
        t.send("Subject: piped\r\n\r\nok\r\n.\r\nQUIT\r\n")
        self.assertEqual(t.reply()[0], 250)
        self.assertEqual(t.reply()[0], 221)
        for user in ("bouke", "sjoerd"):
            self.z.wait_for(lambda u=user: "Subject: piped" in self.z.mbox(u), what=f"delivery to {user}")
        self.assertIn("Received: from ecs.thuis", self.z.mbox("bouke"))
        self.assertNotIn("\tfor <", self.z.mbox("bouke").split("Subject: piped")[0])


class RelayControlTest(ZolderdCase):
    # Routing through a local domain: refused from anyone, LAN included (never let them leave).
    LOCAL_ROUTING_TRICKS = [
        "user%other.example@zolder.thuis",
        "other.example!user@zolder.thuis",
        "\"user@other.example\"@zolder.thuis",
        "\"user%other.example\"@zolder.thuis",
        "user%other.example@[127.0.1.20]",
        "other.example!user%zolder.thuis@zolder.thuis",
        "user%other.example@zolder.thuis.",
        "@zolder.thuis:user%other.example@zolder.thuis",
    ]
    # Honest remote destinations in disguise (route ignored, trailing dot, literal): relay
    # rules apply to the real destination, so only the LAN may send there.
    REMOTE_TRICKS = [
        "@zolder.thuis:user@other.example",
        "@zolder.thuis,@relay.example:user@other.example",
        "user@other.example.",
        "user@[1.2.3.4]",
        "user@[IPv6:2001:db8::1]",
    ]

    def rcpt_reply(self, source, rcpt):
        t = self.talk(source)
        t.cmd("EHLO outside.example")
        self.assertEqual(t.cmd("MAIL FROM:<someone@outside.example>")[0], 250)
        code, lines = t.cmd(f"RCPT TO:<{rcpt}>")
        t.cmd("QUIT")
        t.close()
        return code, " ".join(lines)

    def test_outsider_cannot_relay(self):
        code, text = self.rcpt_reply(OUTSIDER, "victim@other.example")
        self.assertEqual(code, 554)
        self.assertIn("5.7.1 <victim@other.example>: Relay access denied", text)
        self.assertIn("Relay access denied", self.z.log())

    def test_local_routing_tricks_are_refused_from_anyone(self):
        for source in (OUTSIDER, LAN_HOST):
            for trick in self.LOCAL_ROUTING_TRICKS:
                with self.subTest(source=source, rcpt=trick):
                    code, text = self.rcpt_reply(source, trick)
                    self.assertEqual(code // 100, 5, f"{trick} accepted: {text}")

    def test_remote_tricks_follow_relay_rules(self):
        for trick in self.REMOTE_TRICKS:
            with self.subTest(rcpt=trick):
                code, text = self.rcpt_reply(OUTSIDER, trick)
                self.assertEqual(code, 554, text)
                self.assertIn("Relay access denied", text)
                code, text = self.rcpt_reply(LAN_HOST, trick)
                self.assertEqual(code, 250, text)
        self.assertEqual(self.z.queue_ids(), [])  # nothing was sent: no DATA

    def test_unqualified_and_own_literal_are_local(self):
        for rcpt in ("bouke", "bouke@[127.0.1.20]", "bouke@ZOLDER.THUIS."):
            with self.subTest(rcpt=rcpt):
                code, text = self.rcpt_reply(OUTSIDER, rcpt)
                self.assertEqual(code, 250, text)
        code, text = self.rcpt_reply(OUTSIDER, "nobody")
        self.assertEqual(code, 550, text)

    def test_lan_may_relay_and_remote_mail_waits_visibly(self):
        with self.smtp(LAN_HOST) as s:
            s.sendmail("sjoerd@zolder.thuis", ["jan@paprika"], "Subject: out\r\n\r\nx\r\n")
        self.z.wait_log("to=<jan@paprika>, relay=none, delay=")
        self.assertRegex(self.z.log(), r"to=<jan@paprika>, relay=none, delay=[0-9.]+, dsn=4\.4\.3, "
                                       r"status=deferred \(Host or domain name not found: paprika")
        self.assertEqual(len(self.z.queue_ids()), 1)

    def test_localhost_may_relay(self):
        with self.smtp("127.0.0.1") as s:
            s.sendmail("cron@zolder.thuis", ["jan@paprika"], "Subject: cron\r\n\r\nx\r\n")
        self.assertEqual(len(self.z.queue_ids()), 1)


class SmugglingTest(ZolderdCase):
    def open_data(self):
        t = self.talk()
        t.cmd("EHLO ecs.thuis")
        t.cmd("MAIL FROM:<sjoerd@zolder.thuis>")
        t.cmd("RCPT TO:<bouke@zolder.thuis>")
        self.assertEqual(t.cmd("DATA")[0], 354)
        return t

    def test_fake_terminators_never_end_data(self):
        for fake in (b"\n.\n", b"\n.\r\n", b"\r\n.\n"):
            with self.subTest(fake=fake):
                t = self.open_data()
                smuggled = (b"Subject: one\r\n\r\nbody" + fake +
                            b"MAIL FROM:<evil@other.example>\r\nRCPT TO:<bouke@zolder.thuis>\r\n"
                            b"DATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n")
                t.send(smuggled)
                code, lines = t.reply()
                self.assertEqual(code, 521, lines)
                self.assertTrue(t.closed())
                t.close()
        self.assertNotIn("smuggled", self.z.mbox("bouke"))
        self.assertEqual(self.z.queue_ids(), [])

    def test_bare_cr_is_refused(self):
        t = self.open_data()
        t.send(b"Subject: x\r\n\r\nbad\rline\r\n.\r\n")
        self.assertEqual(t.reply()[0], 521)
        self.assertTrue(t.closed())

    def test_long_line_is_refused(self):
        t = self.open_data()
        t.send(b"Subject: x\r\n\r\n" + b"a" * 1200 + b"\r\n.\r\n")
        code, lines = t.reply()
        self.assertEqual(code, 500, lines)
        self.assertEqual(t.cmd("NOOP")[0], 250)  # session goes on


class LimitsTest(ZolderdCase):
    conf = {"message_size_limit": "4096", "recipient_limit": "3", "smtpd_error_limit": "5"}

    def test_size_announced_and_enforced(self):
        t = self.talk()
        code, lines = t.cmd("EHLO ecs.thuis")
        self.assertIn("250-SIZE 4096", lines)
        self.assertEqual(t.cmd("MAIL FROM:<a@zolder.thuis> SIZE=5000")[0], 552)
        self.assertEqual(t.cmd("MAIL FROM:<a@zolder.thuis> SIZE=100")[0], 250)
        self.assertEqual(t.cmd("RCPT TO:<bouke@zolder.thuis>")[0], 250)
        self.assertEqual(t.cmd("DATA")[0], 354)
        t.send(b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 100 + b".\r\n")
        self.assertEqual(t.reply()[0], 552)
        self.assertEqual(self.z.queue_ids(), [])

    def test_recipient_limit(self):
        t = self.talk()
        t.cmd("EHLO ecs.thuis")
        t.cmd("MAIL FROM:<a@zolder.thuis>")
        codes = [t.cmd(f"RCPT TO:<{u}@zolder.thuis>")[0] for u in ("bouke", "sjoerd", "admin", "root")]
        self.assertEqual(codes, [250, 250, 250, 452])

    def test_error_limit_disconnects(self):
        t = self.talk()
        for _ in range(4):
            self.assertEqual(t.cmd("BOGUS")[0], 500)
        t.send("BOGUS\r\n")
        code, lines = t.reply()
        self.assertEqual(code, 500)
        self.assertEqual(t.reply()[0], 421)
        self.assertTrue(t.closed())

    def test_line_too_long_in_commands(self):
        t = self.talk()
        self.assertEqual(t.cmd("NOOP " + "x" * 2000)[0], 500)
        self.assertEqual(t.cmd("NOOP")[0], 250)


class TlsAuthTest(ZolderdCase):
    tls = True

    def setUp(self):
        super().setUp()

    def make_users(self):
        self.z.stop()
        self.z.cleanup()
        self.z = Zolderd(address=self.address, port=self.port, tls=True,
                         users={"sjoerd": crypt_hash("geheim"), "bouke": "*", "admin": "*"},
                         conf={"submission": f"{self.address}:{test_port(2587)}", "outbound_allow": "sjoerd"})
        self.z.start()

    def test_starttls_then_auth_plain_and_login(self):
        self.make_users()
        ctx = ssl.create_default_context(cafile=os.path.join(
            os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "fixtures", "certs", "ca.pem"))
        ctx.check_hostname = False
        with smtplib.SMTP(self.z.address, self.z.port, source_address=(OUTSIDER, 0), timeout=10) as s:
            s.ehlo("far.away")
            self.assertTrue(s.has_extn("starttls"))
            self.assertFalse(s.has_extn("auth"))  # never before TLS from a non-local client
            s.starttls(context=ctx)
            s.ehlo("far.away")
            self.assertIn("PLAIN", s.esmtp_features["auth"])
            with self.assertRaises(smtplib.SMTPAuthenticationError):
                s.login("sjoerd", "wrong")
            s.login("sjoerd", "geheim")
            s.sendmail("sjoerd@zolder.thuis", ["jan@paprika"], "Subject: from afar\r\n\r\nx\r\n")
            # The 221 must reach the client over TLS before the connection closes.
            self.assertEqual(s.docmd("QUIT")[0], 221)
            s.close()
        self.z.wait_log("authenticated as sjoerd")
        self.assertEqual(len(self.z.queue_ids()), 1)
        # AUTH LOGIN on submission, which requires authentication before MAIL.
        with smtplib.SMTP(self.address, test_port(2587), source_address=(LAN_HOST, 0), timeout=10) as s:
            s.starttls(context=ctx)
            s.ehlo("ecs.thuis")
            code, _ = s.docmd("MAIL FROM:<bouke@zolder.thuis>")
            self.assertEqual(code, 530)
            s.rset()
            s.login("sjoerd", "geheim")  # smtplib prefers PLAIN; force LOGIN below
        with smtplib.SMTP(self.address, test_port(2587), source_address=(LAN_HOST, 0), timeout=10) as s:
            s.starttls(context=ctx)
            s.ehlo("ecs.thuis")
            s.user, s.password = "sjoerd", "geheim"
            code, _ = s.auth("LOGIN", s.auth_login)
            self.assertEqual(code, 235)
        box_before = len(self.z.queue_ids())
        self.assertEqual(box_before, 1)

    def test_pipelined_bytes_after_starttls_are_discarded(self):
        t = self.talk(OUTSIDER)
        t.cmd("EHLO far.away")
        t.send("STARTTLS\r\nRSET\r\nMAIL FROM:<injected@evil.example>\r\n")
        code, _ = t.reply()
        self.assertEqual(code, 220)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        tls = ctx.wrap_socket(t.sock, server_hostname="zolder.thuis")
        tt = SMTPTalk(tls)
        # Had the injected commands been kept, their replies would come now.
        code, lines = tt.cmd("EHLO far.away")
        self.assertEqual(code, 250, lines)
        self.assertEqual(tt.cmd("RCPT TO:<bouke@zolder.thuis>")[0], 503)  # no MAIL survived
        self.z.wait_log("discarded")

    def test_outbound_policy_per_user(self):
        self.make_users()
        with smtplib.SMTP(self.z.address, self.z.port, source_address=(LAN_HOST, 0), timeout=10) as s:
            s.ehlo("ecs.thuis")
            with self.assertRaises(smtplib.SMTPRecipientsRefused) as ctx:
                s.sendmail("bouke@zolder.thuis", ["jan@paprika"], "Subject: no\r\n\r\nx\r\n")
            code, text = ctx.exception.recipients["jan@paprika"]
            self.assertEqual(code, 550)
            self.assertIn(b"may not send mail outside the LAN", text)
            # ...but bouke may still mail inside the LAN.
            s.sendmail("bouke@zolder.thuis", ["sjoerd@zolder.thuis"], "Subject: lan\r\n\r\nx\r\n")
            s.sendmail("sjoerd@zolder.thuis", ["jan@paprika"], "Subject: yes\r\n\r\nx\r\n")


class HostsAllowTest(unittest.TestCase):
    def test_denied_client_and_loud_localhost_warning(self):
        z = Zolderd(port=2526, conf={"hosts_allow": "hosts.allow", "hosts_deny": "hosts.deny"},
                    files={"hosts.allow": "smtpd: 127.0.1.\n", "hosts.deny": "ALL: ALL\n"})
        try:
            z.start()
            self.assertIn("refuse 127.0.0.1 for smtpd", z.log())
            s = SMTPTalk(z.connect(OUTSIDER))
            code, lines = s.reply()
            self.assertEqual(code, 554, lines)
            s.close()
            s = SMTPTalk(z.connect(LAN_HOST))
            self.assertEqual(s.reply()[0], 220)
            s.close()
        finally:
            z.cleanup()


class ConfigTest(unittest.TestCase):
    def test_check_mode_and_bad_reload(self):
        z = Zolderd(port=2527)
        try:
            ok = z.run_tool("zolderd", "-c", z.config, "-t")
            self.assertEqual(ok.returncode, 0, ok.stderr)
            z.inst.write("bad.conf", "hostname = zolder.thuis\nlisten = nowhere:25\n")
            bad = z.run_tool("zolderd", "-c", z.inst.path("bad.conf"), "-t")
            self.assertEqual(bad.returncode, 1)
            self.assertIn("bad.conf:2: listen: expected ADDRESS[:PORT]", bad.stderr.decode())
            z.start()
            with open(z.config, "a") as f:
                f.write("this is not a key\n")
            z.inst.signal(1)  # SIGHUP
            z.wait_log("reload refused, keeping the running config")
            s = SMTPTalk(z.connect())
            self.assertEqual(s.reply()[0], 220)
            s.close()
        finally:
            z.cleanup()


@unittest.skipUnless(shutil.which("swaks"), "swaks not installed")
class SwaksCurlTest(ZolderdCase):
    def test_swaks_and_curl_deliver(self):
        r = subprocess.run(["swaks", "--server", f"{self.z.address}:{self.z.port}", "--local-interface", LAN_HOST,
                            "--from", "sjoerd@zolder.thuis", "--to", "bouke@zolder.thuis",
                            "--header", "Subject: via swaks", "--pipeline"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        msg = self.z.inst.write("curl.eml", "Subject: via curl\r\n\r\nhello\r\n")
        r = subprocess.run(["curl", "-sS", f"smtp://{self.z.address}:{self.z.port}", "--interface", LAN_HOST,
                            "--mail-from", "sjoerd@zolder.thuis", "--mail-rcpt", "bouke@zolder.thuis",
                            "--upload-file", msg], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.z.wait_for(lambda: "via swaks" in self.z.mbox("bouke") and "via curl" in self.z.mbox("bouke"),
                        what="swaks and curl deliveries")


if __name__ == "__main__":
    unittest.main()
