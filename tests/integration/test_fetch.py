"""zolder-fetch and zolderd's fetch service against ispsim's POP3 and IMAP (issue 6): the seed's
rc lines, keep mode, link cuts, 4xx from zolder, a full ISP mailbox, Debian's fetchmail side by
side. Mail goes through the modem (127.9.x.y) and into zolderd's mboxes over SMTP."""

import os
import re
import shutil
import subprocess
import sys
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

    def subjects(self, user):
        return re.findall(r"^Subject: (.*)$", self.z.mbox(user), re.M)

    def wait_subjects(self, user, n):
        self.z.wait_for(lambda: len(self.subjects(user)) >= n, 20, f"{n} messages for {user}")
        time.sleep(0.2)
        return self.subjects(user)


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
        self.assertRegex(box, r"Received: from pop3.demon.nl\n\tby zolder.thuis with POP3 "
                              r"\(zolder-fetch [0-9.]+\)\n\tfor <sjoerd@localhost> \(single-drop\);")
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


class TestFetchImap(FetchCase):
    def test_seed_line_imap(self):
        self.isp.inject("provider1", "sjoerd", message(1))
        self.isp.inject("provider1", "sjoerd", message(2))
        r = self.fetch(seed_imap(), expect=0)
        self.assertIn("2 messages for sjoerd at imap.provider1.nl", r.stdout)
        self.assertEqual(sorted(self.wait_subjects("bouke", 2)), ["test 1", "test 2"])
        self.assertRegex(self.z.mbox("bouke"), r"Received: from imap.provider1.nl\n\tby zolder.thuis "
                                                r"with IMAP \(zolder-fetch")
        self.assertEqual(self.isp.messages("provider1", "sjoerd"), [])
        self.assertEqual(self.isp.violations(), [])
        commands = [r["line"].split(" ", 2)[1] for r in self.isp.records("imap")
                    if r.get("dir") == "c" and " " in r["line"]]
        self.assertIn("STARTTLS", commands)  # offered, so used


if __name__ == "__main__":
    unittest.main()
