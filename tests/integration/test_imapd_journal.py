"""Integration test for the mail store's flag journal (issue 7 section 6): a STORE appends to
state_dir/index/USER/INBOX.journal and fsyncs it before OK; zolderd killed with -9 in the
middle of a stream of STOREs keeps every flag change it acknowledged (the one in flight may
or may not be there), and the flags reach the mbox headers at the next rewrite."""

import os
import re
import shutil
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_durability import join_interrupted  # noqa: E402
from test_imapd import ImapCase  # noqa: E402

NMSG = 6
PATTERNS = ["(\\Seen)", "(\\Flagged)", "(\\Seen \\Answered)", "()", "(\\Draft)", "(\\Flagged \\Seen)", "(klus)"]


def expected(j):
    return PATTERNS[j % len(PATTERNS)]


def uid_of(j):
    return j % NMSG + 1


class ImapJournalTest(ImapCase):
    def flags_by_uid(self, m):
        out = {}
        for line in self.ok(m.fetch("1:*", "(UID FLAGS)")):
            text = line.decode()
            uid = int(text.split("UID ")[1].split()[0].rstrip(")"))
            flags = text.split("FLAGS ")[1].rstrip(")")
            out[uid] = "(" + " ".join(sorted(flags.strip("()").split())) + ")"
        return out

    @staticmethod
    def norm(flags):
        return "(" + " ".join(sorted(flags.strip("()").split())) + ")"

    def test_kill9_during_stores_keeps_every_acknowledged_change(self):
        self.deliver(*range(1, NMSG + 1))
        m = self.imap()
        journal = os.path.join(self.z.inst.path("var"), "index", "bouke", "INBOX.journal")
        acked = []
        stop = threading.Event()

        def storer():
            j = 0
            try:
                while not stop.is_set() and j < 5000:
                    typ, _ = m.uid("STORE", str(uid_of(j)), "FLAGS.SILENT", expected(j))
                    if typ != "OK":
                        return
                    acked.append(j)
                    j += 1
            except (OSError, EOFError, m.abort):
                pass

        t = threading.Thread(target=storer)
        t.start()
        deadline = time.time() + 10
        while len(acked) < 60 and time.time() < deadline:
            time.sleep(0.01)
        self.assertTrue(os.path.exists(journal), "a STORE did not use the journal")
        self.z.kill9()
        stop.set()
        t.join(10)
        last = acked[-1] if acked else -1
        self.assertGreater(last, 40)
        self.z.start()
        c = self.imap()
        got = self.flags_by_uid(c)
        for uid in range(1, NMSG + 1):
            done = [j for j in range(last + 1) if uid_of(j) == uid]
            want = {self.norm(expected(done[-1])) if done else "()"}
            if uid_of(last + 1) == uid:
                want.add(self.norm(expected(last + 1)))  # in flight at the kill: either
            self.assertIn(got[uid], want, f"message {uid} after {last + 1} acknowledged STOREs")
        # the next rewrite writes them into the mbox headers, mutt's way
        self.ok(c.expunge())
        c.logout()
        # (the rewrite runs when the last session leaves: deferred compaction)
        self.z.wait_for(lambda: "Status: RO" in self.z.mbox("bouke"), what="flags in the mbox")

    @unittest.skipUnless(shutil.which("strace"), "strace not installed")
    def test_every_store_ok_follows_the_journal_fsync(self):
        """kill -9 cannot show a missing fsync (the page cache survives it): the daemon's own
        system calls must show, for each STORE's OK, a write to the journal and its fsync."""
        self.deliver(1, 2, 3)
        self.z.stop()
        trace = self.z.inst.path("strace.out")
        self.z.start(wrapper=["strace", "-f", "-y", "-s", "128", "-qq", "-o", trace,
                              "-e", "trace=openat,fsync,write,writev,sendto,sendmsg,unlink,rename"],
                     env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
        m = self.imap()
        for j in range(5):
            self.ok(m.store(str(j % 3 + 1), "FLAGS", expected(j)))
        m.logout()
        self.z.stop()
        with open(trace) as f:
            lines = join_interrupted(f.read().splitlines())
        oks = [i for i, line in enumerate(lines) if "OK Store completed" in line]
        self.assertEqual(len(oks), 5, "\n".join(lines[-40:]))
        prev = -1
        for i in oks:
            writes = [k for k in range(prev + 1, i) if re.search(r"write\(\d+</[^>]*/INBOX\.journal>", lines[k])]
            self.assertTrue(writes, f"no journal write before the OK at line {i}")
            syncs = [k for k in range(writes[-1], i) if re.search(r"fsync\(\d+</[^>]*/INBOX\.journal>\)\s+= 0", lines[k])]
            self.assertTrue(syncs, f"the OK at line {i} does not follow the journal's fsync")
            prev = i

    def test_recent_is_claimed_once_and_survives_a_restart(self):
        self.deliver(1, 2)
        a = self.imap(select=False)
        typ, _ = a.select("INBOX", readonly=True)  # EXAMINE shows \Recent, claims nothing
        self.assertEqual(a.untagged_responses.get("RECENT"), [b"2"])
        a.close()
        a.select("INBOX")
        self.assertEqual(a.untagged_responses.get("RECENT"), [b"2"])
        a.logout()
        self.z.kill9()
        self.z.start()
        b = self.imap()
        self.assertEqual(b.untagged_responses.get("RECENT"), [b"0"])
        b.untagged_responses.clear()
        self.deliver(3)
        b.noop()
        self.assertEqual(b.untagged_responses.get("EXISTS"), [b"3"])
        self.assertEqual(b.untagged_responses.get("RECENT"), [b"1"])
        self.assertEqual(self.ok(b.fetch("1:3", "FLAGS")), [b"1 (FLAGS ())", b"2 (FLAGS ())", b"3 (FLAGS (\\Recent))"])
        c = self.imap()
        self.assertEqual(c.untagged_responses.get("RECENT"), [b"0"])
        b.logout()
        c.logout()


class ImapExpungeGroupTest(ImapCase):
    """EXPUNGEs of several sessions that arrive together share one rewrite of the mbox (group
    commit); each session still gets its EXPUNGE responses and its OK, and nothing else is
    removed."""

    # whole-mbox rewrites at EXPUNGE (mbox_compact_delay 0); with the default an EXPUNGE is a
    # journal record (test_imapd_compact.py)
    extra_conf = {"mbox_compact_delay": "0"}

    def test_expunges_arriving_together_share_one_rewrite(self):
        self.deliver(*range(1, 19))
        clients = [self.imap() for _ in range(3)]
        grouped = False
        expected_left = 18
        for attempt in range(5):  # sessions' bytes share a loop turn most of the time, not always
            for k, c in enumerate(clients):
                self.ok(c.store(str(k + 1), "+FLAGS.SILENT", "(\\Deleted)"))
            for c in clients:
                c.noop()
                c.untagged_responses.clear()
            tags = []
            for c in clients:  # back to back: they reach the server in one loop turn, usually
                tag = c._new_tag().decode()
                tags.append(tag)
                c.send(f"{tag} EXPUNGE\r\n".encode())
            for c, tag in zip(clients, tags):
                c.sock.settimeout(10)
                expunges = 0
                while True:
                    line = c.readline()
                    self.assertTrue(line, "connection closed")
                    if line.startswith(tag.encode()):
                        self.assertIn(b" OK ", line)
                        break
                    expunges += line.endswith(b" EXPUNGE\r\n")
                # its own removal at least; the others' now if they shared its rewrite, else
                # at the NOOP below
                self.assertGreaterEqual(expunges, 1)
                self.assertLessEqual(expunges, 3)
                c.noop()
                expunges += len(c.untagged_responses.get("EXPUNGE", []))
                c.untagged_responses.clear()
                self.assertEqual(expunges, 3, "every session is told of all three removals")
            expected_left -= 3
            for c in clients:
                self.assertEqual(len(self.ok(c.fetch("1:*", "(UID)"))), expected_left)
            log = self.z.log()
            grouped |= "sessions=2" in log or "sessions=3" in log
            if grouped:
                break
        self.assertTrue(grouped, "no two EXPUNGEs shared a rewrite")
        self.assertEqual(self.z.mbox("bouke").count("\nSubject: bericht "), expected_left)


if __name__ == "__main__":
    unittest.main()
