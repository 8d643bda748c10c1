"""Local delivery failures bounce (issue 5, section 4, for local recipients): an unknown
local user (an alias to a name with no mailbox), a permanent mailbox failure (over
mailbox_size_limit, a file where the Maildir must be) give one RFC 3464 bounce to the envelope
sender, written with the recipients' F marks in one step (reference/queue/report, shared with
outbound delivery); never to the null sender; NOTIFY honoured; a temporary failure (a locked
mailbox) stays deferred and bounces with 4.4.7 once the message is older than queue_lifetime.
No ispsim: everything here is local."""

import os
import re
import shutil
import smtplib
import time
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "helper"))
import zolder_test  # noqa: E402
from zolderd_instance import Zolderd  # noqa: E402

ZOLDER = "127.1.5.42"
LAN_HOST = "127.0.1.5"
PORT = 2525

MSG = ("From: bouke@zolder.thuis\r\nTo: ghost@zolder.thuis\r\nSubject: {subject}\r\n\r\n"
       "{body}\r\n")


class LocalBounceCase(unittest.TestCase):
    conf = {}

    def setUp(self):
        if not zolder_test.address_free(ZOLDER, PORT):
            self.skipTest(f"{ZOLDER}:{PORT} in use, not ours")
        conf = {"filter": "no", "local_retry_delay": "1"}
        conf.update(self.conf)
        self.z = Zolderd(address=ZOLDER, port=PORT, conf=conf,
                         aliases="postmaster: admin\nghost: nosuchuser\nbeide: sjoerd, nosuchuser\n")
        self.addCleanup(self.z.cleanup)
        self.prepare()
        self.z.start()

    def prepare(self):
        pass

    def send(self, rcpts, subject="hallo", body="Dag.", sender="bouke@zolder.thuis", rcpt_options=()):
        with smtplib.SMTP(ZOLDER, PORT, source_address=(LAN_HOST, 0), timeout=10) as s:
            s.ehlo("ecs.thuis")
            refused = s.sendmail(sender, rcpts, MSG.format(subject=subject, body=body),
                                 rcpt_options=list(rcpt_options))
        self.assertEqual(refused, {})

    def bounces(self, user="bouke"):
        box = self.z.mbox(user)
        msgs = [m for m in re.split(r"(?m)^From MAILER-DAEMON ", box) if m.strip()]
        return [m for m in msgs if re.search(r"(?m)^Subject: Undelivered Mail", m)]

    def wait_bounce(self, n=1, user="bouke", timeout=10):
        self.z.wait_for(lambda: len(self.bounces(user)) >= n, timeout=timeout, what=f"{n} bounce(s)")
        time.sleep(0.3)
        return self.bounces(user)

    def wait_queue_empty(self, timeout=10):
        self.z.wait_for(lambda: not self.z.queue_ids(), timeout=timeout, what="an empty queue")


class UnknownUserTest(LocalBounceCase):
    def test_alias_to_an_unknown_user_bounces_once(self):
        self.send(["ghost@zolder.thuis"], subject="aan niemand", body="geheime regel")
        bounce, = self.wait_bounce()
        self.wait_queue_empty()
        self.assertIn("Action: failed", bounce)
        self.assertIn("Status: 5.1.1", bounce)
        # a single-target alias is resolved in place: the recipient is the alias, as given
        self.assertIn("Final-Recipient: rfc822; ghost@zolder.thuis", bounce)
        self.assertIn('no mailbox: "nosuchuser"', bounce)
        self.assertIn("geheime regel", bounce)   # RET defaults to the whole message
        self.assertIn("Content-Type: multipart/report; report-type=delivery-status", bounce)
        self.assertRegex(self.z.log(), r"to=<ghost@zolder\.thuis>, relay=local, dsn=5\.1\.1, status=bounced \(no mailbox")
        time.sleep(1.5)   # a queue run later: still exactly one
        self.assertEqual(len(self.bounces()), 1)

    def test_one_good_one_unknown(self):
        self.send(["beide@zolder.thuis"], subject="half")
        bounce, = self.wait_bounce()
        self.wait_queue_empty()
        self.assertIn("Subject: half", self.z.mbox("sjoerd"))
        # an alias with several targets goes through a child queue file, which keeps ORCPT
        self.assertIn("Final-Recipient: rfc822; nosuchuser@zolder.thuis", bounce)
        self.assertIn("Original-Recipient: rfc822; beide@zolder.thuis", bounce)
        self.assertNotIn("Final-Recipient: rfc822; sjoerd", bounce)

    def test_null_sender_gets_no_bounce(self):
        self.send(["ghost@zolder.thuis"], sender="")
        self.z.wait_log("no bounce: the sender is the null sender")
        self.wait_queue_empty()
        time.sleep(0.3)
        self.assertNotIn("MAILER-DAEMON", self.z.mbox("bouke") + self.z.mbox("admin"))

    def test_notify_never_sends_no_bounce(self):
        self.send(["ghost@zolder.thuis"], rcpt_options=["NOTIFY=NEVER"])
        self.z.wait_log("no bounce: NOTIFY=NEVER")
        self.wait_queue_empty()
        time.sleep(0.3)
        self.assertEqual(self.bounces(), [])

    def test_ret_hdrs_returns_the_header_only(self):
        with smtplib.SMTP(ZOLDER, PORT, source_address=(LAN_HOST, 0), timeout=10) as s:
            s.ehlo("ecs.thuis")
            s.sendmail("bouke@zolder.thuis", ["ghost@zolder.thuis"],
                       MSG.format(subject="kop", body="geheime regel"), mail_options=["RET=HDRS"],
                       rcpt_options=["NOTIFY=FAILURE"])
        bounce, = self.wait_bounce()
        self.assertIn("Content-Type: text/rfc822-headers", bounce)
        self.assertNotIn("geheime regel", bounce)


class SizeLimitTest(LocalBounceCase):
    conf = {"mailbox_size_limit": "4000", "bounce_size_limit": "1000"}

    def test_over_the_mailbox_size_limit_bounces(self):
        self.send(["sjoerd@zolder.thuis"], subject="klein", body="kort")
        self.z.wait_for(lambda: "Subject: klein" in self.z.mbox("sjoerd"), what="the small one")
        self.send(["sjoerd@zolder.thuis"], subject="groot", body="\r\n".join(["x" * 70] * 70))
        bounce, = self.wait_bounce()
        self.wait_queue_empty()
        self.assertIn("Status: 5.2.2", bounce)
        self.assertIn("mailbox size limit exceeded", bounce)
        self.assertIn("Final-Recipient: rfc822; sjoerd@zolder.thuis", bounce)
        box = self.z.mbox("sjoerd")
        self.assertNotIn("Subject: groot", box)
        self.assertLessEqual(len(box.encode()), 4000)


class MaildirInTheWayTest(LocalBounceCase):
    conf = {"mailbox_format": "maildir"}

    def prepare(self):
        d = self.z.inst.path("var", "maildir")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "sjoerd"), "w") as f:
            f.write("not a folder\n")
        if os.geteuid() == 0:
            shutil.chown(d, "zolder", "zolder")

    def maildir_messages(self, user):
        d = self.z.inst.path("var", "maildir", user, "new")
        out = []
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            with open(os.path.join(d, name), encoding="utf-8", errors="replace") as f:
                out.append(f.read())
        return out

    def test_a_file_where_the_maildir_must_be_bounces(self):
        self.send(["sjoerd@zolder.thuis", "admin@zolder.thuis"], subject="map")
        self.z.wait_for(lambda: any("Undelivered Mail" in m for m in self.maildir_messages("bouke")),
                        what="the bounce in bouke's Maildir")
        self.wait_queue_empty()
        bounce = [m for m in self.maildir_messages("bouke") if "Undelivered Mail" in m][0]
        self.assertIn("Status: 5.2.0", bounce)
        self.assertIn("a file is in the way", bounce)
        self.assertIn("Final-Recipient: rfc822; sjoerd@zolder.thuis", bounce)
        self.assertNotIn("admin@zolder.thuis", bounce.split("Content-Type: message/delivery-status")[1]
                         .split("Content-Type: message/rfc822")[0])
        self.assertTrue(any("Subject: map" in m for m in self.maildir_messages("admin")))


class TemporaryFailureTest(LocalBounceCase):
    conf = {"queue_lifetime": "3"}

    def prepare(self):
        # a dotlock held by a live process (this test): the mailbox stays locked
        d = self.z.inst.path("var", "spool", "mail")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "sjoerd.lock"), "w") as f:
            f.write(f"{os.getpid()}\n")
        if os.geteuid() == 0:
            for p in (self.z.inst.path("var", "spool"), d):
                shutil.chown(p, "zolder", "zolder")

    def test_locked_mailbox_defers_then_bounces_at_queue_lifetime(self):
        self.send(["sjoerd@zolder.thuis"], subject="op slot")
        self.z.wait_log("status=deferred (mailbox is locked)")
        time.sleep(0.5)
        self.assertEqual(self.bounces(), [])      # deferred is not bounced
        self.assertEqual(len(self.z.queue_ids()), 1)
        bounce, = self.wait_bounce(timeout=15)
        self.wait_queue_empty()
        self.assertIn("Status: 4.4.7", bounce)
        self.assertIn("message expired after 3 seconds in the queue (last: mailbox is locked)", bounce)
        self.assertNotIn("Subject: op slot", self.z.mbox("sjoerd"))


if __name__ == "__main__":
    unittest.main()
