"""Integration tests for CONDSTORE (RFC 7162) in zolderd's IMAP service: HIGHESTMODSEQ at
SELECT, FETCH MODSEQ and CHANGEDSINCE, MODSEQ with every FLAGS once enabled (also for changes
made by another session), STORE UNCHANGEDSINCE with MODIFIED, SEARCH MODSEQ, STATUS
HIGHESTMODSEQ, ENABLE; MODSEQs survive kill -9 and an expunge raises HIGHESTMODSEQ."""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_imapd import ImapCase  # noqa: E402


def modseqs(data):
    """{sequence number: MODSEQ} from FETCH responses."""
    out = {}
    for item in data:
        line = item if isinstance(item, bytes) else item[0]
        m = re.match(rb"(\d+) \(.*MODSEQ \((\d+)\)", line)
        if m:
            out[int(m.group(1))] = int(m.group(2))
    return out


class ImapCondstoreTest(ImapCase):
    def test_condstore(self):
        self.deliver(1, 2, 3)
        a = self.imap(select=False)
        self.assertIn("CONDSTORE", a.capabilities)
        typ, data = a._simple_command("SELECT", "INBOX", "(CONDSTORE)")
        self.assertEqual(typ, "OK", data)
        a.state = "SELECTED"  # imaplib's select() knows no parameters
        highest = int(a.untagged_responses.pop("HIGHESTMODSEQ")[0])
        self.assertGreaterEqual(highest, 1)
        first = modseqs(self.ok(a.fetch("1:*", "(FLAGS MODSEQ)")))
        self.assertEqual(sorted(first), [1, 2, 3])
        self.assertTrue(all(1 <= v <= highest for v in first.values()))

        # another session's change reaches a with its new MODSEQ
        b = self.imap()
        self.ok(b.store("2", "+FLAGS", "(\\Flagged)"))
        a.untagged_responses.clear()
        a.noop()
        fetched = a.untagged_responses.pop("FETCH", [])
        self.assertEqual(len(fetched), 1, fetched)
        m = re.match(rb"2 \(UID 2 FLAGS \(\\Flagged \\Recent\) MODSEQ \((\d+)\)\)", fetched[0])
        self.assertTrue(m, fetched)
        two = int(m.group(1))
        self.assertGreater(two, highest)

        # STORE UNCHANGEDSINCE: message 2 changed since first[2]; message 1 did not
        typ, data = a._simple_command("STORE", "1:2", f"(UNCHANGEDSINCE {first[2]})", "+FLAGS", "(\\Seen)")
        self.assertEqual(typ, "OK", data)
        self.assertRegex(data[0], rb"^\[MODIFIED 2\]")
        stored = a.untagged_responses.pop("FETCH", [])
        self.assertEqual(len(stored), 1, stored)
        self.assertRegex(stored[0], rb"^1 \(FLAGS \(\\Seen \\Recent\) MODSEQ \(\d+\)\)$")
        one = int(re.search(rb"MODSEQ \((\d+)\)", stored[0]).group(1))
        self.assertGreater(one, two)
        self.assertNotIn(b"\\Seen", self.ok(b.fetch("2", "FLAGS"))[0])  # not stored

        # FETCH CHANGEDSINCE: only what changed after the first look
        changed = modseqs(self.ok(a.fetch("1:*", f"(FLAGS) (CHANGEDSINCE {highest})")))
        self.assertEqual(changed, {1: one, 2: two})
        # SEARCH MODSEQ, with the highest MODSEQ of what was found
        typ, data = a.search(None, "MODSEQ", str(two))
        self.assertEqual(typ, "OK")
        self.assertEqual(data, [f"1 2 (MODSEQ {one})".encode()])
        # STATUS HIGHESTMODSEQ (from another session), ENABLE
        self.assertEqual(self.ok(b.status("INBOX", "(HIGHESTMODSEQ)")), [f"INBOX (HIGHESTMODSEQ {one})".encode()])
        c = self.imap(select=False)
        typ, data = c._simple_command("ENABLE", "CONDSTORE")
        self.assertEqual(typ, "OK", data)
        self.assertEqual(c.untagged_responses.pop("ENABLED", None), [b"CONDSTORE"])
        c.select("INBOX")
        self.assertIn(b"MODSEQ", self.ok(c.fetch("1", "(FLAGS)"))[0])
        # without CONDSTORE, FLAGS come alone
        self.assertNotIn(b"MODSEQ", self.ok(b.fetch("1", "(FLAGS)"))[0])

        # they survive a crash, and an expunge raises HIGHESTMODSEQ
        for m in (a, b, c):
            m.logout()
        self.z.kill9()
        self.z.start()
        d = self.imap(select=False)
        d._simple_command("SELECT", "INBOX", "(CONDSTORE)")
        d.state = "SELECTED"
        self.assertEqual(int(d.untagged_responses.pop("HIGHESTMODSEQ")[0]), one)
        self.assertEqual(modseqs(self.ok(d.fetch("1:2", "(MODSEQ)"))), {1: one, 2: two})
        self.ok(d.store("3", "+FLAGS.SILENT", "(\\Deleted)"))
        self.ok(d.expunge())
        after = int(self.ok(d.status("INBOX", "(HIGHESTMODSEQ)"))[0].split()[-1].rstrip(b")"))
        self.assertGreater(after, one + 1)  # the \\Deleted, then the expunge
        d.logout()


if __name__ == "__main__":
    unittest.main()
