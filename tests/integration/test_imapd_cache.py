"""Integration tests for the mail store's process cache (reference/mailstore, issue 7 section 6):
every session of a zolderd shares one scan and one index per mailbox; what other programs do to
the mbox file must still be seen: an append (only the new tail is scanned), a mutt-style
rewrite to a new file, an in-place rewrite of the same length, a rewrite that also grows it."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_imapd import ImapCase  # noqa: E402


def hand_message(n):
    return (f"From someone@example.net Sat Nov 28 10:00:00 2026\nFrom: someone@example.net\n"
            f"Subject: met de hand {n}\n\nhand body {n}\n\n")


class ImapCacheTest(ImapCase):
    def subjects(self, m):
        data = self.ok(m.fetch("1:*", "(UID BODY.PEEK[HEADER.FIELDS (Subject)])"))
        return [x[1].decode().strip() for x in data if isinstance(x, tuple)]

    def test_append_behind_our_back_is_seen(self):
        self.deliver(1, 2)
        a = self.imap()
        b = self.imap()
        a.untagged_responses.clear()
        with open(self.z.mbox_path("bouke"), "a") as f:
            f.write(hand_message(3))
        a.noop()
        self.assertEqual(a.untagged_responses.pop("EXISTS", None), [b"3"])
        self.assertEqual(self.subjects(a), ["Subject: bericht 1", "Subject: bericht 2", "Subject: met de hand 3"])
        # the other session, and a new one, see the same UIDs and bodies
        b.noop()
        self.assertEqual(self.ok(b.fetch("1:*", "(UID)")), [b"1 (UID 1)", b"2 (UID 2)", b"3 (UID 3)"])
        self.assertIn(b"hand body 3", self.ok(b.fetch("3", "(BODY.PEEK[TEXT])"))[0][1])
        c = self.imap()
        self.assertEqual(self.ok(c.fetch("1:*", "(UID)")), [b"1 (UID 1)", b"2 (UID 2)", b"3 (UID 3)"])

    def test_rewrite_to_a_new_file_is_seen(self):
        self.deliver(1, 2, 3)
        a = self.imap()
        path = self.z.mbox_path("bouke")
        with open(path) as f:
            box = f.read()
        with open(path + ".mutt", "w") as f:
            f.write(box.replace("Regel een van 2", "Regel twee van 2"))
        os.rename(path + ".mutt", path)
        a.noop()
        # message 2 changed: a new UID, and so the one after it (UIDs ascend in file order)
        self.assertEqual(self.ok(a.fetch("1:*", "(UID)")), [b"1 (UID 1)", b"2 (UID 4)", b"3 (UID 5)"])
        self.assertIn(b"Regel twee van 2", self.ok(a.fetch("2", "(BODY.PEEK[TEXT])"))[0][1])

    def test_same_length_rewrite_in_place_is_seen(self):
        self.deliver(1, 2, 3)
        a = self.imap()
        path = self.z.mbox_path("bouke")
        st = os.stat(path)
        with open(path, "r+") as f:
            box = f.read()
            new = box.replace("Regel een van 1", "Regel EEN van 1")
            self.assertEqual(len(new), len(box))
            f.seek(0)
            f.write(new)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
        self.assertEqual(os.stat(path).st_ino, st.st_ino)
        c = self.imap()
        self.assertEqual(self.ok(c.fetch("1:*", "(UID)")), [b"1 (UID 4)", b"2 (UID 5)", b"3 (UID 6)"])
        self.assertIn(b"Regel EEN van 1", self.ok(c.fetch("1", "(BODY.PEEK[TEXT])"))[0][1])
        a.noop()
        self.assertEqual(self.ok(a.fetch("1:*", "(UID)")), [b"1 (UID 4)", b"2 (UID 5)", b"3 (UID 6)"])

    def test_rewrite_in_place_that_grows_is_not_taken_for_an_append(self):
        self.deliver(1, 2, 3)
        a = self.imap()
        path = self.z.mbox_path("bouke")
        with open(path, "r+") as f:
            box = f.read()
            f.seek(0)
            f.write(box.replace("Regel een van 1", "Regel een van 1, langer") + hand_message(4))
        a.noop()
        self.assertEqual(self.ok(a.fetch("1:*", "(UID)")),
                         [b"1 (UID 4)", b"2 (UID 5)", b"3 (UID 6)", b"4 (UID 7)"])
        self.assertEqual(self.subjects(a), ["Subject: bericht 1", "Subject: bericht 2", "Subject: bericht 3",
                                            "Subject: met de hand 4"])
        self.assertIn(b"Regel een van 1, langer", self.ok(a.fetch("1", "(BODY.PEEK[TEXT])"))[0][1])

    def test_store_by_one_session_reaches_the_other_and_survives_a_restart(self):
        self.deliver(1, 2, 3)
        a = self.imap()
        b = self.imap()
        self.ok(a.store("1:3", "+FLAGS", "(\\Flagged)"))
        self.ok(a.store("2", "+FLAGS", "(\\Seen)"))
        b.noop()
        b.untagged_responses.clear()
        self.assertEqual(self.ok(b.fetch("1:*", "(FLAGS)")),
                         [b"1 (FLAGS (\\Flagged))", b"2 (FLAGS (\\Seen \\Flagged))", b"3 (FLAGS (\\Flagged))"])
        self.z.kill9()
        self.z.start()
        c = self.imap()
        self.assertEqual(self.ok(c.fetch("1:*", "(FLAGS)")),
                         [b"1 (FLAGS (\\Flagged))", b"2 (FLAGS (\\Seen \\Flagged))", b"3 (FLAGS (\\Flagged))"])

    def test_expunge_answered_ok_survives_kill9_and_the_cache_matches_the_file(self):
        self.deliver(1, 2, 3, 4, 5)
        a = self.imap()
        b = self.imap()
        self.ok(a.store("2", "+FLAGS", "(\\Seen)"))        # written into the headers by the rewrite
        self.ok(a.store("1,4", "+FLAGS", "(\\Deleted)"))
        self.ok(a.expunge())
        # the other session reads bodies at the offsets the rewrite computed (no rescan)
        b.noop()
        self.assertEqual(self.subjects(b), ["Subject: bericht 2", "Subject: bericht 3", "Subject: bericht 5"])
        self.assertIn(b"Regel een van 5", self.ok(b.fetch("3", "(BODY.PEEK[TEXT])"))[0][1])
        self.z.kill9()
        box = self.z.mbox("bouke")
        self.assertNotIn("bericht 1\n", box)
        self.assertNotIn("bericht 4\n", box)
        self.assertIn("Status: RO", box)
        self.z.start()
        c = self.imap()
        self.assertEqual(self.ok(c.fetch("1:*", "(UID FLAGS)")),
                         [b"1 (UID 2 FLAGS (\\Seen))", b"2 (UID 3 FLAGS ())", b"3 (UID 5 FLAGS ())"])
        self.assertEqual(self.subjects(c), ["Subject: bericht 2", "Subject: bericht 3", "Subject: bericht 5"])


if __name__ == "__main__":
    unittest.main()
