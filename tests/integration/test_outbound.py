"""Outbound delivery (issue 5) against ispsim's seed world: zolderd sends through the
smarthost smtp.hccnet.nl or straight to the MX hosts, resolving through ispsim's nameserver;
every test checks that ispsim recorded no protocol violation from zolder's client."""

import os
import re
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
import unittest

from ispsim_common import CUSTOMER, NS, IspsimCase, zolder_test

sys.path.insert(0, os.path.join(zolder_test.ROOT, "tests", "helper"))
from zolderd_instance import Zolderd  # noqa: E402

ZOLDER = "127.0.1.41"     # this test's zolderd; not a customer of the smarthost
LAN_HOST = "127.0.1.5"
PORT = 2525

MSG = ("From: sjoerd@zolder.thuis\r\nTo: jan@paprika\r\nSubject: {subject}\r\n\r\n"
       "Dag Jan.\r\n.a line that starts with a dot\r\n..two dots\r\n.\r\nend\r\n")


class OutboundCase(IspsimCase):
    conf = {}

    def setUp(self):
        super().setUp()
        if not zolder_test.address_free(ZOLDER, PORT):
            self.skipTest(f"{ZOLDER}:{PORT} in use, not ours")
        self.start_zolderd(self.conf)

    def start_zolderd(self, extra):
        conf = {"nameserver": NS, "dns": "nocanonify", "smtp_bind_address": CUSTOMER,
                "retry_min_delay": "1", "retry_max_delay": "2"}
        conf.update(extra)
        self.z = Zolderd(address=ZOLDER, port=PORT, conf=conf)
        self.addCleanup(self.z.cleanup)
        self.z.start()

    def send(self, rcpts, subject="hallo", body=None):
        with smtplib.SMTP(ZOLDER, PORT, source_address=(LAN_HOST, 0), timeout=10) as s:
            s.ehlo("ecs.thuis")
            refused = s.sendmail("sjoerd@zolder.thuis", rcpts, body or MSG.format(subject=subject))
        self.assertEqual(refused, {})

    def flush(self):
        p = subprocess.run([zolder_test.binary("zolderctl"), "-c", self.z.config, "flush"],
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p)

    def stored(self, store, user):
        return [self.isp.read(store, user, m["uid"]) for m in self.isp.messages(store, user)]

    def wait_stored(self, store, user, n=1):
        self.z.wait_for(lambda: len(self.isp.messages(store, user)) >= n, timeout=20,
                        what=f"{n} message(s) in {store}/{user}")
        return self.stored(store, user)

    def wait_queue_empty(self):
        self.z.wait_for(lambda: not self.z.queue_ids(), timeout=20, what="an empty queue")

    # The seed world's smarthost relays on to the MX hosts over SMTP itself; these look only at
    # what zolder said to the smarthost.
    def sessions(self, host="smtp.hccnet.nl"):
        return {r["session"] for r in self.isp.records("smtp") if host is None or r["host"] == host}

    def client_lines(self, host="smtp.hccnet.nl"):
        return [r["line"] for r in self.isp.records("smtp") if r["dir"] == "c" and r["host"] == host]

    def tearDown(self):
        self.assertEqual(self.isp.violations(), [], self.isp.records("violation"))


class SmarthostTest(OutboundCase):
    conf = {"smarthost": "smtp.hccnet.nl"}

    def setUp(self):
        super().setUp()
        # The transaction's shape is checked in clear text here; test_outbound_tls covers TLS.
        self.isp.call("tls.set", host="smtp.hccnet.nl", starttls=False)

    def test_mail_lands_with_zolders_and_ispsims_received_lines(self):
        self.send(["jan@paprika", "truus@komkommer", "bouke@zolder.thuis"])
        text = self.wait_stored("paprika", "jan")[0]
        self.wait_stored("komkommer", "truus")
        self.wait_queue_empty()
        hops = re.findall(r"^Received: [^\r\n]*(?:\r\n\t[^\r\n]*)*", text, re.M)
        self.assertEqual(len(hops), 4, text)
        self.assertTrue(hops[1].startswith("Received: from [213.51.144.25] (helo=smtp.hccnet.nl)"), hops)
        self.assertTrue(hops[2].startswith("Received: from [62.251.70.10] (helo=zolder.thuis)"), hops)
        self.assertRegex(hops[3], r"^Received: from ecs\.thuis \(unknown \[127\.0\.1\.5\]\)\r\n"
                                  r"\tby zolder\.thuis \(zolder [0-9.]+\) with ESMTP id ([0-9A-Z]{16})")
        # dot-stuffed on the wire, unstuffed by the server: the body arrives as sent
        self.assertTrue(text.endswith("Dag Jan.\r\n.a line that starts with a dot\r\n..two dots\r\n"
                                      ".\r\nend\r\n"), text[-200:])
        self.assertIn("Subject: hallo", self.z.mbox("bouke"))
        log = self.z.log()
        qid = re.search(r"with ESMTP id ([0-9A-Z]{16})", hops[3]).group(1)
        self.assertRegex(log, qid + r": to=<jan@paprika>, relay=smtp\.hccnet\.nl\[127\.9\.2\.25\]:25, "
                                    r"delay=[0-9.]+, dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok: queued as ")
        self.assertIn(f"{qid}: to=<truus@komkommer>, relay=smtp.hccnet.nl[127.9.2.25]:25", log)
        self.assertIn(f"{qid}: removed", log)
        # one transaction: both recipients in one MAIL, pipelined, with SIZE and no DATA in the group
        lines = self.client_lines()
        self.assertEqual(lines[0], "EHLO zolder.thuis")
        self.assertRegex(lines[1], r"^MAIL FROM:<sjoerd@zolder\.thuis> SIZE=\d+$")
        self.assertEqual(sorted(lines[2:4]), ["RCPT TO:<jan@paprika>", "RCPT TO:<truus@komkommer>"])
        self.assertEqual(lines[4], "DATA")
        self.assertEqual(lines[-1], "QUIT")
        self.assertIn("..a line that starts with a dot", lines)
        self.assertIn("...two dots", lines)
        self.assertIn("..", lines)
        self.assertEqual(len(self.sessions()), 1)

    def test_dns_only_for_the_smarthost(self):
        self.send(["jan@paprika", "mac@appel"])
        self.wait_queue_empty()
        asked = {(r["name"].rstrip(".").lower(), r["type"]) for r in self.isp.records("dns")}
        self.assertEqual(asked, {("smtp.hccnet.nl", "A")})  # A only: smtp_bind_address is IPv4

    def test_4xx_is_deferred_and_sent_on_flush(self):
        self.isp.smtp_fault("rcpt", host="smtp.hccnet.nl", reply="451 4.3.0 try again later")
        self.send(["jan@paprika"], subject="later")
        self.z.wait_log("status=deferred (451 4.3.0 try again later)")
        self.assertEqual(len(self.z.queue_ids()), 1)
        self.assertEqual(self.isp.messages("paprika", "jan"), [])
        self.isp.clear_faults()
        self.flush()
        self.assertIn("Subject: later", self.wait_stored("paprika", "jan")[0])
        self.wait_queue_empty()
        self.assertIn("dsn=2.0.0, status=sent", self.z.log())

    def test_4xx_after_the_dot_is_retried_by_the_backoff_timer(self):
        self.isp.smtp_fault("dot", host="smtp.hccnet.nl", message=1, reply="452 4.3.1 insufficient storage")
        self.send(["jan@paprika"], subject="retried")
        self.z.wait_log("status=deferred (452 4.3.1 insufficient storage)")
        # retry_min_delay = 1: the retry comes by itself (the fault matched message 1 only)
        self.assertIn("Subject: retried", self.wait_stored("paprika", "jan")[0])
        self.wait_queue_empty()

    def test_5xx_fails_the_recipient_only(self):
        self.isp.smtp_fault("rcpt", host="smtp.hccnet.nl", rcpt="piet@paprika",
                            reply="550 5.1.1 <piet@paprika>: Recipient address rejected")
        self.send(["piet@paprika", "jan@paprika"])
        self.wait_stored("paprika", "jan")
        self.wait_queue_empty()
        log = self.z.log()
        self.assertRegex(log, r"to=<piet@paprika>, relay=smtp\.hccnet\.nl\[127\.9\.2\.25\]:25, delay=[0-9.]+, "
                              r"dsn=5\.1\.1, status=bounced \(550 5\.1\.1 <piet@paprika>: Recipient address rejected\)")
        self.assertEqual(self.isp.messages("paprika", "piet"), [])
        # the bounce: to the sender, multipart/report, only the failed recipient in it
        self.assertRegex(log, r"[0-9A-Z]{16}: sender non-delivery notification: [0-9A-Z]{16}")
        self.z.wait_for(lambda: "Undelivered Mail" in self.z.mbox("sjoerd"), what="the bounce")
        bounce = self.z.mbox("sjoerd")
        self.assertIn("report-type=delivery-status", bounce)
        self.assertIn("Final-Recipient: rfc822; piet@paprika", bounce)
        self.assertIn("Status: 5.1.1", bounce)
        self.assertIn("Diagnostic-Code: smtp; 550 5.1.1 <piet@paprika>: Recipient address rejected", bounce)
        self.assertNotIn("jan@paprika\r\nAction", bounce)

    def test_421_at_greeting_defers(self):
        self.isp.smtp_fault("greeting", host="smtp.hccnet.nl", reply="421 4.3.2 service not available")
        self.send(["jan@paprika"])
        self.z.wait_log("status=deferred (421 4.3.2 service not available)")
        self.assertEqual(len(self.z.queue_ids()), 1)
        self.isp.clear_faults()
        self.flush()
        self.wait_stored("paprika", "jan")
        self.wait_queue_empty()


class RelayDeniedTest(OutboundCase):
    # Not through the modem (whatever goes through it comes out at the customer's address), but
    # straight at the smarthost's own address from zolder's: not a customer, so no relaying.
    conf = {"smarthost": "[127.0.2.25]:25", "smtp_bind_address": ZOLDER}

    def test_relay_denied_is_a_permanent_failure(self):
        self.send(["jan@paprika"])
        self.z.wait_log("status=bounced (554 5.7.1 <jan@paprika>: Relay access denied)")
        self.wait_queue_empty()
        self.assertEqual(self.isp.messages("paprika", "jan"), [])
        self.assertIn("DATA", [l for l in self.client_lines()] + ["DATA"])  # no DATA needed
        self.assertNotIn("DATA", self.client_lines()[:-1])


class DeferRemoteTest(OutboundCase):
    conf = {"smarthost": "smtp.hccnet.nl", "defer_remote": "yes"}

    def setUp(self):
        super().setUp()
        self.isp.call("tls.set", host="smtp.hccnet.nl", starttls=False)

    def test_held_until_flush_then_one_connection(self):
        for i in range(3):
            self.send(["jan@paprika", "mac@appel"], subject=f"batch {i}")
        self.z.wait_for(lambda: len(self.z.queue_ids()) == 3, what="three queued messages")
        time.sleep(0.3)
        self.assertEqual(self.sessions(), set())
        self.flush()
        self.wait_stored("paprika", "jan", 3)
        self.wait_stored("appel", "mac", 3)
        self.wait_queue_empty()
        self.assertEqual(len(self.sessions()), 1)  # one dial carries the whole queue
        self.assertEqual(self.client_lines().count("DATA"), 3)


class FlushDuringScanTest(OutboundCase):
    """The dial-up script's flush comes while a message just sent is still in the content
    filter: it must go out on this dial once its verdict is in, not wait for the next flush."""
    conf = {"smarthost": "smtp.hccnet.nl", "defer_remote": "yes"}

    def setUp(self):
        from test_filter import SlowClamd
        folder = tempfile.mkdtemp(prefix="zolder-slowclamd-")
        os.chmod(folder, 0o755)
        self.addCleanup(shutil.rmtree, folder, True)
        self.clamd = SlowClamd(folder)
        self.addCleanup(self.clamd.close)
        self.conf = dict(self.conf, clamd=f"unix:{self.clamd.path}", clamd_timeout="40")
        super().setUp()
        self.isp.call("tls.set", host="smtp.hccnet.nl", starttls=False)

    def test_flush_waits_for_the_verdict(self):
        self.send(["jan@paprika"], subject="net voor de inbelverbinding")
        self.assertTrue(self.clamd.held.acquire(timeout=10), "the scan reached the clamd stand-in")
        self.flush()
        time.sleep(0.3)
        self.assertEqual(self.sessions(), set(), "nothing is sent before its verdict")
        self.clamd.release()
        self.wait_stored("paprika", "jan", 1)
        self.wait_queue_empty()
        self.assertEqual(len(self.sessions()), 1)

    def test_etrn_domain_waits_for_the_verdict(self):
        """ETRN DOMAIN (RFC 1985) while the message is being scanned: that domain's mail goes
        once its verdict is in; another domain's stays held."""
        self.send(["jan@paprika", "mac@appel"], subject="via ETRN")
        self.assertTrue(self.clamd.held.acquire(timeout=10), "the scan reached the clamd stand-in")
        with smtplib.SMTP(ZOLDER, PORT, source_address=(LAN_HOST, 0), timeout=10) as s:
            s.ehlo("ecs.thuis")
            self.assertEqual(s.docmd("ETRN", "paprika")[0], 250)
        time.sleep(0.3)
        self.assertEqual(self.sessions(), set(), "nothing is sent before its verdict")
        self.clamd.release()
        self.wait_stored("paprika", "jan", 1)
        time.sleep(0.5)
        self.assertEqual(self.isp.messages("appel", "mac"), [], "ETRN paprika sends nothing for appel")
        self.assertEqual(len(self.z.queue_ids()), 1)


class DirectMxTest(OutboundCase):
    conf = {}

    def test_seed_table_direct_delivery(self):
        self.send(["jan@paprika", "piet@paprika", "truus@komkommer", "mac@appel"])
        self.wait_stored("paprika", "jan")
        self.wait_stored("paprika", "piet")
        self.wait_stored("komkommer", "truus")
        self.wait_stored("appel", "mac")
        self.wait_queue_empty()
        asked = sorted((r["name"].rstrip(".").lower(), r["type"]) for r in self.isp.records("dns"))
        self.assertEqual(asked, sorted([("paprika", "MX"), ("komkommer", "MX"), ("appel", "MX"),
                                        ("mx.paprika", "A"), ("mx.komkommer", "A"), ("mx.appel", "A")]))
        hosts = {}
        for r in self.isp.records("smtp"):
            hosts.setdefault(r["host"], set()).add(r["session"])
        self.assertEqual({h: len(s) for h, s in hosts.items()},
                         {"mx.paprika": 1, "mx.komkommer": 1, "mx.appel": 1})
        text = self.stored("paprika", "jan")[0]
        self.assertIn("Received: from [62.251.70.10] (helo=zolder.thuis)", text)
        self.assertIn("by zolder.thuis (zolder", text)
        self.assertRegex(self.z.log(), r"to=<mac@appel>, relay=mx\.appel\[127\.9\.8\.25\]:25, delay=[0-9.]+, "
                                       r"dsn=2\.0\.0, status=sent")

    def test_unknown_domain_bounces(self):
        self.send(["x@nosuchdomain.paprika"])
        self.z.wait_log("status=bounced (Host or domain name not found: nosuchdomain.paprika")
        self.wait_queue_empty()

    def test_servfail_defers(self):
        self.isp.dns_fault(name="appel", fault="servfail")
        self.send(["mac@appel"])
        self.z.wait_log("to=<mac@appel>, relay=none")
        self.assertRegex(self.z.log(), r"to=<mac@appel>, relay=none, delay=[0-9.]+, dsn=4\.4\.3, status=deferred")
        self.assertEqual(len(self.z.queue_ids()), 1)


if __name__ == "__main__":
    unittest.main()
