"""Integration tests for QRESYNC (RFC 7162 section 3.2) in zolderd's IMAP service: ENABLE
QRESYNC, SELECT/EXAMINE ... (QRESYNC ...) after another session expunged and stored while the
client was away (exact VANISHED (EARLIER) and FETCH lines, known UIDs, sequence match data,
UIDVALIDITY mismatch), [CLOSED], VANISHED instead of EXPUNGE once enabled (own EXPUNGE, UID
EXPUNGE, MOVE, other sessions' expunges at NOOP and in IDLE), UID FETCH (CHANGEDSINCE n
VANISHED), and the BAD answers. A small socket client keeps every response line in order."""

import os
import re
import smtplib
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_imapd import (ADDRESS, IMAP_PORT, LAN_HOST, PASSWORD, SMTP_PORT, ImapCase, Zolderd,  # noqa: E402
                        crypt_hash, message)


class Raw:
    """A line-level IMAP client: cmd() returns the untagged lines and the tagged one, in order."""

    def __init__(self, case):
        self.sock = socket.create_connection((ADDRESS, IMAP_PORT), 10, source_address=("127.0.0.1", 0))
        self.buf = b""
        self.n = 0
        case.addCleanup(self.close)
        greeting = self.line()
        case.assertTrue(greeting.startswith("* OK"), greeting)
        self.capability = greeting

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def line(self, timeout=10):
        self.sock.settimeout(timeout)
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")

    def cmd(self, text):
        """(untagged lines, tagged line) of one command."""
        self.n += 1
        tag = f"r{self.n}"
        self.send(f"{tag} {text}")
        untagged = []
        while True:
            line = self.line()
            if line.startswith(tag + " "):
                return untagged, line[len(tag) + 1:]
            untagged.append(line)

    def ok(self, case, text):
        untagged, tagged = self.cmd(text)
        case.assertTrue(tagged.startswith("OK"), f"{text}: {tagged} {untagged}")
        return untagged

    def login(self, case, qresync=True):
        self.ok(case, f'LOGIN bouke "{PASSWORD}"')
        if qresync:
            case.assertEqual(self.ok(case, "ENABLE QRESYNC"), ["* ENABLED QRESYNC"])


def code(lines, name):
    """The value of an untagged OK [NAME value] response code."""
    for line in lines:
        m = re.match(rf"\* OK \[{name} (\d+)\]", line)
        if m:
            return int(m.group(1))
    raise AssertionError(f"no {name} in {lines}")


def news(lines):
    """The lines a QRESYNC SELECT adds after HIGHESTMODSEQ (VANISHED and FETCH), in order."""
    return [line for line in lines if line.startswith("* VANISHED") or " FETCH " in line]


class ImapQresyncTest(ImapCase):
    def modseqs(self, m):
        """{UID: MODSEQ} of the INBOX as imaplib session m sees it."""
        out = {}
        for item in self.ok(m.uid("FETCH", "1:*", "(MODSEQ)")):
            u = re.search(rb"UID (\d+)", item)
            s = re.search(rb"MODSEQ \((\d+)\)", item)
            out[int(u.group(1))] = int(s.group(1))
        return out

    def away_and_back(self):
        """A client selects (QRESYNC enabled) and logs out; another session expunges UIDs 3
        and 5 and stores on 2 and 6. Returns (UIDVALIDITY, the HIGHESTMODSEQ the client saw,
        the MODSEQs now)."""
        self.deliver(1, 2, 3, 4, 5, 6)
        a = Raw(self)
        a.login(self)
        lines = a.ok(self, "SELECT INBOX")
        self.assertIn("* 6 EXISTS", lines)
        validity, seen = code(lines, "UIDVALIDITY"), code(lines, "HIGHESTMODSEQ")
        a.ok(self, "LOGOUT")
        b = self.imap()
        self.ok(b.store("2", "+FLAGS", "(\\Flagged)"))
        self.ok(b.store("3,5", "+FLAGS.SILENT", "(\\Deleted)"))
        self.ok(b.expunge())
        self.ok(b.uid("STORE", "6", "+FLAGS", "(\\Seen)"))
        now = self.modseqs(b)
        self.assertEqual(sorted(now), [1, 2, 4, 6])
        b.logout()
        return validity, seen, now

    def test_select_qresync(self):
        validity, seen, now = self.away_and_back()
        self.assertTrue(now[1] <= seen and now[4] <= seen and now[2] > seen and now[6] > seen, (seen, now))
        expected = ["* VANISHED (EARLIER) 3,5",
                    f"* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ ({now[2]}))",
                    f"* 4 FETCH (UID 6 FLAGS (\\Seen) MODSEQ ({now[6]}))"]
        a = Raw(self)
        a.login(self)
        lines = a.ok(self, f"SELECT INBOX (QRESYNC ({validity} {seen} 1:6))")
        self.assertEqual(news(lines), expected)
        # after the usual responses: HIGHESTMODSEQ comes before the news
        self.assertLess(lines.index(next(x for x in lines if "HIGHESTMODSEQ" in x)), lines.index(expected[0]))
        self.assertIn("* 4 EXISTS", lines)
        # a second SELECT closes the first mailbox: [CLOSED] comes first
        lines = a.ok(self, f"EXAMINE INBOX (QRESYNC ({validity} {seen}))")
        self.assertEqual(lines[0], "* OK [CLOSED] Previous mailbox closed.")
        self.assertEqual(news(lines), expected)  # no known UIDs: 1:UIDNEXT-1
        # known UIDs past UIDNEXT-1 are not told (never used), nor is anything outside the set
        self.assertEqual(news(a.ok(self, f"SELECT INBOX (QRESYNC ({validity} {seen} 1:100))")), expected)
        self.assertEqual(news(a.ok(self, f"SELECT INBOX (QRESYNC ({validity} {seen} 1:4294967295))")), expected)
        self.assertEqual(news(a.ok(self, f"SELECT INBOX (QRESYNC ({validity} {seen} 1:2,6))")),
                         expected[1:])
        self.assertEqual(news(a.ok(self, f"SELECT INBOX (QRESYNC ({validity} {seen} 5,1,3))")),
                         ["* VANISHED (EARLIER) 3,5"])
        # sequence match data: 1,2,3 are still UIDs 1,2,4: the client knows every expunge up
        # to UID 4, so only 5 is told; a pair that does not match (3 is UID 4, not 3) stops
        # the matching after UID 2
        self.assertEqual(news(a.ok(self, f"SELECT INBOX (QRESYNC ({validity} {seen} 1:6 (1:3 1,2,4)))")),
                         ["* VANISHED (EARLIER) 5"] + expected[1:])
        self.assertEqual(news(a.ok(self, f"SELECT INBOX (QRESYNC ({validity} {seen} 1:6 (1,3 1,3)))")), expected)
        self.assertEqual(news(a.ok(self, f"SELECT INBOX (QRESYNC ({validity} {seen} (1:4 1,2,4,6)))")),
                         expected[1:])
        # nothing changed since the newest MODSEQ: no FETCH; the expunged UIDs are told all
        # the same (no MODSEQ is kept for an expunge: RFC 7162 5.1)
        highest = max(now.values())
        lines = a.ok(self, f"SELECT INBOX (QRESYNC ({validity} {highest} 1:6))")
        self.assertEqual(news(lines), expected[:1])
        self.assertGreaterEqual(code(lines, "HIGHESTMODSEQ"), highest)
        # MODSEQ 0: every known message is told
        self.assertEqual(len(news(a.ok(self, f"SELECT INBOX (QRESYNC ({validity} 0 1:6))"))), 5)
        # another UIDVALIDITY: nothing beyond the usual responses
        lines = a.ok(self, f"SELECT INBOX (QRESYNC ({validity + 1} {seen} 1:6))")
        self.assertEqual(news(lines), [])
        self.assertEqual(lines[0], "* OK [CLOSED] Previous mailbox closed.")
        # QRESYNC implies CONDSTORE: FLAGS come with MODSEQ
        self.assertEqual(a.ok(self, "FETCH 2 (FLAGS)"), [f"* 2 FETCH (FLAGS (\\Flagged) MODSEQ ({now[2]}))"])

    def test_closed_without_enable(self):
        self.deliver(1)
        a = Raw(self)
        a.login(self, qresync=False)
        self.assertNotIn("[CLOSED]", " ".join(a.ok(self, "SELECT INBOX")))
        self.assertEqual(a.ok(self, "EXAMINE INBOX")[0], "* OK [CLOSED] Previous mailbox closed.")
        a.ok(self, "UNSELECT")
        self.assertNotIn("[CLOSED]", " ".join(a.ok(self, "SELECT INBOX")))
        self.assertEqual(a.ok(self, "ENABLE CONDSTORE"), ["* ENABLED CONDSTORE"])
        self.assertEqual(a.ok(self, "SELECT INBOX")[0], "* OK [CLOSED] Previous mailbox closed.")
        # ENABLE lists only what it newly enabled; QRESYNC after CONDSTORE
        self.assertEqual(a.ok(self, "ENABLE CONDSTORE QRESYNC"), ["* ENABLED QRESYNC"])
        self.assertEqual(a.ok(self, "ENABLE QRESYNC"), ["* ENABLED"])
        c = Raw(self)
        c.ok(self, f'LOGIN bouke "{PASSWORD}"')
        self.assertEqual(c.ok(self, "ENABLE QRESYNC CONDSTORE"), ["* ENABLED CONDSTORE QRESYNC"])
        caps = c.ok(self, "CAPABILITY")[0].split()
        self.assertIn("QRESYNC", caps)
        self.assertIn("CONDSTORE", caps)
        # a CLOSE that expunged says the new HIGHESTMODSEQ (RFC 7162 3.2.8); UNSELECT does not
        c.ok(self, "SELECT INBOX")
        self.assertEqual(c.cmd("UNSELECT"), ([], "OK UNSELECT completed."))
        lines = c.ok(self, "SELECT INBOX")
        before = code(lines, "HIGHESTMODSEQ")
        c.ok(self, "STORE 1 +FLAGS.SILENT (\\Deleted)")
        untagged, tagged = c.cmd("CLOSE")
        self.assertEqual(untagged, [])
        self.assertGreater(int(re.match(r"OK \[HIGHESTMODSEQ (\d+)\] Close completed\.$", tagged).group(1)),
                           before + 1)
        self.assertIn("* 0 EXISTS", c.ok(self, "SELECT INBOX"))

    def test_vanished_instead_of_expunge(self):
        self.deliver(1, 2, 3, 4, 5, 6, 7, 8)
        a = Raw(self)
        a.login(self)
        a.ok(self, "SELECT INBOX")
        plain = self.imap()  # no QRESYNC: EXPUNGE as ever
        b = self.imap()
        # another session's expunge, seen at NOOP
        self.ok(b.store("2,4,5", "+FLAGS.SILENT", "(\\Deleted)"))
        self.ok(b.expunge())
        lines = a.ok(self, "NOOP")
        self.assertEqual([x for x in lines if "VANISHED" in x or "EXPUNGE" in x], ["* VANISHED 2,4:5"])
        self.assertIn("* 5 EXISTS", lines)
        plain.noop()
        self.assertEqual(plain.untagged_responses.pop("EXPUNGE", []), [b"2", b"3", b"3"])
        # its own EXPUNGE and UID EXPUNGE
        a.ok(self, "STORE 1,2 +FLAGS.SILENT (\\Deleted)")  # UIDs 1 and 3
        # (their tagged OK carries the new HIGHESTMODSEQ: RFC 7162 3.2.7, 3.2.9)
        lines, tagged = a.cmd("UID EXPUNGE 3")
        self.assertEqual([x for x in lines if "VANISHED" in x or "EXPUNGE" in x], ["* VANISHED 3"])
        first = int(re.match(r"OK \[HIGHESTMODSEQ (\d+)\] ", tagged).group(1))
        lines, tagged = a.cmd("EXPUNGE")
        self.assertEqual([x for x in lines if "VANISHED" in x or "EXPUNGE" in x], ["* VANISHED 1"])
        self.assertGreater(int(re.match(r"OK \[HIGHESTMODSEQ (\d+)\] ", tagged).group(1)), first)
        self.assertEqual(a.cmd("EXPUNGE"), ([], "OK Expunge completed."))  # nothing removed
        # MOVE (RFC 6851 with QRESYNC: VANISHED after the COPYUID)
        a.ok(self, "CREATE Archief")
        lines = a.ok(self, "UID MOVE 6:7 Archief")
        self.assertTrue(any(re.match(r"^\* OK \[COPYUID \d+ 6:7 1:2\]", x) for x in lines), lines)
        self.assertEqual([x for x in lines if "VANISHED" in x or "EXPUNGE" in x], ["* VANISHED 6:7"])
        # in IDLE: another session's expunge comes at once as VANISHED
        a.n += 1
        a.send(f"r{a.n} IDLE")
        self.assertTrue(a.line().startswith("+"))
        b.select("INBOX")
        self.ok(b.uid("STORE", "8", "+FLAGS.SILENT", "(\\Deleted)"))
        self.ok(b.expunge())
        seen = []
        deadline = time.monotonic() + 10
        while not any("VANISHED" in x for x in seen) and time.monotonic() < deadline:
            seen.append(a.line(timeout=10))
        self.assertIn("* VANISHED 8", seen)
        self.assertFalse([x for x in seen if "EXPUNGE" in x], seen)
        a.send("DONE")
        while True:
            line = a.line()
            if line.startswith(f"r{a.n} "):
                self.assertTrue(line.startswith(f"r{a.n} OK"), line)
                break
        self.assertEqual(a.ok(self, "UID SEARCH ALL"), ["* SEARCH"])

    def test_uid_fetch_vanished(self):
        validity, seen, now = self.away_and_back()
        a = Raw(self)
        a.login(self)
        a.ok(self, "SELECT INBOX")
        lines = a.ok(self, f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {seen} VANISHED)")
        self.assertEqual(lines, ["* VANISHED (EARLIER) 3,5",
                                 f"* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ ({now[2]}))",
                                 f"* 4 FETCH (UID 6 FLAGS (\\Seen) MODSEQ ({now[6]}))"])
        self.assertEqual(a.ok(self, f"UID FETCH 4:5 (FLAGS) (CHANGEDSINCE {seen} VANISHED)"),
                         ["* VANISHED (EARLIER) 5"])
        self.assertEqual(a.ok(self, f"UID FETCH 1:2 (FLAGS) (VANISHED CHANGEDSINCE {seen})"),
                         [f"* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ ({now[2]}))"])
        # past UIDNEXT-1 nothing is told; a huge set costs nothing
        start = time.monotonic()
        self.assertEqual(a.ok(self, f"UID FETCH 7:4294967295 (FLAGS) (CHANGEDSINCE {seen} VANISHED)"), [])
        lines = a.ok(self, "UID FETCH 1:4294967295 (FLAGS) (CHANGEDSINCE 1 VANISHED)")
        self.assertEqual(lines[0], "* VANISHED (EARLIER) 3,5")
        self.assertEqual(len(lines), 5)
        self.assertLess(time.monotonic() - start, 5)

    def test_bad(self):
        self.deliver(1, 2)
        a = Raw(self)
        a.login(self, qresync=False)
        lines = a.ok(self, "SELECT INBOX")
        validity = code(lines, "UIDVALIDITY")
        # QRESYNC parameters before ENABLE QRESYNC: BAD, and the mailbox stays selected
        for text in (f"SELECT INBOX (QRESYNC ({validity} 1))",
                     f"EXAMINE INBOX (QRESYNC ({validity} 1 1:2))",
                     "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)"):
            untagged, tagged = a.cmd(text)
            self.assertTrue(tagged.startswith("BAD"), (text, tagged))
            self.assertEqual(untagged, [])
        self.assertEqual(len(a.ok(self, "FETCH 1:* (FLAGS)")), 2)
        self.assertEqual(a.ok(self, "ENABLE QRESYNC"), ["* ENABLED QRESYNC"])
        too_many = ",".join(str(2 * i + 1) for i in range(1025))
        for text in ("FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)",
                     "UID FETCH 1:* (FLAGS) (VANISHED)",
                     "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 0 VANISHED)",
                     "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED VANISHED)",
                     "SELECT INBOX (QRESYNC)",
                     "SELECT INBOX (QRESYNC (0 1))",
                     f"SELECT INBOX (QRESYNC ({validity}))",
                     f"SELECT INBOX (QRESYNC ({validity} 1 1:*))",
                     f"SELECT INBOX (QRESYNC ({validity} 1 1:2 (1:* 1:2)))",
                     f"SELECT INBOX (QRESYNC ({validity} 1 1:2 (1,2 1)))",
                     f"SELECT INBOX (QRESYNC ({validity} 1 1:2 (2,1 1,2)))",
                     f"SELECT INBOX (QRESYNC ({validity} 99999999999999999999))",
                     f"SELECT INBOX (QRESYNC ({validity} 1 {too_many}))",
                     f"SELECT INBOX (QRESYNC ({validity} 1) QRESYNC ({validity} 1))"):
            untagged, tagged = a.cmd(text)
            self.assertTrue(tagged.startswith("BAD"), (text, tagged))
            self.assertEqual(untagged, [], text)
        # still selected, nothing changed
        self.assertEqual(len(a.ok(self, "FETCH 1:* (FLAGS)")), 2)
        # 1024 ranges are fine
        ok_many = ",".join(str(2 * i + 1) for i in range(1024))
        lines = a.ok(self, f"SELECT INBOX (QRESYNC ({validity} 1 {ok_many}))")
        self.assertEqual(lines[0], "* OK [CLOSED] Previous mailbox closed.")
        self.assertIn("* 2 EXISTS", lines)


class ImapQresyncMaildirTest(ImapQresyncTest):
    """The same with a Maildir INBOX (mailbox_format = maildir: an expunge unlinks files)."""

    def setUp(self):
        conf = {"imap": f"{ADDRESS}:{IMAP_PORT}", "imap_timeout": "60", "filter": "no", "mailbox_format": "maildir"}
        self.z = Zolderd(address=ADDRESS, port=SMTP_PORT, conf=conf,
                         users={"bouke": crypt_hash(PASSWORD), "sjoerd": crypt_hash("ander"), "admin": "*"})
        self.addCleanup(lambda: self.z.cleanup())
        self.z.start()
        self.md = self.z.inst.path("var", "maildir", "bouke")

    def files(self):
        found = []
        for sub in ("new", "cur"):
            try:
                found += os.listdir(os.path.join(self.md, sub))
            except FileNotFoundError:
                pass
        return found

    def deliver(self, *numbers, raw=None):
        want = len(self.files()) + len(numbers)
        with smtplib.SMTP(ADDRESS, self.z.port, source_address=(LAN_HOST, 0), timeout=10) as s:
            for n in numbers:
                s.sendmail("sjoerd@zolder.thuis", ["bouke@zolder.thuis"], message(n))
                time.sleep(0.01)  # UIDs follow the files' mtimes: keep them in sending order
        self.z.wait_for(lambda: len(self.files()) >= want, what="delivery")

    def test_removed_by_another_program(self):
        """A file removed behind zolderd's back (mutt, rm) is told as VANISHED too, and as
        VANISHED (EARLIER) to a client that comes back: nothing of the expunge is recorded."""
        self.deliver(1, 2, 3)
        a = Raw(self)
        a.login(self)
        lines = a.ok(self, "SELECT INBOX")  # moves new/ to cur/
        validity, seen = code(lines, "UIDVALIDITY"), code(lines, "HIGHESTMODSEQ")
        cur = os.path.join(self.md, "cur")
        victim = []
        for name in os.listdir(cur):
            with open(os.path.join(cur, name), "rb") as f:
                if b"Subject: bericht 2\n" in f.read():
                    victim.append(name)
        self.assertEqual(len(victim), 1)
        os.unlink(os.path.join(cur, victim[0]))
        lines = a.ok(self, "NOOP")
        self.assertEqual([x for x in lines if "VANISHED" in x or "EXPUNGE" in x], ["* VANISHED 2"])
        a.ok(self, "LOGOUT")
        b = Raw(self)
        b.login(self)
        self.assertEqual(news(b.ok(self, f"SELECT INBOX (QRESYNC ({validity} {seen} 1:3))")),
                         ["* VANISHED (EARLIER) 2"])


if __name__ == "__main__":
    unittest.main()
