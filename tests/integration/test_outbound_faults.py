"""Outbound delivery over a bad line (issue 5, sections 4 to 6): one test per link fault, DNS
fault and SMTP reply, against ispsim's seed world. After each: what the mailstores hold, what
is left in zolder's queue, and the report the sender got (bounce, delay warning, success DSN).
The smarthost's strict checks must record no protocol violation from zolder's client; the
only records a cut line may leave are the server's view of the cut itself (the link closed
the connection: `no-quit`, `eof-in-data`), which are about the line, not about zolder."""

import os
import re
import smtplib
import socket
import subprocess
import sys
import time
import unittest

from ispsim_common import CUSTOMER, NS, IspsimCase, zolder_test

sys.path.insert(0, os.path.join(zolder_test.ROOT, "tests", "helper"))
from zolderd_instance import Zolderd  # noqa: E402

ZOLDER = "127.0.1.42"     # this test's zolderd
LAN_HOST = "127.0.1.5"
PORT = 2525
SMARTHOST = "smtp.hccnet.nl"

MSG = ("From: sjoerd@zolder.thuis\r\nTo: jan@paprika\r\nSubject: {subject}\r\n\r\n"
       "Dag Jan.\r\n.a line that starts with a dot\r\nsecret body line\r\n")

# What the server records when the line (not the client) closes a connection.
CUT_RECORDS = {"no-quit", "eof-in-data"}


class FaultCase(IspsimCase):
    conf = {"smarthost": SMARTHOST}
    cut_expected = False   # tests that cut the line set this

    def setUp(self):
        super().setUp()
        if not zolder_test.address_free(ZOLDER, PORT):
            self.skipTest(f"{ZOLDER}:{PORT} in use, not ours")
        self.cut_expected = False
        self.start_zolderd(self.conf)
        # clear text, so the byte counts of the cut tests are those of the transcript
        self.isp.call("tls.set", host=SMARTHOST, starttls=False)

    def start_zolderd(self, extra, keep_state=None):
        conf = {"nameserver": NS, "dns": "nocanonify", "smtp_bind_address": CUSTOMER,
                "retry_min_delay": "1", "retry_max_delay": "2", "smtp_connect_timeout": "5",
                "smtp_reply_timeout": "5", "smtp_data_timeout": "5", "smtp_helo_timeout": "5",
                "smtp_mail_timeout": "5", "smtp_rcpt_timeout": "5", "smtp_data_init_timeout": "5",
                "smtp_data_xfer_timeout": "5"}
        conf.update(extra)
        self.z = Zolderd(address=ZOLDER, port=PORT, conf=conf)
        self.addCleanup(self.z.cleanup)
        self.z.start()

    # --- helpers ------------------------------------------------------------------------------
    def send(self, rcpts, subject="hallo", body=None, sender="sjoerd@zolder.thuis", mail_options=(),
             rcpt_options=()):
        with smtplib.SMTP(ZOLDER, PORT, source_address=(LAN_HOST, 0), timeout=10) as s:
            s.ehlo("ecs.thuis")
            refused = s.sendmail(sender, rcpts, body or MSG.format(subject=subject),
                                 mail_options=list(mail_options), rcpt_options=list(rcpt_options))
        self.assertEqual(refused, {})

    def flush(self):
        p = subprocess.run([zolder_test.binary("zolderctl"), "-c", self.z.config, "flush"],
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p)

    def stored(self, store, user):
        return [self.isp.read(store, user, m["uid"]) for m in self.isp.messages(store, user)]

    def wait_stored(self, store, user, n=1, timeout=20):
        self.z.wait_for(lambda: len(self.isp.messages(store, user)) >= n, timeout=timeout,
                        what=f"{n} message(s) in {store}/{user}")
        return self.stored(store, user)

    def wait_queue_empty(self, timeout=20):
        self.z.wait_for(lambda: not self.z.queue_ids(), timeout=timeout, what="an empty queue")

    def reports(self, subject_part):
        """The reports in sjoerd's local mailbox whose Subject holds subject_part."""
        box = self.z.mbox("sjoerd")
        msgs = [m for m in re.split(r"(?m)^From MAILER-DAEMON ", box) if m.strip()]
        return [m for m in msgs if re.search(r"(?m)^Subject: .*" + re.escape(subject_part), m)]

    def wait_bounce(self, n=1, timeout=10):
        self.z.wait_for(lambda: len(self.reports("Undelivered Mail")) >= n, timeout=timeout,
                        what=f"{n} bounce(s)")
        time.sleep(0.2)
        return self.reports("Undelivered Mail")

    def assert_no_report(self):
        time.sleep(0.3)
        self.assertNotIn("MAILER-DAEMON", self.z.mbox("sjoerd"))

    def client_lines(self, host=SMARTHOST):
        return [r["line"] for r in self.isp.records("smtp") if r["dir"] == "c" and r["host"] == host]

    def sessions(self, host=SMARTHOST):
        return {r["session"] for r in self.isp.records("smtp") if r["host"] == host}

    def tearDown(self):
        bad = [v for v in self.isp.records("violation")
               if not (self.cut_expected and v["violation"] in CUT_RECORDS)]
        self.assertEqual(bad, [], bad)


class ReplyTest(FaultCase):
    """Per reply (421, 451, 452, 550, 552, 554) for one recipient or the whole message."""

    def deferred_then_flushed(self, marker):
        self.z.wait_log(marker)
        self.assertEqual(len(self.z.queue_ids()), 1)
        self.assertEqual(self.isp.messages("paprika", "jan"), [])
        self.assert_no_report()
        self.isp.clear_faults()
        self.flush()
        self.wait_stored("paprika", "jan")
        self.wait_queue_empty()
        self.assertEqual(len(self.stored("paprika", "jan")), 1)

    def test_421_at_mail_defers_the_whole_message(self):
        self.isp.smtp_fault("mail", host=SMARTHOST, reply="421 4.3.2 shutting down")
        self.send(["jan@paprika"])
        self.deferred_then_flushed("status=deferred (421 4.3.2 shutting down)")

    def test_451_for_one_recipient_defers_only_that_one(self):
        self.isp.smtp_fault("rcpt", host=SMARTHOST, rcpt="piet@paprika", reply="451 4.3.0 try again later")
        self.send(["jan@paprika", "piet@paprika"])
        self.wait_stored("paprika", "jan")
        self.z.wait_log("to=<piet@paprika>")
        self.assertRegex(self.z.log(), r"to=<piet@paprika>, relay=smtp\.hccnet\.nl\[127\.9\.2\.25\]:25, "
                                       r"delay=[0-9.]+, dsn=4\.3\.0, status=deferred \(451 4\.3\.0 try again later\)")
        self.assertEqual(len(self.z.queue_ids()), 1)
        self.isp.clear_faults()
        self.flush()
        self.wait_stored("paprika", "piet")
        self.wait_queue_empty()
        # the recipient that got 250 was never sent again
        self.assertEqual(len(self.stored("paprika", "jan")), 1)
        self.assertEqual([l for l in self.client_lines() if l.startswith("RCPT")],
                         ["RCPT TO:<jan@paprika>", "RCPT TO:<piet@paprika>", "RCPT TO:<piet@paprika>"])
        self.assert_no_report()

    def test_452_at_rcpt_defers(self):
        self.isp.smtp_fault("rcpt", host=SMARTHOST, reply="452 4.5.3 too many recipients")
        self.send(["jan@paprika"])
        self.deferred_then_flushed("status=deferred (452 4.5.3 too many recipients)")

    def test_550_for_one_recipient_bounces_that_one(self):
        self.isp.smtp_fault("rcpt", host=SMARTHOST, rcpt="piet@paprika",
                            reply="550 5.1.1 <piet@paprika>: Recipient address rejected")
        self.send(["piet@paprika", "jan@paprika"], subject="een van twee")
        self.wait_stored("paprika", "jan")
        self.wait_queue_empty()
        self.assertEqual(self.isp.messages("paprika", "piet"), [])
        bounce, = self.wait_bounce()
        self.assertIn("To: <sjoerd@zolder.thuis>", bounce)
        self.assertIn("Auto-Submitted: auto-replied", bounce)
        self.assertIn("Content-Type: multipart/report; report-type=delivery-status;", bounce)
        self.assertIn("Reporting-MTA: dns; zolder.thuis", bounce)
        self.assertEqual(re.findall(r"Final-Recipient: rfc822; (\S+)", bounce), ["piet@paprika"])
        self.assertIn("Action: failed\nStatus: 5.1.1\nRemote-MTA: dns; smtp.hccnet.nl\n"
                      "Diagnostic-Code: smtp; 550 5.1.1 <piet@paprika>: Recipient address rejected",
                      bounce.replace("\r\n", "\n"))
        # no RET: the whole message comes back
        self.assertIn("Content-Type: message/rfc822", bounce)
        self.assertIn("secret body line", bounce)
        self.assertIn("Subject: een van twee", bounce)
        log = self.z.log()
        qid = re.search(r"([0-9A-Z]{16}): to=<piet@paprika>", log).group(1)
        self.assertRegex(log, qid + r": sender non-delivery notification: [0-9A-Z]{16}")

    def test_552_and_554_for_single_recipients(self):
        self.isp.smtp_fault("rcpt", host=SMARTHOST, rcpt="piet@paprika", reply="552 5.2.2 <piet@paprika>: Mailbox full")
        self.isp.smtp_fault("rcpt", host=SMARTHOST, rcpt="mac@appel", reply="554 5.7.1 <mac@appel>: not from you")
        self.send(["piet@paprika", "jan@paprika", "mac@appel"])
        self.wait_stored("paprika", "jan")
        bounce, = self.wait_bounce()
        self.wait_queue_empty()
        self.assertEqual(sorted(re.findall(r"Final-Recipient: rfc822; (\S+)", bounce)), ["mac@appel", "piet@paprika"])
        self.assertIn("Status: 5.2.2", bounce)
        self.assertIn("Status: 5.7.1", bounce)
        self.assertEqual(self.isp.messages("paprika", "piet"), [])
        self.assertEqual(self.isp.messages("appel", "mac"), [])

    def test_552_at_the_dot_bounces_the_whole_message(self):
        self.isp.smtp_fault("dot", host=SMARTHOST, reply="552 5.3.4 message too big for system")
        self.send(["jan@paprika", "piet@paprika"])
        bounce, = self.wait_bounce()
        self.wait_queue_empty()
        self.assertEqual(sorted(re.findall(r"Final-Recipient: rfc822; (\S+)", bounce)),
                         ["jan@paprika", "piet@paprika"])
        self.assertIn("Status: 5.3.4", bounce)
        self.assertEqual(self.isp.messages("paprika", "jan"), [])

    def test_554_at_mail_bounces_the_whole_message(self):
        # pipelined RCPTs behind the refused MAIL get 503: no violation (RFC 2920 3.1)
        self.isp.smtp_fault("mail", host=SMARTHOST, reply="554 5.7.1 sender refused")
        self.send(["jan@paprika"])
        bounce, = self.wait_bounce()
        self.wait_queue_empty()
        self.assertIn("Status: 5.7.1", bounce)
        self.assertIn("Diagnostic-Code: smtp; 554 5.7.1 sender refused", bounce)
        self.assertEqual(self.isp.messages("paprika", "jan"), [])

    def test_554_at_data_bounces(self):
        self.isp.smtp_fault("data", host=SMARTHOST, reply="554 5.6.0 no data today")
        self.send(["jan@paprika"])
        bounce, = self.wait_bounce()
        self.wait_queue_empty()
        self.assertIn("Status: 5.6.0", bounce)

    # --- what NOTIFY, RET and the null sender change -------------------------------------------
    def test_bounce_to_a_remote_sender_goes_out_with_the_null_sender(self):
        self.isp.smtp_fault("rcpt", host=SMARTHOST, rcpt="jan@paprika", reply="550 5.1.1 no such user")
        self.send(["jan@paprika"], sender="piet@paprika", subject="terug naar piet")
        self.z.wait_for(lambda: self.isp.messages("paprika", "piet"), what="the bounce at piet@paprika")
        self.wait_queue_empty()
        bounce, = self.stored("paprika", "piet")
        self.assertIn("Subject: Undelivered Mail Returned to Sender", bounce)
        self.assertIn("Final-Recipient: rfc822; jan@paprika", bounce)
        self.assertIn("Subject: terug naar piet", bounce)
        self.assertTrue([l for l in self.client_lines() if l.startswith("MAIL FROM:<> ")], self.client_lines())
        self.assertEqual(self.isp.messages("paprika", "jan"), [])

    def test_no_bounce_for_a_bounce(self):
        self.isp.smtp_fault("rcpt", host=SMARTHOST, reply="550 5.1.1 no such user")
        self.send(["jan@paprika"], sender="")
        self.z.wait_log("no bounce: the sender is the null sender")
        self.wait_queue_empty()
        self.assert_no_report()

    def test_notify_never_sends_no_bounce(self):
        self.isp.smtp_fault("rcpt", host=SMARTHOST, reply="550 5.1.1 no such user")
        self.send(["jan@paprika"], rcpt_options=["NOTIFY=NEVER"])
        self.z.wait_log("no bounce: NOTIFY=NEVER")
        self.wait_queue_empty()
        self.assert_no_report()

    def test_ret_hdrs_returns_the_header_only_with_the_envid(self):
        self.isp.smtp_fault("rcpt", host=SMARTHOST, reply="550 5.1.1 no such user")
        self.send(["jan@paprika"], subject="alleen de kop", mail_options=["RET=HDRS", "ENVID=QQ314159"],
                  rcpt_options=["NOTIFY=FAILURE", "ORCPT=rfc822;Jan@Paprika"])
        bounce, = self.wait_bounce()
        self.assertIn("Content-Type: text/rfc822-headers", bounce)
        self.assertIn("Subject: alleen de kop", bounce)
        self.assertNotIn("secret body line", bounce)
        self.assertIn("Original-Envelope-Id: QQ314159", bounce)
        self.assertIn("Original-Recipient: rfc822;Jan@Paprika", bounce)

    def test_success_dsn_when_the_next_hop_lacks_dsn(self):
        # ispsim's EHLO offers no DSN: zolder reports "relayed" itself when asked to
        self.send(["jan@paprika"], rcpt_options=["NOTIFY=SUCCESS"])
        self.wait_stored("paprika", "jan")
        self.wait_queue_empty()
        self.z.wait_for(lambda: self.reports("Successful Mail Delivery"), what="the success report")
        report, = self.reports("Successful Mail Delivery")
        self.assertIn("Action: relayed", report)
        self.assertIn("Status: 2.0.0", report)
        self.assertNotIn("secret body line", report)
        # without NOTIFY=SUCCESS: nothing
        self.send(["jan@paprika"], subject="zonder")
        self.wait_stored("paprika", "jan", 2)
        self.wait_queue_empty()
        time.sleep(0.3)
        self.assertEqual(len(self.reports("Successful Mail Delivery")), 1)


class DelayWarningTest(FaultCase):
    conf = {"smarthost": SMARTHOST, "delay_warning_time": "1"}

    def test_one_delay_warning_then_delivery(self):
        self.isp.smtp_fault("rcpt", host=SMARTHOST, reply="451 4.3.0 try again later")
        self.send(["jan@paprika"], subject="wacht")
        self.z.wait_for(lambda: self.reports("Delayed Mail"), timeout=15, what="the delay warning")
        # more retries come (retry_max_delay = 2), and no second warning
        n = self.z.log().count("status=deferred")
        self.z.wait_for(lambda: self.z.log().count("status=deferred") >= n + 2, timeout=15,
                        what="two more deferred attempts")
        warning, = self.reports("Delayed Mail")
        self.assertIn("Action: delayed", warning)
        self.assertIn("Status: 4.3.0", warning)
        self.assertIn("Will-Retry-Until: ", warning)
        self.assertNotIn("secret body line", warning)
        self.assertEqual(len(self.reports("Undelivered")), 0)
        self.isp.clear_faults()
        self.flush()
        self.wait_stored("paprika", "jan")
        self.wait_queue_empty()
        self.assertEqual(len(self.reports("Delayed Mail")), 1)


class ExpiryTest(FaultCase):
    conf = {"smarthost": SMARTHOST, "queue_lifetime": "2"}

    def test_expired_message_bounces_with_4_4_7(self):
        self.isp.link_down()   # the nameserver answers through the link too: ~9 s of DNS timeouts
        self.send(["jan@paprika"], subject="te laat")
        bounce, = self.wait_bounce(timeout=30)
        self.wait_queue_empty()
        self.assertIn("Action: failed", bounce)
        self.assertIn("Status: 4.4.7", bounce)
        self.assertIn("message expired after 2 seconds", bounce)
        self.isp.link_up()


class RetryStateTest(FaultCase):
    conf = {"smarthost": SMARTHOST, "retry_min_delay": "60", "retry_max_delay": "600"}

    def test_backoff_survives_a_restart(self):
        self.isp.smtp_fault("rcpt", host=SMARTHOST, reply="451 4.3.0 try again later")
        self.send(["jan@paprika"])
        self.z.wait_log("status=deferred (451 4.3.0 try again later)")
        qid, = self.z.queue_ids()
        path = self.z.inst.path("var", "queue", "msg", qid)
        def envelope():
            with open(path, "rb") as f:
                return f.read().split(b"\nD\n")[0].decode()
        self.z.wait_for(lambda: re.search(r"(?m)^X [0-9a-f]{16} 00000001 -$", envelope()),
                        what="the retry state in the queue file")
        nxt = int(re.search(r"(?m)^X ([0-9a-f]{16})", envelope()).group(1), 16)
        self.assertAlmostEqual(nxt, time.time() + 60, delta=5)
        self.z.stop()
        self.isp.clear_faults()
        sessions = len(self.sessions())
        self.z.start()
        time.sleep(1.5)
        # the restart keeps the backoff: no attempt before the next-attempt time
        self.assertEqual(len(self.sessions()), sessions)
        self.assertEqual(self.z.queue_ids(), [qid])
        self.flush()   # a flush ignores the backoff
        self.wait_stored("paprika", "jan")
        self.wait_queue_empty()


class LinkTest(FaultCase):
    def test_link_down_defers_then_delivers(self):
        # The smarthost by address: with the line down its name would not resolve either (the
        # nameserver answers through the link), which DnsFaultTest covers.
        self.z.stop()
        self.start_zolderd({"smarthost": "[127.9.2.25]:25"})
        self.isp.link_down()
        self.send(["jan@paprika"])
        self.z.wait_log("status=deferred")
        self.assertRegex(self.z.log(), r"to=<jan@paprika>, relay=127\.9\.2\.25\[127\.9\.2\.25\]:25, "
                                       r"delay=[0-9.]+, dsn=4\.4\.1, status=deferred \(connect to "
                                       r"127\.9\.2\.25\[127\.9\.2\.25\]:25: ")
        self.assertEqual(len(self.z.queue_ids()), 1)
        # mailq shows that reason and the next attempt
        p = subprocess.run([zolder_test.binary("zolderctl"), "-c", self.z.config, "mailq"],
                           capture_output=True, timeout=30, text=True)
        self.assertRegex(p.stdout, r"\n {46}\(connect to 127\.9\.2\.25\[127\.9\.2\.25\]:25: [^;)]+; "
                                   r"next attempt [A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d\)\n"
                                   r" {47}jan@paprika\n")
        self.isp.link_up()
        self.flush()
        self.wait_stored("paprika", "jan")
        self.wait_queue_empty()
        self.assert_no_report()

    def test_dial_delay(self):
        self.isp.link_dial()       # dial on demand
        self.isp.link_hangup()
        self.isp.link_profile(dial_delay=1500)
        dials = self.isp.link_stats()["dials"]
        t0 = time.monotonic()
        self.send(["jan@paprika"])
        self.wait_stored("paprika", "jan")
        self.assertGreaterEqual(time.monotonic() - t0, 1.4)
        self.wait_queue_empty()
        self.assertEqual(self.isp.link_stats()["dials"], dials + 1)   # one call: DNS and SMTP
        self.assertNotIn("status=deferred", self.z.log())

    def test_56k_modem(self):
        self.isp.link_profile(bandwidth=56000)
        body = MSG.format(subject="groot") + "".join(f"regel {i:05d} " + "x" * 60 + "\r\n" for i in range(300))
        t0 = time.monotonic()
        self.send(["jan@paprika"], body=body)
        text = self.wait_stored("paprika", "jan", timeout=30)[0]
        took = time.monotonic() - t0
        self.assertGreater(took, len(body) * 8 / 56000 * 0.8)   # the modem's pace, not loopback's
        self.assertIn("regel 00299 " + "x" * 60, text)
        self.wait_queue_empty()

    def test_stall_beyond_the_reply_timeout(self):
        self.isp.link_profile(stall_after=60)   # the greeting and part of EHLO pass, then nothing
        self.send(["jan@paprika"])
        self.z.wait_log("status=deferred", timeout=20)
        self.assertRegex(self.z.log(), r"dsn=4\.4\.2, status=deferred \(timeout in state (BANNER|EHLO)\)")
        self.assertEqual(len(self.z.queue_ids()), 1)
        self.isp.link_profile(clear=True)
        self.cut_expected = True
        self.flush()
        self.wait_stored("paprika", "jan")
        self.wait_queue_empty()

    def test_stall_during_data_uses_the_data_timeout(self):
        # a stall while the message goes: smtp_data_timeout ends it
        self.z.stop()
        self.start_zolderd(dict(self.conf, smtp_reply_timeout="30", smtp_data_timeout="2"))
        self.isp.call("tls.set", host=SMARTHOST, starttls=False)
        body = MSG.format(subject="stil") + "y" * 70 + "\r\n"
        self.send(["jan@paprika"], body=body)
        self.wait_stored("paprika", "jan")
        self.wait_queue_empty()
        total = self.transcript_bytes()
        self.isp.reset()
        self.isp.call("tls.set", host=SMARTHOST, starttls=False)
        self.isp.link_profile(stall_after=total - 40)   # inside the message, before the dot
        t0 = time.monotonic()
        self.send(["jan@paprika"], body=body)
        self.z.wait_log("timeout in state BODY", timeout=20)
        self.assertLess(time.monotonic() - t0, 15)   # 2 s, not the 30 s reply timeout
        self.isp.link_profile(clear=True)
        self.cut_expected = True
        self.flush()
        self.wait_stored("paprika", "jan")
        self.wait_queue_empty()

    def transcript_bytes(self):
        """Bytes zolder's session with the smarthost moved, both ways, per ispsim's records."""
        return sum(len(r["line"].encode()) + 2 for r in self.isp.records("smtp") if r["host"] == SMARTHOST)

    def test_cut_at_each_protocol_stage(self):
        self.cut_expected = True
        self.send(["jan@paprika"], subject="referentie")
        self.wait_stored("paprika", "jan")
        self.wait_queue_empty()
        records = [r for r in self.isp.records("smtp") if r["host"] == SMARTHOST]
        offsets, pos = {}, 0
        for r in records:
            line = r["line"]
            if r["dir"] == "c":
                for stage in ("EHLO", "MAIL", "RCPT", "DATA", "QUIT"):
                    if line.startswith(stage) and stage not in offsets:
                        offsets[stage] = pos
                if line.startswith("Dag Jan") and "BODY" not in offsets:
                    offsets["BODY"] = pos
            pos += len(line.encode()) + 2
        self.assertEqual(set(offsets), {"EHLO", "MAIL", "RCPT", "DATA", "BODY", "QUIT"}, records)
        cuts = [("greeting", 10)] + [(s, offsets[s] + 3) for s in ("EHLO", "MAIL", "RCPT", "DATA", "BODY")]
        for stage, at in cuts:
            with self.subTest(stage=stage):
                self.isp.wait_relayed(timeout=5)
                self.isp.reset()
                self.isp.call("tls.set", host=SMARTHOST, starttls=False)
                self.isp.link_profile(cut_after=at, cut_times=1)
                lost = self.z.log().count("lost connection")
                self.send(["jan@paprika"], subject=f"knip {stage}")
                self.wait_stored("paprika", "jan")
                self.wait_queue_empty()
                self.isp.wait_relayed(timeout=5)
                texts = self.stored("paprika", "jan")
                self.assertEqual(len(texts), 1, f"cut in {stage}: delivered {len(texts)} times")
                self.assertIn(f"Subject: knip {stage}", texts[0])
                self.assertGreater(self.z.log().count("lost connection"), lost)

    def test_cut_after_the_dot_is_a_logged_possible_duplicate(self):
        # RFC 1047: the smarthost has the message, zolder never heard the 250: sent again
        self.cut_expected = True
        self.isp.link_profile(cut_at="dot", cut_times=1)
        self.send(["jan@paprika"], subject="knip na de punt")
        self.wait_stored("paprika", "jan", 2)
        self.wait_queue_empty()
        texts = self.stored("paprika", "jan")
        self.assertEqual(len(texts), 2)
        log = self.z.log()
        self.assertIn("status=deferred (lost connection after the message data (possible duplicate on retry))", log)
        self.assert_no_report()



class CommandTimeoutTest(FaultCase):
    """RFC 5321 4.5.3.2: a timeout per command. Each stage's reply is held (ispsim's smtp fault
    with delay_ms) longer than that stage's own key (1 s) but well within smtp_reply_timeout
    (30 s): the session ends after about a second with the message deferred, and it goes on
    the next attempt, so a stalled server never holds the queue."""
    conf = {"smarthost": SMARTHOST, "smtp_reply_timeout": "30", "smtp_data_timeout": "30",
            "smtp_helo_timeout": "30", "smtp_mail_timeout": "30", "smtp_rcpt_timeout": "30",
            "smtp_data_init_timeout": "30", "smtp_data_xfer_timeout": "30"}

    def stalled(self, stage, key, state, duplicate_possible=False):
        self.z.stop()
        self.start_zolderd(dict(self.conf, **{key: "1"}))
        self.isp.call("tls.set", host=SMARTHOST, starttls=False)
        self.isp.smtp_fault(stage, host=SMARTHOST, delay_ms=6000)
        t0 = time.monotonic()
        self.send(["jan@paprika"], subject="stil " + stage)
        self.z.wait_log(f"status=deferred (timeout in state {state})", timeout=20)
        self.assertLess(time.monotonic() - t0, 5)   # the stage's 1 s, not the 30 s of the others
        self.assertRegex(self.z.log(), r"to=<jan@paprika>, relay=smtp\.hccnet\.nl\[[0-9.]+\]:25, "
                                       r"delay=[0-9.]+, dsn=4\.4\.2, status=deferred \(timeout in state " + state)
        self.assertEqual(len(self.z.queue_ids()), 1)
        self.isp.clear_faults()
        self.cut_expected = True
        self.flush()
        stored = self.wait_stored("paprika", "jan")
        self.wait_queue_empty()
        if not duplicate_possible:
            time.sleep(0.5)
            self.assertEqual(len(self.isp.messages("paprika", "jan")), 1)
        self.assertIn("Subject: stil " + stage, stored[0])
        self.assert_no_report()

    def test_greeting(self):
        self.stalled("greeting", "smtp_helo_timeout", "BANNER")

    def test_ehlo(self):
        self.stalled("helo", "smtp_helo_timeout", "EHLO")

    def test_mail(self):
        self.stalled("mail", "smtp_mail_timeout", "MAIL")

    def test_rcpt(self):
        self.stalled("rcpt", "smtp_rcpt_timeout", "RCPT")

    def test_data_initiation(self):
        self.stalled("data", "smtp_data_init_timeout", "DATA")

    def test_final_dot(self):
        # the server got the whole message and holds its reply: the RFC 1047 case, a
        # duplicate is allowed (the held reply may still be followed by storing it)
        self.stalled("dot", "smtp_data_timeout", "BODY", duplicate_possible=True)

    def test_data_block(self):
        # the line stalls inside a message larger than the socket buffers: the write makes
        # no progress, and smtp_data_xfer_timeout (not the 30 s final-dot timeout) ends it
        self.z.stop()
        self.start_zolderd(dict(self.conf, smtp_data_xfer_timeout="1"))
        self.isp.call("tls.set", host=SMARTHOST, starttls=False)
        self.isp.link_profile(stall_after=20000)
        body = MSG.format(subject="groot") + "".join(f"regel {i:07d} " + "z" * 60 + "\r\n" for i in range(120000))
        t0 = time.monotonic()
        self.send(["jan@paprika"], body=body)
        self.z.wait_log("status=deferred (timeout in state BODY)", timeout=25)
        self.assertLess(time.monotonic() - t0, 20)
        self.assertEqual(len(self.z.queue_ids()), 1)
        self.isp.link_profile(clear=True)
        self.cut_expected = True

class DnsFaultTest(FaultCase):
    conf = {}   # straight to the MX hosts

    def test_servfail_defers_then_delivers(self):
        self.isp.dns_fault(name="paprika", fault="servfail")
        self.send(["jan@paprika"])
        self.z.wait_log("to=<jan@paprika>, relay=none")
        self.assertRegex(self.z.log(), r"to=<jan@paprika>, relay=none, delay=[0-9.]+, dsn=4\.4\.3, status=deferred")
        self.assertEqual(len(self.z.queue_ids()), 1)
        self.assert_no_report()
        self.isp.clear_faults()
        self.flush()
        self.wait_stored("paprika", "jan")
        self.wait_queue_empty()

    def test_no_answer_defers(self):
        self.isp.dns_fault(name="paprika", fault="drop")
        self.send(["jan@paprika"])
        self.z.wait_log("to=<jan@paprika>, relay=none", timeout=30)
        self.assertRegex(self.z.log(), r"to=<jan@paprika>, relay=none, delay=[0-9.]+, dsn=4\.4\.3, status=deferred")
        self.assertEqual(len(self.z.queue_ids()), 1)
        self.assert_no_report()

    def test_nxdomain_bounces(self):
        self.isp.dns_fault(name="paprika", fault="nxdomain")
        self.send(["jan@paprika"])
        bounce, = self.wait_bounce()
        self.wait_queue_empty()
        self.assertIn("Final-Recipient: rfc822; jan@paprika", bounce)
        self.assertIn("Status: 5.1.2", bounce)
        self.assertIn("Host or domain name not found: paprika", bounce)


class CanonifyTest(FaultCase):
    """dns = canonify: recipient domains checked at RCPT, as Postfix's
    reject_unknown_recipient_domain (NXDOMAIN 550 5.1.2, SERVFAIL 450 4.1.2)."""
    conf = {"dns": "canonify"}

    def rcpt(self, rcpt):
        with smtplib.SMTP(ZOLDER, PORT, source_address=(LAN_HOST, 0), timeout=20) as s:
            s.ehlo("ecs.thuis")
            s.mail("sjoerd@zolder.thuis")
            return s.rcpt(rcpt)

    def test_unknown_domain_refused_at_rcpt(self):
        code, text = self.rcpt("x@nosuchdomain.paprika")
        self.assertEqual(code, 550)
        self.assertEqual(text.decode(), "5.1.2 <x@nosuchdomain.paprika>: Recipient address rejected: Domain not found")
        self.assertEqual(self.z.queue_ids(), [])
        self.assertIn("reject: RCPT from unknown[127.0.1.5]: 550 5.1.2 <x@nosuchdomain.paprika>", self.z.log())

    def test_servfail_is_a_temporary_refusal(self):
        self.isp.dns_fault(name="appel", fault="servfail")
        code, text = self.rcpt("mac@appel")
        self.assertEqual(code, 450)
        self.assertTrue(text.decode().startswith("4.1.2 <mac@appel>: Recipient address rejected: Domain not found"))

    def test_known_domains_pass_and_mail_goes(self):
        self.send(["jan@paprika", "mac@appel"])
        self.wait_stored("paprika", "jan")
        self.wait_stored("appel", "mac")
        self.wait_queue_empty()
        asked = [(r["name"].rstrip(".").lower(), r["type"]) for r in self.isp.records("dns")]
        self.assertEqual(asked.count(("paprika", "MX")), 2)   # at RCPT, and for the delivery

    def test_pipelined_commands_keep_their_order(self):
        with socket.create_connection((ZOLDER, PORT), timeout=20, source_address=(LAN_HOST, 0)) as c:
            f = c.makefile("rb")

            def reply():
                lines = []
                while True:
                    line = f.readline().decode()
                    lines.append(line)
                    if line[3:4] != "-":
                        return "".join(lines)
            reply()
            c.sendall(b"EHLO ecs.thuis\r\n")
            reply()
            c.sendall(b"MAIL FROM:<sjoerd@zolder.thuis>\r\nRCPT TO:<x@nosuchdomain.paprika>\r\n"
                      b"RCPT TO:<jan@paprika>\r\nRSET\r\nQUIT\r\n")
            got = [reply()[:9] for _ in range(5)]
        self.assertEqual(got, ["250 2.1.0", "550 5.1.2", "250 2.1.5", "250 2.0.0", "221 2.0.0"])


class EtrnTest(FaultCase):
    """ETRN DOMAIN (RFC 1985) with defer_remote = yes: only that domain's recipients go."""
    conf = {"smarthost": SMARTHOST, "defer_remote": "yes"}

    def etrn(self, arg):
        with smtplib.SMTP(ZOLDER, PORT, source_address=(LAN_HOST, 0), timeout=10) as s:
            s.ehlo("ecs.thuis")
            return s.docmd("ETRN", arg)

    def test_etrn_per_domain(self):
        self.send(["jan@paprika", "mac@appel"], subject="twee domeinen")
        self.send(["truus@komkommer"], subject="komkommer")
        self.z.wait_for(lambda: len(self.z.queue_ids()) == 2, what="two queued messages")
        self.assertEqual(self.etrn("paprika")[0], 250)
        self.wait_stored("paprika", "jan")
        time.sleep(0.5)
        self.assertEqual(self.isp.messages("appel", "mac"), [])
        self.assertEqual(self.isp.messages("komkommer", "truus"), [])
        self.assertEqual(len(self.z.queue_ids()), 2)
        rcpts = [l for l in self.client_lines() if l.startswith("RCPT")]
        self.assertEqual(rcpts, ["RCPT TO:<jan@paprika>"])
        self.assertEqual(self.etrn("@appel")[0], 250)   # the domain and its subdomains
        self.wait_stored("appel", "mac")
        self.z.wait_for(lambda: len(self.z.queue_ids()) == 1, what="one message left")
        self.assertEqual(self.etrn("#zolder")[0], 250)  # a queue name: everything
        self.wait_stored("komkommer", "truus")
        self.wait_queue_empty()
        self.assertEqual(len(self.stored("paprika", "jan")), 1)


class BackupMxTest(FaultCase):
    """RFC 5321 5.1: a 4xx (or a 421 greeting) from the first MX host: the next one, in the
    same attempt. paprika's MX hosts: mx.paprika (10) and the backup mx2.paprika (20)."""
    world = os.path.join(zolder_test.ROOT, "fixtures", "worlds", "backup-mx.world")
    conf = {}

    def setUp(self):
        IspsimCase.setUp(self)
        if not zolder_test.address_free(ZOLDER, PORT):
            self.skipTest(f"{ZOLDER}:{PORT} in use, not ours")
        self.cut_expected = False
        self.start_zolderd(self.conf)

    def test_4xx_for_a_recipient_tries_the_backup_mx(self):
        self.isp.smtp_fault("rcpt", host="mx.paprika", rcpt="piet@paprika", reply="451 4.3.0 greylisted")
        self.send(["jan@paprika", "piet@paprika"])
        self.wait_stored("paprika", "piet")
        self.wait_queue_empty()
        log = self.z.log()
        self.assertRegex(log, r"to=<piet@paprika>, relay=mx\.paprika\[127\.9\.6\.25\]:25, delay=[0-9.]+, "
                              r"dsn=4\.3\.0, status=deferred \(451 4\.3\.0 greylisted\)")
        self.assertRegex(log, r"to=<piet@paprika>, relay=mx2\.paprika\[127\.9\.6\.26\]:25, delay=[0-9.]+, "
                              r"dsn=2\.0\.0, status=sent")
        self.assertRegex(log, r"to=<jan@paprika>, relay=mx\.paprika\[127\.9\.6\.25\]:25, .*status=sent")
        # jan went once, through the first MX; piet through the backup
        self.assertEqual(len(self.stored("paprika", "jan")), 1)
        self.assertEqual(len(self.stored("paprika", "piet")), 1)
        self.assertEqual(log.count("status=deferred"), 1)

    def test_421_greeting_tries_the_backup_mx(self):
        self.isp.smtp_fault("greeting", host="mx.paprika", reply="421 4.3.2 too busy")
        self.send(["jan@paprika"])
        self.wait_stored("paprika", "jan")
        self.wait_queue_empty()
        self.assertRegex(self.z.log(), r"to=<jan@paprika>, relay=mx2\.paprika\[127\.9\.6\.26\]:25, .*status=sent")
        self.assertNotIn("status=deferred", self.z.log())

    def test_both_defer_then_the_retry_delivers(self):
        self.isp.smtp_fault("rcpt", reply="450 4.2.0 mailbox busy")
        self.send(["jan@paprika"])
        self.z.wait_for(lambda: self.z.log().count("status=deferred") >= 2, what="two deferrals")
        log = self.z.log()
        self.assertIn("relay=mx.paprika[127.9.6.25]:25", log)
        self.assertIn("relay=mx2.paprika[127.9.6.26]:25", log)
        self.assertEqual(len(self.z.queue_ids()), 1)
        self.isp.clear_faults()
        self.wait_stored("paprika", "jan")   # the backoff's retry (retry_min_delay = 1)
        self.wait_queue_empty()


SINK = "127.0.1.43"
SINK_PORT = 2526


class SmtpSinkTest(unittest.TestCase):
    """Interop: delivery to Debian's Postfix smtp-sink (announces DSN, not SIZE; with -8 no
    8BITMIME), which dumps each transaction with its MAIL and RCPT arguments."""

    def start_sink(self, *options):
        binary = "/usr/sbin/smtp-sink"
        if not os.path.exists(binary):
            self.skipTest("smtp-sink not installed (postfix)")
        if not zolder_test.address_free(SINK, SINK_PORT):
            self.skipTest(f"{SINK}:{SINK_PORT} in use, not ours")
        import tempfile
        self.dump = tempfile.mkdtemp(prefix="smtp-sink-")
        os.chmod(self.dump, 0o777)
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        sink = subprocess.Popen([binary, *user, *options, "-d", os.path.join(self.dump, "%M."),
                                 f"{SINK}:{SINK_PORT}", "10"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

        def stop():
            sink.kill()   # by its PID: ours
            sink.wait()
            import shutil
            shutil.rmtree(self.dump, ignore_errors=True)
        self.addCleanup(stop)
        deadline = time.monotonic() + 5
        while zolder_test.address_free(SINK, SINK_PORT) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.z = Zolderd(address=ZOLDER, port=PORT, conf={
            "smarthost": f"[{SINK}]:{SINK_PORT}", "dns": "nodns", "retry_min_delay": "1",
            "retry_max_delay": "2"})
        self.addCleanup(self.z.cleanup)
        self.z.start()

    def dumps(self):
        out = []
        for name in sorted(os.listdir(self.dump)):
            with open(os.path.join(self.dump, name), "rb") as f:
                out.append(f.read().decode("utf-8", "replace"))
        return out

    def send(self, body, mail_options=(), rcpt_options=()):
        with smtplib.SMTP(ZOLDER, PORT, source_address=(LAN_HOST, 0), timeout=10) as s:
            s.ehlo("ecs.thuis")
            self.assertEqual(s.sendmail("sjoerd@zolder.thuis", ["jan@paprika"], body,
                                        mail_options=list(mail_options),
                                        rcpt_options=list(rcpt_options)), {})

    def test_delivery_passes_the_dsn_parameters_on(self):
        self.start_sink()
        self.send(MSG.format(subject="naar de gootsteen"), mail_options=["RET=HDRS", "ENVID=QQ314159"],
                  rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;Jan@Paprika"])
        self.z.wait_for(lambda: not self.z.queue_ids(), what="an empty queue")
        self.z.wait_for(self.dumps, what="the dump")
        dump, = self.dumps()
        self.assertIn("X-Mail-Args: <sjoerd@zolder.thuis> RET=HDRS ENVID=QQ314159\n", dump)
        self.assertIn("X-Rcpt-Args: <jan@paprika> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Jan@Paprika\n", dump)
        self.assertIn("Subject: naar de gootsteen", dump)
        self.assertIn("\n.a line that starts with a dot\n", dump.replace("\r\n", "\n"))
        self.assertRegex(self.z.log(), r"to=<jan@paprika>, relay=127\.0\.1\.43\[127\.0\.1\.43\]:2526, "
                                       r"delay=[0-9.]+, dsn=2\.0\.0, status=sent")
        # the next hop took NOTIFY: the success report is its business, not zolder's
        time.sleep(0.3)
        self.assertNotIn("MAILER-DAEMON", self.z.mbox("sjoerd"))

    def test_8bit_to_a_server_without_8bitmime_is_returned(self):
        self.start_sink("-8")
        self.send("Subject: caf\u00e9\r\n\r\nsmaakt goed: caf\u00e9\r\n".encode("utf-8"),
                  mail_options=["BODY=8BITMIME"])
        self.send(MSG.format(subject="alleen ascii"), mail_options=["BODY=8BITMIME"])
        self.z.wait_for(lambda: not self.z.queue_ids(), what="an empty queue")
        self.z.wait_for(lambda: "Undelivered Mail" in self.z.mbox("sjoerd"), what="the bounce")
        bounce = self.z.mbox("sjoerd")
        self.assertIn("Status: 5.6.3", bounce)
        self.assertIn("does not offer 8BITMIME", bounce)
        # the 8BITMIME message without 8-bit bytes went as it was, without BODY=8BITMIME
        self.z.wait_for(self.dumps, what="the dump")
        dump, = self.dumps()
        self.assertIn("Subject: alleen ascii", dump)
        self.assertIn("X-Mail-Args: <sjoerd@zolder.thuis>\n", dump)


if __name__ == "__main__":
    unittest.main()
