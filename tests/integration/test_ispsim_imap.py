"""ispsim's IMAP server against Python imaplib, curl (imap://, imaps://) and raw bytes."""

import imaplib
import shutil
import socket
import ssl
import subprocess
import time
import unittest

from ispsim_common import CA, LINK_PROVIDER1_IMAP, OUTSIDER, PROVIDER1_IMAP, IspsimCase

MSGS = ["From: jan@paprika\nSubject: een\n\nEerste.\n",
        "From: piet@paprika\nSubject: twee\n\nTweede.\n"]


class TestImap(IspsimCase):
    def setUp(self):
        super().setUp()
        self.uids = [self.isp.inject("provider1", "sjoerd", m) for m in MSGS]

    def login(self, host=PROVIDER1_IMAP):
        m = imaplib.IMAP4(host, 143, timeout=10)
        m.login("sjoerd", "geheim2")
        return m

    def test_poll_like_a_poller(self):
        m = self.login()
        typ, data = m.select("INBOX")
        self.assertEqual((typ, data), ("OK", [b"2"]))
        self.assertEqual(m.uid("SEARCH", None, "UNSEEN"), ("OK", [b"1 2"]))
        typ, data = m.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[])")
        self.assertEqual(typ, "OK")
        first = data[0][1].decode()
        self.assertEqual(first, MSGS[0].replace("\n", "\r\n"))
        self.assertIn(b"RFC822.SIZE %d" % len(first), data[0][0])
        # PEEK left them unseen; BODY[] marks as seen
        self.assertEqual(m.uid("SEARCH", None, "SEEN"), ("OK", [b""]))
        m.uid("FETCH", "2", "(BODY[])")
        self.assertEqual(m.uid("SEARCH", None, "SEEN"), ("OK", [b"2"]))
        typ, data = m.uid("FETCH", "1", "(BODY.PEEK[HEADER])")
        self.assertEqual(data[0][1], b"From: jan@paprika\r\nSubject: een\r\n\r\n")
        m.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
        typ, data = m.expunge()
        self.assertEqual(data, [b"1"])
        self.assertEqual(m.search(None, "ALL"), ("OK", [b"1"]))
        m.close()
        m.logout()
        self.assertEqual([x["uid"] for x in self.isp.messages("provider1", "sjoerd")], [2])
        # flags last beyond the session
        m = self.login()
        m.select("INBOX", readonly=True)
        self.assertEqual(m.fetch("1", "(FLAGS)")[1], [b"1 (FLAGS (\\Seen))"])
        m.logout()
        self.assertEqual(self.isp.violations(), [])
        lines = [r["line"] for r in self.isp.records("imap") if r.get("dir") == "c"]
        self.assertTrue(any(l.endswith(" LOGIN") for l in lines), lines)
        self.assertFalse(any("geheim2" in l for l in lines))

    def test_uid_expunge_and_status(self):
        m = self.login()
        m.select("INBOX")
        m.store("1:2", "+FLAGS", "(\\Deleted)")
        typ, data = m.uid("EXPUNGE", "2")
        self.assertEqual(typ, "OK")
        self.assertEqual([x["uid"] for x in self.isp.messages("provider1", "sjoerd")], [1])
        typ, data = m.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)")
        self.assertIn(b"MESSAGES 1", data[0])
        self.assertIn(b"UIDNEXT 3", data[0])
        m.logout()

    def test_idle_sees_new_mail(self):
        m = self.login()
        m.select("INBOX")
        tag = m._new_tag().decode()
        m.send(f"{tag} IDLE\r\n".encode())
        self.assertTrue(m.readline().startswith(b"+ "))
        self.isp.inject("provider1", "sjoerd", "Subject: drie\n\nDerde.\n")
        m.sock.settimeout(5)
        self.assertEqual(m.readline(), b"* 3 EXISTS\r\n")
        m.send(b"DONE\r\n")
        line = m.readline()
        while line.startswith(b"*"):
            line = m.readline()
        self.assertEqual(line, f"{tag} OK IDLE terminated\r\n".encode())
        m.logout()

    def test_starttls_993_and_authenticate_plain(self):
        ctx = ssl.create_default_context(cafile=CA)
        m = imaplib.IMAP4(PROVIDER1_IMAP, 143, timeout=10)
        self.assertIn("STARTTLS", m.capabilities)
        m.host = "imap.provider1.nl"  # for the certificate check
        m.starttls(ssl_context=ctx)
        m.authenticate("PLAIN", lambda _: b"\0sjoerd\0geheim2")
        self.assertEqual(m.select("INBOX")[0], "OK")
        m.logout()
        ctx.check_hostname = False
        m = imaplib.IMAP4_SSL(LINK_PROVIDER1_IMAP, 993, ssl_context=ctx, timeout=10)
        self.assertNotIn("STARTTLS", m.capabilities)
        m.login("sjoerd", "geheim2")
        self.assertEqual(m.select("INBOX")[1], [b"2"])
        m.logout()
        self.assertEqual({r["proto"] for r in self.isp.records("tls")}, {"imap"})
        self.isp.call("tls.set", host="imap.provider1.nl", starttls=False)
        m = imaplib.IMAP4(PROVIDER1_IMAP, 143, timeout=10)
        self.assertNotIn("STARTTLS", m.capabilities)
        m.logout()

    def test_wrong_password_and_literals_raw(self):
        m = imaplib.IMAP4(PROVIDER1_IMAP, 143, timeout=10)
        with self.assertRaises(imaplib.IMAP4.error):
            m.login("sjoerd", "fout")
        m.logout()
        s = socket.create_connection((PROVIDER1_IMAP, 143), timeout=5, source_address=(OUTSIDER, 0))
        f = s.makefile("rb")
        self.assertTrue(f.readline().startswith(b"* OK"))
        s.sendall(b"a LOGIN {6}\r\n")
        self.assertEqual(f.readline(), b"+ Ready for literal data\r\n")
        s.sendall(b"sjoerd {7+}\r\ngeheim2\r\n")
        self.assertTrue(f.readline().startswith(b"a OK "))
        s.sendall(b"b SELECT INBOX\nc LOGOUT\r\n")
        self.assertEqual(f.readline(), b"* BAD lines end in CRLF\r\n")
        self.assertEqual(f.readline(), b"* BYE ispsim logging out\r\n")
        self.assertEqual(f.readline(), b"c OK LOGOUT completed\r\n")
        self.assertEqual(f.readline(), b"")
        s.close()
        self.assertEqual(self.isp.violations(), ["bare-lf"])
        # a client that just goes away
        s = socket.create_connection((PROVIDER1_IMAP, 143), timeout=5, source_address=(OUTSIDER, 0))
        s.recv(1000)
        s.close()
        deadline = time.monotonic() + 5
        while len(self.isp.violations()) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(self.isp.violations(), ["bare-lf", "no-logout"])

    @unittest.skipUnless(shutil.which("curl"), "curl not installed")
    def test_curl(self):
        r = subprocess.run(["curl", "-sS", "--interface", OUTSIDER, "--user", "sjoerd:geheim2",
                            f"imap://{LINK_PROVIDER1_IMAP}/INBOX;UID=2"],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, MSGS[1].replace("\n", "\r\n").encode())
        r = subprocess.run(["curl", "-sS", "--cacert", CA, "--interface", OUTSIDER,
                            "--resolve", f"imap.provider1.nl:993:{LINK_PROVIDER1_IMAP}",
                            "--user", "sjoerd:geheim2", "imaps://imap.provider1.nl/INBOX",
                            "-X", "UID SEARCH ALL"], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"* SEARCH 1 2", r.stdout)
        self.assertEqual(self.isp.violations(), [])


if __name__ == "__main__":
    unittest.main()
