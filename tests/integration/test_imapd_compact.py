"""Integration test for deferred EXPUNGE compaction of the mbox INBOX (issue 7, mailstore.h,
mbox_compact_delay): an EXPUNGE answers OK once the expunge is in the index journal and
leaves the bytes in the spool file; IMAP and POP3 never show the message again, not after
kill -9 and a restart, not after a mutt-style rewrite of the file; the rewrite drops the bytes
when the last session leaves, on the timer, or at shutdown."""

import os
import poplib
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_imapd import ADDRESS, IMAP_PORT, PASSWORD, ImapCase  # noqa: E402
from zolderd_instance import Zolderd, crypt_hash, test_port  # noqa: E402

POP3_PORT = test_port(2110)


class CompactCase(ImapCase):
    delay = "600"  # long: only the triggers under test compact

    def setUp(self):
        conf = {"imap": f"{ADDRESS}:{IMAP_PORT}", "pop3": f"{ADDRESS}:{POP3_PORT}", "imap_timeout": "60",
                "filter": "no", "mbox_compact_delay": self.delay}
        self.z = Zolderd(address=ADDRESS, port=2525, conf=conf,
                         users={"bouke": crypt_hash(PASSWORD), "sjoerd": crypt_hash("ander"), "admin": "*"})
        self.addCleanup(lambda: self.z.cleanup())
        self.z.start()

    def subjects(self, m):
        out = []
        for item in self.ok(m.fetch("1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")):
            if isinstance(item, tuple):
                uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
                out.append((uid, item[1].decode().strip()))
        return out

    def expunge_uid(self, m, uid):
        self.ok(m.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)"))
        self.ok(m.expunge())


class ImapCompactTest(CompactCase):
    def test_expunge_is_durable_and_bytes_wait(self):
        self.deliver(1, 2, 3, 4, 5, 6, 7, 8)
        m = self.imap()
        keep = self.imap()  # a second session keeps the mailbox open: no compaction at logout
        self.expunge_uid(m, 3)
        self.assertIn("Subject: bericht 3", self.z.mbox("bouke"), "compacted at once")
        self.assertNotIn("Subject: bericht 3", str(self.subjects(m)))
        keep.noop()
        self.assertEqual(keep.untagged_responses.get("EXPUNGE"), [b"3"])
        # kill -9 right after the OK: the expunge stands, nothing else is lost
        self.z.kill9()
        self.z.start()
        c = self.imap()
        got = self.subjects(c)
        self.assertEqual([u for u, _ in got], [1, 2, 4, 5, 6, 7, 8])
        self.assertIn("Subject: bericht 3", self.z.mbox("bouke"))  # still waiting
        # POP3 sees the same
        p = poplib.POP3(ADDRESS, POP3_PORT, timeout=10)
        p.user("bouke")
        p.pass_(PASSWORD)
        self.assertEqual(p.stat()[0], 7)
        uidl = [line.split()[1] for line in p.uidl()[1]]
        self.assertEqual(len(set(uidl)), 7)
        retr = b"\n".join(p.retr(3)[1])
        self.assertIn(b"Subject: bericht 4", retr)
        p.quit()
        # mutt rewrites the file while the expunge waits: the Status of every message changes
        # (other sizes), the expunged one included; it stays expunged, the others keep UIDs
        path = self.z.mbox_path("bouke")
        with open(path) as f:
            text = f.read()
        text = re.sub(r"\n(Subject: bericht \d+\n)", r"\n\1Status: O\n", text)
        with open(path + ".mutt", "w") as f:
            f.write(text)
        os.rename(path + ".mutt", path)
        self.z.give_to_daemon(os.path.join("var", "spool", "mail"))  # as root: mutt runs as the user
        c.noop()
        got = self.subjects(c)
        self.assertEqual([u for u, _ in got], [1, 2, 4, 5, 6, 7, 8])
        self.assertEqual(got[2][1], "Subject: bericht 4")
        # the last session leaves: the bytes go
        c.logout()
        self.z.wait_for(lambda: "Subject: bericht 3" not in self.z.mbox("bouke"), what="compaction at the last logout")
        box = self.z.mbox("bouke")
        for n in (1, 2, 4, 5, 6, 7, 8):
            self.assertIn(f"Subject: bericht {n}\n", box)
        d = self.imap()
        self.assertEqual([u for u, _ in self.subjects(d)], [1, 2, 4, 5, 6, 7, 8])
        d.logout()

    def test_fetch_of_a_message_another_session_expunged(self):
        """RFC 2180 4.1.1: a session not yet told of another's EXPUNGE may still FETCH the
        message while its bytes wait for compaction; once they are gone, NO [EXPUNGEISSUED]."""
        self.deliver(1, 2, 3, 4, 5, 6, 7, 8)
        a = self.imap()
        b = self.imap()
        self.expunge_uid(b, 2)
        typ, data = a.fetch("2", "(UID ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertEqual(typ, "OK", data)
        self.assertIn(b"Subject: bericht 2", b"".join(x[1] for x in data if isinstance(x, tuple)))
        self.assertNotIn("EXPUNGE", a.untagged_responses)  # not during a FETCH
        # FETCH BODY[] sets \Seen, but not on a message that is gone
        self.assertEqual(a.fetch("2", "(BODY[TEXT])")[0], "OK")
        self.assertNotIn("\\Seen", str(a.untagged_responses.get("FETCH")))
        # the bytes go (CHECK compacts at once); the same FETCH is now refused
        self.ok(b.check())
        self.assertNotIn("Subject: bericht 2", self.z.mbox("bouke"))
        typ, data = a.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertEqual(typ, "NO", data)
        a.noop()
        self.assertEqual(a.untagged_responses.get("EXPUNGE"), [b"2"])
        self.assertEqual([u for u, _ in self.subjects(a)], [1, 3, 4, 5, 6, 7, 8])
        a.logout()
        b.logout()

    def test_pop3_dele_is_deferred_and_compacted_at_quit(self):
        self.deliver(1, 2, 3, 4, 5, 6)
        p = poplib.POP3(ADDRESS, POP3_PORT, timeout=10)
        p.user("bouke")
        p.pass_(PASSWORD)
        p.dele(2)
        p.quit()
        self.z.wait_for(lambda: "Subject: bericht 2" not in self.z.mbox("bouke"), what="compaction after QUIT")
        m = self.imap()
        self.assertEqual([u for u, _ in self.subjects(m)], [1, 3, 4, 5, 6])

    def test_shutdown_compacts(self):
        self.deliver(1, 2, 3, 4, 5, 6)
        m = self.imap()
        self.expunge_uid(m, 5)
        self.assertIn("Subject: bericht 5", self.z.mbox("bouke"))
        self.z.stop()  # the session is still open: the flush at shutdown compacts
        self.assertNotIn("Subject: bericht 5", self.z.mbox("bouke"))
        self.z.start()
        c = self.imap()
        self.assertEqual([u for u, _ in self.subjects(c)], [1, 2, 3, 4, 6])


    def test_folder_deleted_or_renamed_while_expunges_wait(self):
        m = self.imap()
        for name in ("weg", "oud"):
            self.ok(m.create(name))
            for n in range(1, 9):  # one of 8 expunged: under the size threshold (a quarter)
                self.ok(m.append(name, None, None, f"Subject: {name} {n}\r\n\r\nbody\r\n".encode()))
            self.ok(m.select(name))
            self.ok(m.uid("STORE", "2", "+FLAGS.SILENT", "(\\Deleted)"))
            self.ok(m.expunge())
            self.ok(m.select("INBOX"))  # the last session leaves the folder: compaction in a second
        index_dir = os.path.join(self.z.inst.path("var"), "index", "bouke")
        self.assertIn("oud 2", open(self.z.inst.path("var", "home", "bouke", "Mail", "oud")).read())  # waits
        before = sorted(os.listdir(index_dir))
        self.ok(m.delete("weg"))
        self.ok(m.rename("oud", "nieuw"))
        time.sleep(2)  # past the compaction that was due
        self.assertNotIn("compaction error", self.z.log())
        # nothing was made again at the old names
        self.assertEqual([n for n in os.listdir(index_dir) if "weg" in n or "oud" in n], [], before)
        self.assertNotIn(b"weg", b" ".join(self.ok(m.list())))
        # the renamed folder kept its expunge, and is compacted under its new name
        self.ok(m.select("nieuw"))
        got = self.ok(m.fetch("1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
        subjects = [x[1].decode().strip() for x in got if isinstance(x, tuple)]
        self.assertEqual(subjects, ["Subject: oud 1"] + [f"Subject: oud {n}" for n in range(3, 9)])
        self.ok(m.select("INBOX"))
        box = self.z.inst.path("var", "home", "bouke", "Mail", "nieuw")  # mail_dir ~/Mail, no home
        self.assertIn("oud 1", open(box).read())
        self.z.wait_for(lambda: "oud 2" not in open(box).read(), what="compaction of the renamed folder")


class ImapCompactTimerTest(CompactCase):
    delay = "1"

    def test_timer_compacts_while_sessions_stay(self):
        self.deliver(1, 2, 3, 4, 5, 6)
        m = self.imap()
        self.ok(m.store("1", "+FLAGS.SILENT", "(\\Seen)"))
        self.expunge_uid(m, 4)
        self.z.wait_for(lambda: "Subject: bericht 4" not in self.z.mbox("bouke"), what="compaction on the timer")
        self.assertIn("Status: RO", self.z.mbox("bouke"))  # the \\Seen reached the headers with it
        m.noop()
        self.assertEqual([u for u, _ in self.subjects(m)], [1, 2, 3, 5, 6])


if __name__ == "__main__":
    unittest.main()
