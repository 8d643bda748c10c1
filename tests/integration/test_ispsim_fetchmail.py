"""Debian's fetchmail fetches from ispsim's POP3 (STLS) and IMAP (STARTTLS) through the modem,
checking the certificates against the test CA, into a BSMTP file (issue 3, section 7)."""

import os
import shutil
import subprocess
import unittest

from ispsim_common import CA, LINK_DEMON_POP3, LINK_PROVIDER1_IMAP, IspsimCase


@unittest.skipUnless(shutil.which("fetchmail"), "fetchmail not installed")
class TestFetchmail(IspsimCase):
    def fetch(self, poll):
        home = self.inst.path("fetchmail")
        os.makedirs(home, exist_ok=True)
        rc = os.path.join(home, "fetchmailrc")
        out = os.path.join(home, "out.bsmtp")
        if os.path.exists(out):
            os.unlink(out)
        with open(rc, "w", encoding="utf-8") as f:
            f.write("set no bouncemail\n" + poll)
        os.chmod(rc, 0o600)
        r = subprocess.run(["fetchmail", "-f", rc, "--nodetach", "--nosyslog", "-v",
                            "--bsmtp", out, "--idfile", os.path.join(home, "ids"),
                            "--pidfile", os.path.join(home, "pid")],
                           env={**os.environ, "HOME": home}, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(out, encoding="utf-8") as f:
            return f.read(), r.stdout + r.stderr

    def tls(self, name):
        return (f'  sslproto "TLS1.2+" sslcertck sslcertfile "{CA}" sslcommonname "{name}"\n'
                "  fetchall\n")

    def test_pop3_with_stls(self):
        self.isp.inject("mailstore", "sjoerd", "From: jan@paprika\nSubject: pop\n\nVia POP3.\n")
        self.isp.inject("mailstore", "sjoerd", "Subject: twee\n\n.punt\n")
        bsmtp, log = self.fetch(
            f"poll pop3.demon.nl via {LINK_DEMON_POP3} protocol pop3 port 110 timeout 20:\n"
            '  user "sjoerd" password "geheim" is "sjoerd" here\n' + self.tls("pop3.demon.nl"))
        self.assertIn("upgrade to TLS succeeded", log)
        self.assertIn("Subject: pop\n\nVia POP3.\n.\n", bsmtp)
        self.assertIn("\n..punt\n", bsmtp)  # BSMTP dot-stuffs again
        self.assertEqual(bsmtp.count("\nDATA\n"), 2)
        self.assertEqual(self.isp.messages("mailstore", "sjoerd"), [])
        self.assertEqual(self.isp.violations(), [])
        self.assertEqual(len(self.isp.records("tls")), 1)

    def test_imap_with_starttls(self):
        self.isp.inject("provider1", "sjoerd", "From: piet@paprika\nSubject: imap\n\nVia IMAP.\n")
        bsmtp, log = self.fetch(
            f"poll imap.provider1.nl via {LINK_PROVIDER1_IMAP} protocol imap port 143 timeout 20:\n"
            '  user "sjoerd" password "geheim2" is "sjoerd" here\n' + self.tls("imap.provider1.nl"))
        self.assertIn("upgrade to TLS succeeded", log)
        self.assertIn("Subject: imap\n\nVia IMAP.\n.\n", bsmtp)
        self.assertEqual(self.isp.messages("provider1", "sjoerd"), [])
        self.assertEqual(self.isp.violations(), [])
        commands = [r["line"].split(" ", 2)[1] for r in self.isp.records("imap")
                    if r.get("dir") == "c" and " " in r["line"]]
        self.assertIn("STARTTLS", commands)
        self.assertIn("EXPUNGE", commands)


if __name__ == "__main__":
    unittest.main()
