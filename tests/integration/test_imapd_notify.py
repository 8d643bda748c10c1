"""Integration tests for in-process change notification (issue 7 section 6): IMAP sessions in
IDLE hear at once of changes made by other sessions of the same zolderd (STORE, EXPUNGE,
APPEND) and by its local delivery (mail arriving over SMTP), instead of at their next poll
(IMAPD_IDLE_POLL_SEC = 2 s); the poll still finds changes made by other programs.

Each change must show in the idling session within FAST seconds. With polling only, a change
lands within FAST of the next poll about FAST/2 of the time; four changes in a row all do so
with a probability of about (FAST/2)^4 = 0.4 %: the test fails without the notification."""

import os
import smtplib
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_imapd import ADDRESS, LAN_HOST, ImapCase, message  # noqa: E402

FAST = 0.5        # seconds: well under the 2 s poll
POLL_LIMIT = 5.0  # the poll (2 s) plus slack on a loaded machine


class ImapNotifyTest(ImapCase):
    def idle(self, m):
        tag = m._new_tag().decode()
        m.send(f"{tag} IDLE\r\n".encode())
        self.assertTrue(m.readline().startswith(b"+ "))
        return tag

    def done(self, m, tag):
        m.send(b"DONE\r\n")
        m.sock.settimeout(10)
        while True:
            line = m.readline()
            self.assertTrue(line, "connection closed")
            if line.startswith(tag.encode()):
                self.assertIn(b" OK ", line)
                return

    def wait_line(self, m, wanted, limit):
        """Reads untagged lines until one equals wanted; the time it arrived."""
        deadline = time.time() + limit
        seen = []
        while True:
            left = deadline - time.time()
            if left <= 0:
                self.fail(f"{wanted!r} not seen within {limit} s; saw {seen!r}")
            m.sock.settimeout(left)
            try:
                line = m.readline()
            except TimeoutError:
                continue
            seen.append(line)
            if line == wanted:
                return time.time()

    def test_idle_hears_other_sessions_and_delivery_at_once(self):
        self.deliver(1, 2, 3)
        a = self.imap()
        b = self.imap()
        tag = self.idle(a)

        # STORE by another session
        time.sleep(0.3)
        self.ok(b.store("1", "+FLAGS", "(\\Flagged)"))
        t0 = time.time()
        t = self.wait_line(a, b"* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))\r\n", POLL_LIMIT)
        self.assertLess(t - t0, FAST, "STORE not pushed")

        # APPEND by another session
        time.sleep(0.3)
        self.ok(b.append("INBOX", None, None, message(4).encode()))
        t0 = time.time()
        t = self.wait_line(a, b"* 4 EXISTS\r\n", POLL_LIMIT)
        self.assertLess(t - t0, FAST, "APPEND not pushed")

        # EXPUNGE by another session
        time.sleep(0.3)
        self.ok(b.store("2", "+FLAGS.SILENT", "(\\Deleted)"))
        self.ok(b.expunge())
        t0 = time.time()
        t = self.wait_line(a, b"* 2 EXPUNGE\r\n", POLL_LIMIT)
        self.assertLess(t - t0, FAST, "EXPUNGE not pushed")

        # local delivery of a message from SMTP: from the moment it is in the mbox
        time.sleep(0.3)
        path = self.z.mbox_path("bouke")
        with smtplib.SMTP(ADDRESS, self.z.port, source_address=(LAN_HOST, 0), timeout=10) as s:
            s.sendmail("sjoerd@zolder.thuis", ["bouke@zolder.thuis"], message(5))
        t = self.wait_line(a, b"* 4 EXISTS\r\n", POLL_LIMIT)
        self.assertIn("Subject: bericht 5", self.z.mbox("bouke"))
        written = os.stat(path).st_mtime_ns / 1e9
        self.assertLess(t - written, FAST, "delivery not pushed")

        self.done(a, tag)
        self.assertEqual(self.ok(a.fetch("1:*", "(UID)")), [b"1 (UID 1)", b"2 (UID 3)", b"3 (UID 4)", b"4 (UID 5)"])
        a.logout()
        b.logout()

    def test_poll_still_finds_other_programs(self):
        self.deliver(1)
        a = self.imap()
        tag = self.idle(a)
        with open(self.z.mbox_path("bouke"), "a") as f:  # as procmail or mutt would
            f.write("From someone@example.net Sat Nov 28 10:00:00 2026\nSubject: met de hand\n\nhand\n\n")
        self.wait_line(a, b"* 2 EXISTS\r\n", POLL_LIMIT)
        self.done(a, tag)
        a.logout()


if __name__ == "__main__":
    unittest.main()
