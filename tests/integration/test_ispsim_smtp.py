"""ispsim's SMTP hosts against real clients (smtplib, curl) and raw sockets for the strict parts."""

import shutil
import smtplib
import socket
import subprocess
import time
import unittest

from ispsim_common import CUSTOMER, DEMON_MX, OUTSIDER, PAPRIKA_MX, SMARTHOST, IspsimCase

MSG = "From: sjoerd@zolder.thuis\r\nTo: jan@paprika\r\nSubject: hallo\r\n\r\nDag Jan.\r\n"


class Raw:
    """A byte-exact SMTP client: sends what it is told, reads whole replies."""

    def __init__(self, host, source=CUSTOMER, timeout=5.0):
        self.s = socket.create_connection((host, 25), timeout=timeout, source_address=(source, 0))
        self.f = self.s.makefile("rb")

    def reply(self):
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                return "EOF" if not lines else "\n".join(lines)
            lines.append(line.decode("latin-1").rstrip("\r\n"))
            if len(line) < 4 or line[3:4] != b"-":
                return "\n".join(lines)

    def send(self, data):
        self.s.sendall(data)

    def cmd(self, data):
        self.send(data)
        return self.reply()

    def close(self):
        self.f.close()
        self.s.close()


class TestSmtp(IspsimCase):
    def open_data(self, host=PAPRIKA_MX, mail=b"MAIL FROM:<sjoerd@zolder.thuis>\r\n"):
        c = Raw(host)
        self.assertTrue(c.reply().startswith("220 "))
        self.assertIn("250 ENHANCEDSTATUSCODES", c.cmd(b"EHLO zolder.thuis\r\n"))
        self.assertEqual(c.cmd(mail)[:3], "250")
        self.assertEqual(c.cmd(b"RCPT TO:<jan@paprika>\r\n")[:3], "250")
        self.assertEqual(c.cmd(b"DATA\r\n")[:3], "354")
        return c

    def test_relay_through_smarthost_to_mx(self):
        with smtplib.SMTP(SMARTHOST, 25, source_address=(CUSTOMER, 0), timeout=5) as s:
            s.ehlo("zolder.thuis")
            refused = s.sendmail("sjoerd@zolder.thuis",
                                 ["jan@paprika", "sjoerd@sjoerd-visser.spam.demon.nl"], MSG)
        self.assertEqual(refused, {})
        self.assertEqual(self.isp.wait_relayed(), [])
        msgs = self.isp.messages("paprika", "jan")
        self.assertEqual(len(msgs), 1)
        text = self.isp.read("paprika", "jan", msgs[0]["uid"])
        hops = [l for l in text.split("\r\n") if l.startswith("Received:")]
        self.assertEqual(len(hops), 3)
        self.assertTrue(hops[0].startswith("Received: from mx.paprika by paprika for <jan@paprika> id "))
        self.assertEqual(hops[1], "Received: from [213.51.144.25] (helo=smtp.hccnet.nl)")
        self.assertEqual(hops[2], "Received: from [62.251.70.10] (helo=zolder.thuis)")
        self.assertIn("\tby smtp.hccnet.nl with esmtp (ispsim)\r\n\tid ", text)
        self.assertIn("\tfor <jan@paprika>; ", text)
        self.assertTrue(text.endswith("Subject: hallo\r\n\r\nDag Jan.\r\n"))
        self.assertEqual(len(self.isp.messages("mailstore", "sjoerd")), 1)
        deliveries = self.isp.records("delivery")
        self.assertEqual({d["rcpt"] for d in deliveries},
                         {"jan@paprika", "sjoerd@sjoerd-visser.spam.demon.nl"})
        self.assertTrue(all(d["status"] == "stored" for d in deliveries))
        self.assertEqual(self.isp.violations(), [])
        transcript = [(r["dir"], r["line"]) for r in self.isp.records("smtp")]
        self.assertIn(("c", "mail FROM:<sjoerd@zolder.thuis> size=72"), transcript)
        self.assertEqual(transcript[0][0], "s")
        self.assertTrue(transcript[0][1].startswith("220 smtp.hccnet.nl ESMTP"))
        # relayed over SMTP, one session per recipient, from the smarthost's address
        relays = self.isp.records("relay")
        self.assertEqual(sorted((r["mx"], r["status"]) for r in relays),
                         [("mx.paprika", "relayed"), ("relay-14.mail.nl.demon.net", "relayed")])
        self.assertTrue(all(r["reply"].startswith("250 2.0.0 Ok: queued as ") for r in relays))
        mx_peers = {r["peer"].split(":")[0] for r in self.isp.records("smtp")
                    if r["host"] == "mx.paprika"}
        self.assertEqual(mx_peers, {SMARTHOST})
        client = [r["line"] for r in self.isp.records("relay-smtp")
                  if r["mx"] == "mx.paprika" and r["dir"] == "c"]
        self.assertEqual(client, ["EHLO smtp.hccnet.nl", "MAIL FROM:<sjoerd@zolder.thuis>",
                                  "RCPT TO:<jan@paprika>", "DATA", "(message and final dot)",
                                  "QUIT"])

    def test_relay_defers_retries_and_bounces(self):
        # 451 at the MX: deferred; queue.flush retries now; the second attempt goes through
        self.isp.smtp_fault("rcpt", host="mx.paprika", rcpt="jan@paprika",
                            reply="451 4.3.0 try again later")
        with smtplib.SMTP(SMARTHOST, 25, source_address=(CUSTOMER, 0), timeout=5) as s:
            self.assertEqual(s.sendmail("a@zolder.thuis", ["jan@paprika", "nobody@paprika"],
                                        MSG + "..dot\r\n.\r\nx\r\n"), {})
        q = self.isp.wait_relayed()
        self.assertEqual([(j["rcpt"], j["attempts"]) for j in q], [("jan@paprika", 1)])
        self.assertEqual(sorted((r["rcpt"], r["status"]) for r in self.isp.records("relay")),
                         [("a@zolder.thuis", "no-route"), ("jan@paprika", "deferred"),
                          ("nobody@paprika", "bounced")])
        self.isp.clear_faults()
        self.assertEqual(self.isp.flush(), 1)
        deadline = time.monotonic() + 5
        while self.isp.queue() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(self.isp.queue(), [])
        self.assertEqual(self.isp.records("relay")[-1]["status"], "relayed")
        self.assertEqual(self.isp.records("relay")[-1]["attempt"], 2)
        # dot-stuffing survived the hop (smtplib stuffed, the MX un-stuffed what ispsim stuffed)
        self.assertTrue(self.isp.read("paprika", "jan", 1).endswith("Dag Jan.\r\n..dot\r\n.\r\nx\r\n"))
        # RFC 1047: the MX hangs up after storing; the smarthost retries and duplicates
        self.isp.reset()
        self.isp.smtp_fault("dot", host="mx.paprika", message=1, hangup=True)
        with smtplib.SMTP(SMARTHOST, 25, source_address=(CUSTOMER, 0), timeout=5) as s:
            s.sendmail("a@zolder.thuis", ["jan@paprika"], MSG)
        self.isp.wait_relayed()
        self.assertEqual(self.isp.records("relay")[-1]["status"], "deferred")
        self.isp.flush()
        deadline = time.monotonic() + 5
        while self.isp.queue() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(len(self.isp.messages("paprika", "jan")), 2)
        self.assertEqual(self.isp.violations(), [])

    def test_smarthost_refuses_non_customers(self):
        with smtplib.SMTP(SMARTHOST, 25, source_address=(OUTSIDER, 0), timeout=5) as s:
            s.ehlo("zolder.thuis")
            s.mail("x@zolder.thuis")
            code, text = s.rcpt("jan@paprika")
        self.assertEqual(code, 554)
        self.assertEqual(text, b"5.7.1 <jan@paprika>: Relay access denied")

    def test_smarthost_records_unroutable(self):
        with smtplib.SMTP(SMARTHOST, 25, source_address=(CUSTOMER, 0), timeout=5) as s:
            s.sendmail("a@zolder.thuis", ["someone@example.com"], MSG)
        self.assertEqual(self.isp.records("delivery")[0]["status"], "no-route")

    def test_mx_accepts_only_its_domains_and_users(self):
        with smtplib.SMTP(DEMON_MX, 25, source_address=(CUSTOMER, 0), timeout=5) as s:
            s.ehlo("zolder.thuis")
            s.mail("x@zolder.thuis")
            self.assertEqual(s.rcpt("nobody@demon.nl")[0], 550)
            self.assertEqual(s.rcpt("jan@paprika")[0], 554)
            self.assertEqual(s.rcpt("sjoerd@demon.nl")[0], 250)
            self.assertEqual(s.data(MSG)[0], 250)
        text = self.isp.read("mailstore", "sjoerd", 1)
        self.assertIn("Received: from [62.251.70.10] (helo=zolder.thuis)\r\n\tby relay-14.mail.nl.demon.net", text)

    @unittest.skipUnless(shutil.which("curl"), "curl not installed")
    def test_curl_sends(self):
        r = subprocess.run(["curl", "-sS", "--interface", CUSTOMER, f"smtp://{SMARTHOST}:25",
                            "--mail-from", "sjoerd@zolder.thuis", "--mail-rcpt", "truus@komkommer",
                            "-T", "-"], input=MSG.encode(), capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.isp.wait_relayed()
        self.assertEqual(len(self.isp.messages("komkommer", "truus")), 1)
        self.assertEqual(self.isp.violations(), [])

    def test_strict_data(self):
        cases = [
            (b"MAIL FROM:<a@zolder.thuis>\r\n", b"one\ntwo\r\n.\r\n", "554 5.6.0", "bare-lf"),
            (b"MAIL FROM:<a@zolder.thuis>\r\n", b"one\rtwo\r\n.\r\n", "554 5.6.0", "bare-cr"),
            (b"MAIL FROM:<a@zolder.thuis>\r\n", b"x" * 1001 + b"\r\n.\r\n", "554 5.6.0", "line-too-long"),
            (b"MAIL FROM:<a@zolder.thuis>\r\n", b".oops\r\n.\r\n", "554 5.6.0", "bad-dot-stuffing"),
            (b"MAIL FROM:<a@zolder.thuis>\r\n", "café\r\n.\r\n".encode(), "554 5.6.1",
             "8bit-without-8bitmime"),
        ]
        for mail, body, reply, kind in cases:
            with self.subTest(kind=kind):
                self.isp.reset()
                c = self.open_data(mail=mail)
                self.assertTrue(c.cmd(body).startswith(reply))
                self.assertEqual(c.cmd(b"QUIT\r\n")[:3], "221")
                c.close()
                self.assertEqual(self.isp.violations(), [kind])
                self.assertEqual(self.isp.messages("paprika", "jan"), [])
        self.isp.reset()
        c = self.open_data(mail=b"MAIL FROM:<a@zolder.thuis> BODY=8BITMIME\r\n")
        self.assertEqual(c.cmd("café\r\n..dot\r\n.\r\n".encode())[:3], "250")
        c.close()
        self.assertTrue(self.isp.read("paprika", "jan", 1).endswith("café\r\n.dot\r\n"))

    def test_sequence_and_pipelining(self):
        c = Raw(PAPRIKA_MX)
        c.reply()
        self.assertTrue(c.cmd(b"MAIL FROM:<a@b.test>\r\n").startswith("503 5.5.1"))
        c.cmd(b"EHLO zolder.thuis\r\n")
        self.assertTrue(c.cmd(b"DATA\r\n").startswith("503 5.5.1"))
        c.send(b"MAIL FROM:<a@b.test>\r\nRCPT TO:<jan@paprika>\r\nDATA\r\n")
        self.assertEqual(c.reply()[:3], "250")
        self.assertEqual(c.reply()[:3], "250")
        self.assertEqual(c.reply()[:3], "354")
        c.send(b"x\r\n.\r\nQUIT\r\n")
        self.assertEqual(c.reply()[:3], "250")
        self.assertEqual(c.reply()[:3], "221")
        c.close()
        self.assertEqual(self.isp.violations(), ["sequence", "sequence"])
        self.isp.reset()
        c = Raw(PAPRIKA_MX)
        c.reply()
        c.cmd(b"EHLO zolder.thuis\r\n")
        c.cmd(b"MAIL FROM:<a@b.test>\r\n")
        c.cmd(b"RCPT TO:<jan@paprika>\r\n")
        c.send(b"DATA\r\nSubject: too soon\r\n")
        self.assertTrue(c.reply().startswith("554 5.5.0"))
        self.assertEqual(c.reply(), "EOF")
        c.close()
        self.assertEqual(self.isp.violations(), ["pipelining"])

    def test_eof_in_data_and_no_quit(self):
        c = self.open_data()
        c.send(b"half\r\n")
        c.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not self.isp.violations():
            time.sleep(0.02)
        self.assertEqual(self.isp.violations(), ["eof-in-data"])

    def test_scripted_reply_for_nth_message_and_recipient(self):
        self.isp.smtp_fault("dot", host="mx.paprika", message=2, reply="451 4.3.0 try again later")
        self.isp.smtp_fault("rcpt", rcpt="piet@paprika", reply="552 5.2.2 mailbox full")
        with smtplib.SMTP(PAPRIKA_MX, 25, source_address=(CUSTOMER, 0), timeout=5) as s:
            self.assertEqual(s.sendmail("a@zolder.thuis", ["jan@paprika"], MSG), {})
            with self.assertRaises(smtplib.SMTPDataError) as e:
                s.sendmail("a@zolder.thuis", ["jan@paprika"], MSG)
            self.assertEqual(e.exception.smtp_code, 451)
            self.assertEqual(s.sendmail("a@zolder.thuis", ["jan@paprika"], MSG), {})
            refused = s.sendmail("a@zolder.thuis", ["piet@paprika", "jan@paprika"], MSG)
            self.assertEqual(refused, {"piet@paprika": (552, b"5.2.2 mailbox full")})
        self.assertEqual(len(self.isp.messages("paprika", "jan")), 3)

    def test_greeting_delay_and_421(self):
        self.isp.smtp_fault("greeting", host="mx.appel", delay_ms=500)
        t0 = time.monotonic()
        with smtplib.SMTP("127.0.8.25", 25, source_address=(CUSTOMER, 0), timeout=5) as s:
            self.assertGreater(time.monotonic() - t0, 0.35)
            s.noop()
        self.isp.clear_faults()
        self.isp.smtp_fault("greeting", reply="421 4.3.2 shutting down")
        with self.assertRaises(smtplib.SMTPConnectError):
            smtplib.SMTP(PAPRIKA_MX, 25, source_address=(CUSTOMER, 0), timeout=5)

    def test_hangup_after_data(self):
        self.isp.smtp_fault("dot", hangup=True)
        c = self.open_data()
        c.send(b"Subject: lost reply\r\n\r\nbody\r\n.\r\n")
        self.assertEqual(c.reply(), "EOF")
        c.close()
        # RFC 1047: the message was taken although the client never heard so.
        self.assertEqual(len(self.isp.messages("paprika", "jan")), 1)

    def test_relay_meets_dns_faults(self):
        self.isp.dns_fault("paprika", "servfail")
        self.isp.dns_fault("mx.appel", "nxdomain")
        with smtplib.SMTP(SMARTHOST, 25, source_address=(CUSTOMER, 0), timeout=5) as s:
            s.sendmail("a@zolder.thuis", ["jan@paprika", "mac@appel"], MSG)
        self.isp.wait_relayed()
        got = {r["rcpt"]: (r["status"], r["reply"]) for r in self.isp.records("relay")
               if r["rcpt"] != "a@zolder.thuis"}
        self.assertEqual(got["jan@paprika"],
                         ("deferred", "451 4.4.3 <jan@paprika>: MX lookup for paprika failed (SERVFAIL)"))
        self.assertEqual(got["mac@appel"],
                         ("bounced", "550 5.1.2 <mac@appel>: address of mx.appel: Host not found"))
        self.isp.clear_faults("dns")
        self.isp.flush()
        deadline = time.monotonic() + 5
        while self.isp.queue() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(len(self.isp.messages("paprika", "jan")), 1)
        self.assertEqual(self.isp.messages("appel", "mac"), [])

    def test_bounce_sends_a_dsn_to_the_isp_mailbox(self):
        sender = "sjoerd@sjoerd-visser.spam.demon.nl"
        with smtplib.SMTP(SMARTHOST, 25, source_address=(CUSTOMER, 0), timeout=5) as s:
            self.assertEqual(s.sendmail(sender, ["nobody@paprika", "x@example.com"], MSG), {})
        deadline = time.monotonic() + 10
        while len(self.isp.messages("mailstore", "sjoerd")) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(self.isp.wait_relayed(), [])
        dsns = [self.isp.read("mailstore", "sjoerd", m["uid"])
                for m in self.isp.messages("mailstore", "sjoerd")]
        self.assertEqual(len(dsns), 2)
        by_rcpt = {("nobody@paprika" if "nobody@paprika" in d else "x@example.com"): d for d in dsns}
        d = by_rcpt["nobody@paprika"]
        self.assertIn("From: Mail Delivery System <MAILER-DAEMON@smtp.hccnet.nl>\r\n", d)
        self.assertIn("Content-Type: multipart/report; report-type=delivery-status;", d)
        self.assertIn("Final-Recipient: rfc822; nobody@paprika\r\nAction: failed\r\n"
                      "Status: 5.1.1\r\n", d)
        self.assertIn("Remote-MTA: dns; mx.paprika\r\n", d)
        self.assertIn("Diagnostic-Code: smtp; 550 5.1.1 <nobody@paprika>: Recipient address "
                      "rejected: User unknown", d)
        self.assertIn("Content-Type: text/rfc822-headers\r\n\r\nReceived: from [62.251.70.10]", d)
        self.assertIn("Status: 5.4.4\r\n", by_rcpt["x@example.com"])
        # the DSN went with the null sender; no DSN about a DSN
        mails = [r["line"] for r in self.isp.records("relay-smtp")
                 if r["dir"] == "c" and r["line"].startswith("MAIL")]
        self.assertEqual(mails.count("MAIL FROM:<>"), 2)
        self.assertEqual(self.isp.violations(), [])

    def test_quota_full_mailbox(self):
        self.isp.inject("paprika", "jan", "Subject: old\n\n" + "x" * 500 + "\n")
        used = self.isp.mailboxes("paprika")[0]["bytes"]
        self.assertGreater(used, 500)
        # full: refused at RCPT, 552 by default, 452 when the world (or control) says so
        st = self.isp.call("mailstore.quota", store="paprika", user="jan", bytes=used)
        self.assertEqual((st["bytes"], st["quota"], st["code"]), (used, used, 552))
        with smtplib.SMTP(PAPRIKA_MX, 25, source_address=(CUSTOMER, 0), timeout=5) as s:
            s.ehlo("zolder.thuis")
            s.mail("a@zolder.thuis")
            self.assertEqual(s.rcpt("jan@paprika"),
                             (552, b"5.2.2 <jan@paprika>: Mailbox full, quota exceeded"))
            self.assertEqual(s.rcpt("piet@paprika")[0], 250)
            s.rset()
            self.isp.call("mailstore.quota", store="paprika", user="jan", code=452)
            s.mail("a@zolder.thuis")
            self.assertEqual(s.rcpt("jan@paprika")[0], 452)
            s.rset()
            # room for a small message only: a big one is refused after the dot, for all
            self.isp.call("mailstore.quota", store="paprika", user="jan", bytes=used + 200,
                          code=552)
            with self.assertRaises(smtplib.SMTPDataError) as e:
                s.sendmail("a@zolder.thuis", ["piet@paprika", "jan@paprika"], MSG + "y" * 300)
            self.assertEqual(e.exception.smtp_code, 552)
            self.assertEqual(s.sendmail("a@zolder.thuis", ["jan@paprika"], MSG), {})
        self.assertEqual(len(self.isp.messages("paprika", "jan")), 2)
        self.assertEqual(self.isp.messages("paprika", "piet"), [])
        # through the smarthost the hand-off finds the mailbox full: recorded, not stored
        with smtplib.SMTP(SMARTHOST, 25, source_address=(CUSTOMER, 0), timeout=5) as s:
            self.assertEqual(s.sendmail("a@zolder.thuis", ["jan@paprika"], MSG), {})
        self.isp.wait_relayed()
        self.isp.call("mailstore.quota", store="paprika", user="jan", bytes=1)
        with smtplib.SMTP(SMARTHOST, 25, source_address=(CUSTOMER, 0), timeout=5) as s:
            self.assertEqual(s.sendmail("a@zolder.thuis", ["jan@paprika"], MSG), {})
        self.isp.wait_relayed()
        last = [r for r in self.isp.records("relay") if r["rcpt"] == "jan@paprika"][-1]
        self.assertEqual((last["status"], last["reply"][:9]), ("bounced", "552 5.2.2"))
        # reset restores the world's quota (none for jan)
        self.isp.reset()
        self.assertEqual(self.isp.mailboxes("paprika")[0]["quota"], 0)
        self.assertEqual(self.isp.mailboxes("mailstore")[0]["quota"], 5242880)

    def test_bad_smtp_fault(self):
        from ispsim_common import IspsimError
        for kw in ({"stage": "later", "reply": "451 x"}, {"stage": "dot", "reply": "250 ok"},
                   {"stage": "dot"}, {"stage": "dot", "host": "nosuch.host", "hangup": True}):
            with self.subTest(kw=kw), self.assertRaises(IspsimError):
                self.isp.smtp_fault(**kw)


if __name__ == "__main__":
    unittest.main()
