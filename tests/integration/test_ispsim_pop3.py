"""ispsim's POP3 server (pop3.demon.nl) over the demon mailstore, read with Python's poplib."""

import poplib
import smtplib
import socket
import time

from ispsim_common import CUSTOMER, DEMON_POP3, SMARTHOST, IspsimCase


class TestPop3(IspsimCase):
    def pop(self):
        p = poplib.POP3(DEMON_POP3, 110, timeout=5)
        p.user("sjoerd")
        p.pass_("geheim")
        return p

    def test_fetch_what_the_smarthost_relayed(self):
        msg = "Subject: via de ISP\r\n\r\n.begint met een punt\r\nregel 2\r\n"
        with smtplib.SMTP(SMARTHOST, 25, source_address=(CUSTOMER, 0), timeout=5) as s:
            s.sendmail("sjoerd@zolder.thuis", ["sjoerd@sjoerd-visser.spam.demon.nl"], msg)
        self.isp.wait_relayed()
        self.isp.inject("mailstore", "sjoerd", "Subject: tweede\n\nbody\n")
        p = self.pop()
        count, size = p.stat()
        self.assertEqual(count, 2)
        self.assertIn("UIDL", p.capa())
        self.assertEqual(p.uidl()[1], [b"1 000001", b"2 000002"])
        lines = p.retr(1)[1]
        self.assertIn(b".begint met een punt", lines)
        self.assertTrue(lines[0].startswith(b"Received: from relay-14.mail.nl.demon.net by mailstore"))
        stored = self.isp.messages("mailstore", "sjoerd")[0]["size"]
        self.assertEqual(int(p.list(1).split()[2]), stored)
        top = p.top(2, 0)[1]
        self.assertEqual(top, [b"Subject: tweede", b""])
        p.dele(1)
        p.quit()
        self.assertEqual([m["uid"] for m in self.isp.messages("mailstore", "sjoerd")], [2])
        self.assertEqual(self.isp.violations(), [])

    def test_rset_and_dropped_connection_keep_messages(self):
        self.isp.inject("mailstore", "sjoerd", "Subject: a\n\nx\n")
        p = self.pop()
        p.dele(1)
        p.rset()
        p.quit()
        p = self.pop()
        p.dele(1)
        p.file.close()
        p.sock.close()          # no QUIT: nothing is deleted (RFC 1939 6)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not self.isp.violations():
            time.sleep(0.02)
        p = self.pop()
        self.assertEqual(p.stat()[0], 1)
        p.quit()
        self.assertEqual(self.isp.violations(), ["no-quit"])

    def test_bad_password_and_lock(self):
        p = poplib.POP3(DEMON_POP3, 110, timeout=5)
        p.user("sjoerd")
        with self.assertRaises(poplib.error_proto) as e:
            p.pass_("wrong")
        self.assertIn(b"[AUTH]", e.exception.args[0])
        p.quit()
        first = self.pop()
        second = poplib.POP3(DEMON_POP3, 110, timeout=5)
        second.user("sjoerd")
        with self.assertRaises(poplib.error_proto) as e:
            second.pass_("geheim")
        self.assertIn(b"[IN-USE]", e.exception.args[0])
        second.quit()
        first.quit()
        transcript = [r["line"] for r in self.isp.records("pop3") if r.get("dir") == "c"]
        self.assertIn("PASS", transcript)
        self.assertNotIn("PASS geheim", transcript)

    def test_bare_lf_is_refused(self):
        s = socket.create_connection((DEMON_POP3, 110), timeout=5)
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"CAPA\n")
        self.assertTrue(f.readline().startswith(b"-ERR"))
        s.sendall(b"QUIT\r\n")
        self.assertTrue(f.readline().startswith(b"+OK"))
        f.close()
        s.close()
        self.assertEqual(self.isp.violations(), ["bare-lf"])
