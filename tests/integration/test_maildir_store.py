"""Integration tests for a Maildir INBOX (mailbox_format = maildir, issue 7 section 1): a real
zolderd delivers over SMTP into state_dir/maildir/USER/new and serves it over IMAP (imaplib:
SELECT moves new/ to cur/, FETCH BODY[] with RFC822.SIZE exact, STORE renames to ":2,FLAGS",
EXPUNGE unlinks, APPEND into cur/, IDLE hears a delivery at once, CONDSTORE) and POP3 (poplib:
STAT, RETR, DELE, UIDL stable across sessions); mutt reading the Maildir on disk and zolder
agree on flags; mbsync syncs INBOX both ways; kill -9 in a stream of STOREs keeps every
acknowledged change."""

import email.utils
import imaplib
import os
import poplib
import re
import shutil
import smtplib
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "helper"))
import zolder_test  # noqa: E402
from zolderd_instance import MBSYNC_INBOX_CHANNEL, SourceIMAP, Zolderd, crypt_hash, test_port, write_mbsyncrc  # noqa: E402,E501

ADDRESS = "127.0.1.71"
SMTP_PORT = 2525
IMAP_PORT = test_port(2143)
POP3_PORT = test_port(2110)
LAN_HOST = "127.0.1.5"
PASSWORD = "geheim wachtwoord"
FAST = 0.5


def message(n, extra=""):
    return (f"From: Sjoerd de Vries <sjoerd@zolder.thuis>\r\nTo: bouke@zolder.thuis\r\n"
            f"Subject: bericht {n}\r\nMessage-ID: <{n}@zolder.thuis>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0100\r\n"
            f"\r\nRegel een van {n}\r\nFrom the attic {n}\r\n>From quoted {n}\r\n.punt\r\n{extra}")


class MaildirCase(unittest.TestCase):
    def setUp(self):
        conf = {"imap": f"{ADDRESS}:{IMAP_PORT}", "pop3": f"{ADDRESS}:{POP3_PORT}", "imap_timeout": "60",
                "pop3_timeout": "30", "filter": "no", "mailbox_format": "maildir"}
        self.z = Zolderd(address=ADDRESS, port=SMTP_PORT, conf=conf,
                         users={"bouke": crypt_hash(PASSWORD), "sjoerd": crypt_hash("ander"), "admin": "*"})
        self.addCleanup(lambda: self.z.cleanup())
        self.z.start()
        self.md = self.z.inst.path("var", "maildir", "bouke")

    def files(self, sub):
        try:
            return sorted(os.listdir(os.path.join(self.md, sub)))
        except FileNotFoundError:
            return []

    def all_files(self):
        return self.files("new") + self.files("cur")

    def deliver(self, *numbers):
        want = len(self.all_files()) + len(numbers)
        with smtplib.SMTP(ADDRESS, self.z.port, source_address=(LAN_HOST, 0), timeout=10) as s:
            for n in numbers:
                s.sendmail("sjoerd@zolder.thuis", ["bouke@zolder.thuis"], message(n))
        self.z.wait_for(lambda: len(self.all_files()) >= want, what="delivery")

    def imap(self, select=True):
        m = SourceIMAP(ADDRESS, IMAP_PORT, "127.0.0.1")
        self.addCleanup(self.close_quietly, m)
        m.login("bouke", PASSWORD)
        if select:
            self.ok(m.select("INBOX"))
        return m

    def pop3(self):
        p = poplib.POP3(ADDRESS, POP3_PORT, timeout=10)
        self.addCleanup(self.close_quietly, p)
        p.user("bouke")
        p.pass_(PASSWORD)
        return p

    @staticmethod
    def close_quietly(c):
        try:
            if isinstance(c, poplib.POP3):
                c.close()
            else:
                c.shutdown()
        except OSError:
            pass

    def ok(self, result):
        typ, data = result
        self.assertEqual(typ, "OK", data)
        return data

    def body_of(self, name):
        sub = "cur" if os.path.exists(os.path.join(self.md, "cur", name)) else "new"
        with open(os.path.join(self.md, sub, name), "rb") as f:
            return f.read()

    def file_with(self, subject):
        for sub in ("cur", "new"):
            for n in self.files(sub):
                if f"Subject: {subject}\n".encode() in self.body_of(n):
                    return n
        return None

    @staticmethod
    def info(name):
        return name.split(":2,")[1] if ":2," in name else None


class MaildirImapTest(MaildirCase):
    def test_select_fetch_store_expunge_append(self):
        self.deliver(1, 2, 3)
        self.assertEqual(len(self.files("new")), 3)
        self.assertIn(b"\nFrom the attic 1\n", self.body_of(self.files("new")[0]))  # LF, no quoting on disk
        m = self.imap(select=False)
        typ, data = m.select("INBOX", readonly=True)
        self.assertEqual(data, [b"3"])
        self.assertEqual(len(self.files("new")), 3)            # EXAMINE moves nothing
        m.close()
        self.assertEqual(self.ok(m.select("INBOX")), [b"3"])
        self.assertEqual(self.files("new"), [])                 # SELECT moved them to cur/
        self.assertEqual([self.info(n) for n in self.files("cur")], ["", "", ""])
        validity = m.untagged_responses["UIDVALIDITY"][0]
        data = self.ok(m.fetch("1:3", "(UID RFC822.SIZE BODY.PEEK[])"))
        bodies = [d for d in data if isinstance(d, tuple)]
        self.assertEqual(len(bodies), 3)
        for i, (head, body) in enumerate(bodies, 1):
            size = int(re.search(rb"RFC822.SIZE (\d+)", head).group(1))
            self.assertEqual(len(body), size, head)
            self.assertIn(f"Subject: bericht {i}\r\n".encode(), body)
            self.assertIn(f"\r\nFrom the attic {i}\r\n>From quoted {i}\r\n.punt\r\n".encode(), body)
            self.assertNotIn(b"\n\n", body.replace(b"\r\n", b""))
        # BODY[] sets \Seen: renamed to :2,S
        self.ok(m.fetch("1", "(BODY[])"))
        self.assertEqual(self.info(self.file_with("bericht 1")), "S")
        self.ok(m.store("2", "+FLAGS", "(\\Flagged \\Answered)"))
        self.assertEqual(self.info(self.file_with("bericht 2")), "FR")
        self.ok(m.store("3", "+FLAGS", "(\\Deleted klus)"))
        self.assertEqual(self.info(self.file_with("bericht 3")), "Ta")  # klus: letter a (dovecot-keywords)
        self.assertEqual(self.ok(m.expunge()), [b"3"])
        self.assertIsNone(self.file_with("bericht 3"))
        self.assertEqual(len(self.files("cur")), 2)
        # APPEND: into cur/ with its flags, INTERNALDATE as the file's mtime
        when = time.mktime((2020, 5, 17, 12, 0, 0, 0, 0, -1))
        self.ok(m.append("INBOX", "(\\Seen \\Draft)", imaplib.Time2Internaldate(when),
                         message(9).encode()))
        name = self.file_with("bericht 9")
        self.assertIsNotNone(name)
        self.assertEqual(self.info(name), "DS")
        self.assertEqual(int(os.stat(os.path.join(self.md, "cur", name)).st_mtime), int(when))
        self.assertEqual(self.files("tmp"), [])
        data = self.ok(m.fetch("3", "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])"))
        self.assertIn(b"UID 4 ", data[0][0])
        self.assertIn(b"17-May-2020", data[0][0])
        size = int(re.search(rb"RFC822.SIZE (\d+)", data[0][0]).group(1))
        self.assertEqual(data[0][1], message(9).encode())
        self.assertEqual(size, len(message(9)))
        m.logout()
        # another session: UIDs, flags and keywords kept
        m = self.imap()
        self.assertEqual(m.untagged_responses["UIDVALIDITY"][0], validity)
        data = self.ok(m.fetch("1:*", "(UID FLAGS)"))
        self.assertEqual(data[0], b"1 (UID 1 FLAGS (\\Seen))")
        self.assertRegex(data[1].decode(), r"^2 \(UID 2 FLAGS \((\\Answered \\Flagged|\\Flagged \\Answered)\)\)$")
        self.assertIn(b"UID 4 FLAGS (", data[2])
        m.logout()

    def test_keywords_are_letters_in_the_names(self):
        """Keywords as Dovecot keeps them in a Maildir: letter N of the name's info is line
        "N keyword" of dovecot-keywords, so one rename carries a STORE's flags and keywords."""
        self.deliver(1, 2)
        m = self.imap()
        self.ok(m.store("1", "+FLAGS", "(\\Seen Werk $Label1)"))
        self.assertEqual(self.info(self.file_with("bericht 1")), "Sab")
        with open(os.path.join(self.md, "dovecot-keywords")) as f:
            self.assertEqual(f.read(), "0 Werk\n1 $Label1\n")
        self.ok(m.store("2", "FLAGS", "(\\Flagged $Label1)"))
        self.assertEqual(self.info(self.file_with("bericht 2")), "Fb")
        self.ok(m.store("1", "-FLAGS", "(Werk)"))
        self.assertEqual(self.info(self.file_with("bericht 1")), "Sb")
        # another program (Dovecot, a script) sets Werk on message 2 by renaming it
        name = self.file_with("bericht 2")
        os.rename(os.path.join(self.md, "cur", name), os.path.join(self.md, "cur", name.split(":2,")[0] + ":2,Fab"))
        self.ok(m.noop())
        data = {int(x.split()[0]): x for x in self.ok(m.fetch("1:2", "(FLAGS)"))}  # the last per number
        self.assertEqual(flags_of(data[1]), norm("(\\Seen $Label1)"))
        self.assertEqual(flags_of(data[2]), norm("(\\Flagged Werk $Label1)"))
        # APPEND with a keyword: in the name from the start
        self.ok(m.append("INBOX", "(\\Draft Werk Nieuw)", None, message(9).encode()))
        self.assertEqual(self.info(self.file_with("bericht 9")), "Dac")
        m.logout()

    def test_idle_hears_delivery_at_once(self):
        """Three deliveries, each heard well within the 2 s IDLE poll (by polling alone all
        three inside FAST happen about (FAST/2)^3 = 1.6 % of the time: the test can fail)."""
        self.deliver(1)
        m = self.imap()
        tag = m._new_tag().decode()
        m.send(f"{tag} IDLE\r\n".encode())
        self.assertTrue(m.readline().startswith(b"+ "))
        for k in (2, 3, 4):
            time.sleep(0.3)
            before = set(self.all_files())
            with smtplib.SMTP(ADDRESS, self.z.port, source_address=(LAN_HOST, 0), timeout=10) as s:
                s.sendmail("sjoerd@zolder.thuis", ["bouke@zolder.thuis"], message(k))
            deadline = time.time() + 5
            seen = []
            wanted = f"* {k} EXISTS\r\n".encode()
            while time.time() < deadline and wanted not in seen:
                m.sock.settimeout(max(0.01, deadline - time.time()))
                try:
                    seen.append(m.readline())
                except TimeoutError:
                    continue
            self.assertIn(wanted, seen)
            arrived = time.time()
            new = [n for n in self.files("new") if n not in before]
            self.assertEqual(len(new), 1)
            written = os.stat(os.path.join(self.md, "new", new[0])).st_mtime_ns / 1e9
            self.assertLess(arrived - written, FAST, f"delivery {k} not pushed to IDLE")
        m.send(b"DONE\r\n")
        while not m.readline().startswith(tag.encode()):
            pass
        m.logout()

    def test_condstore(self):
        self.deliver(1, 2)
        m = self.imap(select=False)
        typ, data = m._simple_command("SELECT", "INBOX", "(CONDSTORE)")
        self.assertEqual(typ, "OK", data)
        m.state = "SELECTED"
        hms = int(m.untagged_responses["HIGHESTMODSEQ"][0])
        self.ok(m.store("1", "+FLAGS", "(\\Flagged)"))
        data = self.ok(m.fetch("1:2", "(MODSEQ)"))
        m1 = int(re.search(rb"MODSEQ \((\d+)\)", data[0]).group(1))
        m2 = int(re.search(rb"MODSEQ \((\d+)\)", data[1]).group(1))
        self.assertGreater(m1, hms)
        self.assertLessEqual(m2, hms)
        # UNCHANGEDSINCE below message 1's MODSEQ: refused for it, done for 2
        typ, data = m._simple_command("STORE", "1:2", f"(UNCHANGEDSINCE {m1 - 1})", "+FLAGS", "(\\Seen)")
        self.assertEqual(typ, "OK", data)
        self.assertIn(b"MODIFIED 1", b" ".join(x for x in data if isinstance(x, bytes)))
        self.assertEqual(self.info(self.file_with("bericht 1")), "F")
        self.assertEqual(self.info(self.file_with("bericht 2")), "S")
        m.logout()


class MaildirFoldersTest(MaildirCase):
    def test_copy_move_between_maildir_inbox_and_mbox_folders(self):
        self.deliver(1, 2, 3)
        m = self.imap()
        self.ok(m.create("Archief"))
        self.ok(m.store("1", "+FLAGS", "(\\Flagged)"))
        self.ok(m.copy("1", "Archief"))
        typ, data = m._simple_command("MOVE", "2", "Archief")
        self.assertEqual(typ, "OK", data)
        self.assertIsNone(self.file_with("bericht 2"))
        self.assertEqual(len(self.all_files()), 2)
        archief = self.z.inst.path("var", "home", "bouke", "Mail", "Archief")
        with open(archief, "rb") as f:
            box = f.read()
        self.assertIn(b"Subject: bericht 1\n", box)
        self.assertIn(b"Subject: bericht 2\n", box)
        self.assertIn(b"\n>From the attic 1\n", box)          # mboxrd-quoted in the mbox folder
        self.assertEqual(self.ok(m.select("Archief")), [b"2"])
        data = self.ok(m.fetch("1:2", "(FLAGS RFC822.SIZE BODY.PEEK[])"))
        self.assertIn(b"\\Flagged", data[0][0])
        self.assertTrue(data[0][1].endswith(message(1).split("\r\n\r\n", 1)[1].encode()), data[0][1])
        self.assertEqual(len(data[0][1]), int(re.search(rb"RFC822.SIZE (\d+)", data[0][0]).group(1)))
        # and back into the Maildir INBOX
        self.ok(m.copy("2", "INBOX"))
        self.ok(m.select("INBOX"))
        self.assertEqual(len(self.all_files()), 3)
        data = self.ok(m.fetch("3", "(UID BODY.PEEK[])"))
        self.assertIn(b"UID 4 ", data[0][0])
        self.assertIn(b"\r\nFrom the attic 2\r\n>From quoted 2\r\n", data[0][1])
        # RENAME INBOX moves its messages into a new folder; INBOX stays, empty
        self.ok(m._simple_command("UNSELECT"))
        m.state = "AUTH"
        self.ok(m.rename("INBOX", "Oud"))
        self.assertEqual(self.all_files(), [])
        self.assertEqual(self.ok(m.select("Oud")), [b"3"])
        m.logout()


class MaildirPop3Test(MaildirCase):
    def test_stat_retr_dele_uidl_stable(self):
        self.deliver(1, 2, 3)
        p = self.pop3()
        count, size = p.stat()
        self.assertEqual(count, 3)
        uidl = p.uidl()[1]
        listing = p.list()[1]
        total = 0
        for i in (1, 2, 3):
            resp, lines, octets = p.retr(i)
            text = b"\r\n".join(lines) + b"\r\n"
            self.assertIn(f"Subject: bericht {i}".encode(), text)
            self.assertIn(b".punt", text)  # dot-stuffing undone by poplib
            listed = int(listing[i - 1].split()[1])
            self.assertEqual(listed, octets)  # poplib counts without the stuffed dots
            total += listed
        self.assertEqual(total, size)
        resp, lines, octets = p.top(1, 1)                  # the header, the empty line, one line
        self.assertIn(b"Subject: bericht 1", lines)
        self.assertEqual(lines[-2:], [b"", b"Regel een van 1"])
        # delivery during the session: not in this maildrop
        self.deliver(4)
        self.assertEqual(p.stat()[0], 3)
        p.dele(2)
        p.quit()
        self.assertIsNone(self.file_with("bericht 2"))
        self.assertEqual(len(self.all_files()), 3)
        p = self.pop3()
        self.assertEqual(p.stat()[0], 3)
        again = p.uidl()[1]
        old = {line.split()[1] for line in uidl}
        kept = [line.split()[1] for line in again]
        self.assertEqual(kept[:2], [uidl[0].split()[1], uidl[2].split()[1]])  # "leave on server" clients
        self.assertNotIn(kept[2], old)
        p.quit()

    def test_pop3_and_imap_share_the_store(self):
        self.deliver(1, 2)
        m = self.imap()
        self.ok(m.store("1", "+FLAGS", "(\\Deleted)"))
        p = self.pop3()
        self.assertEqual(p.stat()[0], 2)
        p.dele(2)
        p.quit()
        self.ok(m.noop())
        data = self.ok(m.fetch("1:*", "(UID)"))
        self.assertEqual(data, [b"1 (UID 1)"])
        m.logout()


class MaildirConcurrencyTest(MaildirCase):
    def test_delivery_while_two_imap_sessions_and_a_pop3_session_are_open(self):
        """Issue 7 section 5: delivery is never blocked by open sessions; both IMAP sessions
        see the new message as EXISTS, the POP3 session keeps its maildrop as at login and
        the next POP3 login sees it."""
        self.deliver(1, 2)
        a = self.imap()
        b = self.imap()
        p = self.pop3()
        self.assertEqual(p.stat()[0], 2)
        self.ok(a.store("1", "+FLAGS", "(\\Seen)"))
        t0 = time.time()
        self.deliver(3, 4)
        self.assertLess(time.time() - t0, 5)
        for m in (a, b):
            self.ok(m.noop())
            self.assertEqual(m.untagged_responses.get("EXISTS", [b"0"])[-1], b"4")
            # imaplib adds the NOOP's untagged FETCH of the flag change: the last one per number
            data = {int(d.split()[0]): d for d in self.ok(m.fetch("1:*", "(UID FLAGS)"))}
            self.assertEqual(sorted(data), [1, 2, 3, 4], data)
            self.assertIn(b"\\Seen", data[1])
        self.assertEqual(p.stat()[0], 2)
        resp, lines, octets = p.retr(2)
        self.assertIn(b"Subject: bericht 2", lines)
        p.quit()
        p = self.pop3()
        self.assertEqual(p.stat()[0], 4)
        p.quit()
        a.logout()
        b.logout()


class MaildirClientsTest(MaildirCase):
    def run_tool(self, args, home, **kw):
        r = subprocess.run(args, env={**os.environ, "HOME": home, "TERM": "vt100"}, capture_output=True,
                           timeout=120, stdin=subprocess.DEVNULL, **kw)
        self.assertEqual(r.returncode, 0, str(r.stdout)[-2000:] + str(r.stderr)[-2000:] + self.z.log()[-3000:])
        return r

    @unittest.skipUnless(shutil.which("mutt") and shutil.which("script"), "mutt or script not installed")
    def test_mutt_on_disk_and_zolder_agree_on_flags(self):
        self.deliver(1, 2, 3)
        m = self.imap()
        self.ok(m.store("2", "+FLAGS", "(\\Flagged)"))
        self.ok(m.store("3", "+FLAGS", "(klus)"))   # letter a: mutt must keep it when it renames
        m.logout()
        home = self.z.inst.path("mutt")
        os.makedirs(os.path.join(home, "Mail"))
        out = os.path.join(home, "flagged.txt")
        rc = os.path.join(home, "muttrc")
        with open(rc, "w") as f:
            f.write("set mbox_type=Maildir\nset wait_key=no\nset pipe_decode=no\nset quit=yes\nset move=no\n"
                    "set confirmappend=no\nset delete=yes\nset sort=mailbox-order\nset auto_tag=yes\n"
                    "set mark_old=no\n"
                    f'push "<tag-pattern>~F<enter><pipe-message>cat >> {out}<enter>'
                    '<untag-pattern>~A<enter><search>~s bericht.3<enter><flag-message><sync-mailbox><quit>"\n')
        self.run_tool(["script", "-qec", f"mutt -n -F {rc} -f {self.md}", "/dev/null"], home)
        with open(out) as f:
            flagged = f.read()
        self.assertIn("Subject: bericht 2", flagged)       # mutt read zolder's ":2,F"
        self.assertNotIn("Subject: bericht 1", flagged)
        self.assertEqual(self.info(self.file_with("bericht 3")), "Fa")  # mutt kept the keyword letter
        m = self.imap()
        data = self.ok(m.fetch("1:3", "(UID FLAGS)"))
        self.assertEqual(data[0], b"1 (UID 1 FLAGS ())")
        self.assertIn(b"UID 2 FLAGS (\\Flagged", data[1])
        self.assertIn(b"UID 3 FLAGS (", data[2])
        self.assertEqual(flags_of(data[2]), "(\\Flagged klus)")  # mutt's rename
        m.logout()

    @unittest.skipUnless(shutil.which("mbsync"), "mbsync (isync) not installed")
    def test_mbsync_both_ways(self):
        self.deliver(1, 2, 3)
        home = self.z.inst.path("mbsync")
        near = os.path.join(home, "Mail")
        os.makedirs(near)
        rc = write_mbsyncrc(home, ADDRESS, IMAP_PORT, "bouke", PASSWORD, near, MBSYNC_INBOX_CHANNEL)
        cmd = ["mbsync", "-c", rc, "inbox"]
        self.run_tool(cmd, home)
        box = os.path.join(near, "INBOX")
        local = lambda: {n: s for s in ("cur", "new") for n in os.listdir(os.path.join(box, s))}  # noqa: E731
        names = local()
        self.assertEqual(len(names), 3)

        def read(n):
            with open(os.path.join(box, names[n], n)) as f:
                return f.read()
        two = next(n for n in names if "Subject: bericht 2" in read(n))
        three = next(n for n in names if "Subject: bericht 3" in read(n))
        base = lambda n: n.split(":2,")[0]  # noqa: E731
        os.rename(os.path.join(box, names[two], two), os.path.join(box, "cur", base(two) + ":2,S"))
        os.rename(os.path.join(box, names[three], three), os.path.join(box, "cur", base(three) + ":2,T"))
        with open(os.path.join(box, "new", "1.local.zolder"), "w") as f:
            f.write("From: bouke@zolder.thuis\nSubject: lokaal\n\nGeschreven op de laptop.\n")
        self.deliver(4)
        m = self.imap()
        self.ok(m.store("1", "+FLAGS", "(\\Flagged)"))
        m.logout()
        self.run_tool(cmd, home)
        self.assertIsNone(self.file_with("bericht 3"))            # deleted near, expunged far
        self.assertIsNotNone(self.file_with("lokaal"))             # uploaded with APPEND
        self.assertEqual(self.info(self.file_with("bericht 2")), "S")
        names = local()
        self.assertEqual(len(names), 4)
        self.assertTrue(any("F" in (self.info(n) or "") for n in names), names)  # \Flagged came near
        self.run_tool(cmd, home)
        self.assertEqual(local(), names)                            # a third run changes nothing


NMSG = 6
PATTERNS = ["(\\Seen)", "(\\Flagged klus)", "(\\Seen \\Answered)", "()", "(\\Draft werk)", "(\\Flagged \\Seen)",
            "(klus)", "(\\Seen werk klus)"]


def norm(flags):
    return "(" + " ".join(sorted(flags.strip("()").split())) + ")"


def flags_of(line):
    """The FLAGS of a FETCH response line, sorted, without \\Recent."""
    return norm(line.decode().split("FLAGS ")[1].split(")")[0].replace("\\Recent", ""))


class MaildirDurabilityTest(MaildirCase):
    def flags_by_uid(self, m):
        out = {}
        for line in self.ok(m.fetch("1:*", "(UID FLAGS)")):
            text = line.decode()
            uid = int(text.split("UID ")[1].split()[0].rstrip(")"))
            out[uid] = norm(text.split("FLAGS ")[1].rstrip(")").replace("\\Recent", ""))
        return out

    def test_kill9_during_stores_and_expunge_keeps_every_acknowledged_change(self):
        self.deliver(*range(1, NMSG + 1))
        m = self.imap()
        acked = []
        stop = threading.Event()

        def storer():
            j = 0
            try:
                while not stop.is_set() and j < 5000:
                    typ, _ = m.uid("STORE", str(j % NMSG + 1), "FLAGS.SILENT", PATTERNS[j % len(PATTERNS)])
                    if typ != "OK":
                        return
                    acked.append(j)
                    j += 1
            except (OSError, EOFError, m.abort):
                pass

        t = threading.Thread(target=storer)
        t.start()
        deadline = time.time() + 10
        while len(acked) < 40 and time.time() < deadline:
            time.sleep(0.01)
        self.z.kill9()
        stop.set()
        t.join(10)
        last = acked[-1] if acked else -1
        self.assertGreater(last, 20)
        self.z.start()
        c = self.imap()
        got = self.flags_by_uid(c)
        self.assertEqual(sorted(got), list(range(1, NMSG + 1)))  # UIDs kept
        for uid in range(1, NMSG + 1):
            done = [j for j in range(last + 1) if j % NMSG + 1 == uid]
            want = {norm(PATTERNS[done[-1] % len(PATTERNS)]) if done else "()"}
            if (last + 1) % NMSG + 1 == uid:  # the one in flight may or may not be there, whole:
                # flags and keyword letters are in the name, one rename carries them
                want.add(norm(PATTERNS[(last + 1) % len(PATTERNS)]))
            self.assertIn(got[uid], want, f"uid {uid} after {last}")
        # an acknowledged EXPUNGE is kept through kill -9
        self.ok(c.uid("STORE", "1:2", "+FLAGS.SILENT", "(\\Deleted)"))
        self.ok(c.expunge())
        self.z.kill9()
        self.z.start()
        c = self.imap()
        self.assertEqual(sorted(self.flags_by_uid(c)), list(range(3, NMSG + 1)))
        self.assertEqual(len(self.all_files()), NMSG - 2)
        c.logout()

    @unittest.skipUnless(shutil.which("strace"), "strace not installed")
    def test_every_ok_follows_the_fsyncs(self):
        """kill -9 cannot show a missing fsync (the page cache survives it): the daemon's own
        system calls must show, before each OK, STORE's rename and the fsync of cur/ then the
        journal's; EXPUNGE's unlink and the fsync of cur/; APPEND's fsync of the file in tmp/,
        its rename into cur/ and the fsync of cur/; and the index's journal fsynced after
        them (STORE: no index rewrite)."""
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from test_durability import join_interrupted
        self.deliver(1, 2, 3)
        self.z.stop()
        trace = self.z.inst.path("strace.out")
        self.z.start(wrapper=["strace", "-f", "-y", "-s", "512", "-qq", "-o", trace, "-e",
                              "trace=openat,fsync,write,writev,sendto,sendmsg,unlink,rename,renameat,renameat2"],
                     env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
        m = self.imap()
        for j in range(3):
            self.ok(m.store(str(j + 1), "+FLAGS", "(\\Flagged)"))
        self.ok(m.store("1", "+FLAGS", "(werk)"))  # a new keyword: dovecot-keywords first
        self.ok(m.store("3", "+FLAGS", "(\\Deleted)"))
        self.ok(m.expunge())
        self.ok(m.append("INBOX", "(\\Seen)", None, message(9).encode()))
        m.logout()
        self.z.stop()
        with open(trace) as f:
            lines = join_interrupted(f.read().splitlines())

        def after(pattern, start, end):
            hits = [k for k in range(start, end) if re.search(pattern, lines[k])]
            return hits[-1] if hits else None

        cur = r"</[^>]*/maildir/bouke/cur>"
        oks = [i for i, line in enumerate(lines) if re.search(r"OK (\[[^]]*\] )?Store completed", line)]
        self.assertEqual(len(oks), 5, "\n".join(lines[-60:]))
        prev = 0
        for i in oks:
            ren = after(r"rename(at2?)?\(.*maildir/bouke/(new|cur)/.*maildir/bouke/cur/.*:2,", prev, i)
            self.assertIsNotNone(ren, f"no rename before the STORE OK at line {i}")
            sync = after(r"fsync\(\d+" + cur + r"\)\s+= 0", ren, i)
            self.assertIsNotNone(sync, f"cur/ not fsynced after the rename, before the OK at line {i}")
            # one journal record, fsynced; no index rewrite (the journal is folded past its bound)
            jr = after(r"fsync\(\d+</[^>]*/index/bouke/INBOX\.journal>\)\s+= 0", sync, i)
            self.assertIsNotNone(jr, f"the journal not fsynced after the fsync of cur/, before the OK at {i}")
            self.assertIsNone(after(r"rename(at2?)?\(.*index/bouke/INBOX\.tmp", ren, i), "the index was rewritten")
            prev = i
        # the keyword's letter is named in dovecot-keywords (under Dovecot's dotlock, fsynced,
        # renamed, the Maildir fsynced) before the message's name carries it
        kren = after(r"rename(at2?)?\(.*maildir/bouke/cur/.*:2,Fa\b", oks[2], oks[3])
        self.assertIsNotNone(kren, "no rename to :2,Fa for the keyword")
        kw = after(r"rename(at2?)?\(.*maildir/bouke/dovecot-keywords\.lock.*maildir/bouke/dovecot-keywords\b",
                   oks[2], kren)
        self.assertIsNotNone(kw, "dovecot-keywords not renamed into place before the message")
        self.assertIsNotNone(after(r"fsync\(\d+</[^>]*/maildir/bouke/dovecot-keywords\.lock>\)\s+= 0", oks[2], kw),
                             "dovecot-keywords not fsynced before its rename")
        self.assertIsNotNone(after(r"fsync\(\d+</[^>]*/maildir/bouke>\)\s+= 0", kw, kren),
                             "the Maildir not fsynced after dovecot-keywords' rename")
        ok = next(i for i, line in enumerate(lines) if re.search(r"OK (\[[^]]*\] )?Expunge completed", line))
        unl = after(r"unlink\(.*maildir/bouke/cur/", prev, ok)
        self.assertIsNotNone(unl, "no unlink before the EXPUNGE OK")
        self.assertIsNotNone(after(r"fsync\(\d+" + cur + r"\)\s+= 0", unl, ok), "cur/ not fsynced after the unlink")
        ok = next(i for i, line in enumerate(lines) if re.search(r"OK (\[[^]]*\] )?Append completed", line))
        fs = after(r"fsync\(\d+</[^>]*/maildir/bouke/tmp/[^>]+>\)\s+= 0", prev, ok)
        self.assertIsNotNone(fs, "the appended file not fsynced in tmp/")
        ren = after(r"rename(at2?)?\(.*maildir/bouke/tmp/.*maildir/bouke/cur/.*:2,S", fs, ok)
        self.assertIsNotNone(ren, "no rename from tmp/ into cur/ after the fsync")
        sync = after(r"fsync\(\d+" + cur + r"\)\s+= 0", ren, ok)
        self.assertIsNotNone(sync, "cur/ not fsynced after the rename")
        self.assertIsNotNone(after(r"fsync\(\d+</[^>]*/index/bouke/INBOX\.journal>\)\s+= 0", sync, ok),
                             "the appended message's UID not journalled before the OK")


DOVECOT = "127.0.14.7"
DOVECOT_IMAP = 10143
DOVECOT_CONF = """base_dir = {dir}/run
state_dir = {dir}/state
log_path = /dev/stderr
info_log_path = /dev/stderr
listen = {addr}
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = {uid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={dir}/home/%u
}}
mail_location = maildir:{maildirs}/%u:INDEX=MEMORY
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


@unittest.skipUnless(shutil.which("dovecot") and os.geteuid() == 0, "needs Debian's dovecot and root")
class MaildirDovecotTest(MaildirCase):
    """Debian's Dovecot (a private instance on loopback, its indexes in memory) serving the
    same Maildir: it reads the keywords zolder wrote (letters in the names, dovecot-keywords)
    and zolder reads the ones Dovecot writes."""

    def start_dovecot(self):
        import pwd
        if not zolder_test.address_free(DOVECOT, DOVECOT_IMAP):
            self.skipTest("dovecot test address in use")
        dv = zolder_test.Instance(name="maildir-dovecot")
        self.addCleanup(dv.cleanup)
        self.addCleanup(dv.stop)
        pw = pwd.getpwnam(self.z.conf_lines["run_as"])
        os.chmod(dv.dir, 0o755)
        dv.write("dovecot.conf", DOVECOT_CONF.format(dir=dv.dir, addr=DOVECOT, uid=pw.pw_uid, gid=pw.pw_gid,
                                                     maildirs=os.path.dirname(self.md), port=DOVECOT_IMAP))
        dv.write("passwd", "bouke:{PLAIN}dovecot\n")
        dv.start(["dovecot", "-F", "-c", dv.path("dovecot.conf")], ready="starting up", timeout=30)
        self.dv = dv

    def dovecot_imap(self):
        d = imaplib.IMAP4(DOVECOT, DOVECOT_IMAP, timeout=20)
        self.addCleanup(self.close_quietly, d)
        d.login("bouke", "dovecot")
        self.ok(d.select("INBOX"))
        return d

    def test_dovecot_reads_zolders_keywords_and_zolder_dovecots(self):
        self.deliver(1, 2, 3)
        m = self.imap()
        self.ok(m.store("1", "+FLAGS", "(\\Flagged Werk $Label1)"))
        self.ok(m.store("2", "+FLAGS", "($Label1)"))
        self.ok(m.store("3", "+FLAGS", "(\\Seen Prive)"))
        self.start_dovecot()
        d = self.dovecot_imap()
        got = {}
        for line in self.ok(d.fetch("1:3", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")):
            if isinstance(line, tuple):
                got[line[1].decode().strip()] = flags_of(line[0])
        self.assertEqual(got, {"Subject: bericht 1": norm("(\\Flagged Werk $Label1)"),
                               "Subject: bericht 2": norm("($Label1)"),
                               "Subject: bericht 3": norm("(\\Seen Prive)")}, self.dv.log()[-2000:])
        # Dovecot changes keywords (one of its own, one of ours); zolder sees both
        self.ok(d.store("2", "+FLAGS", "(Junk)"))
        self.ok(d.store("1", "-FLAGS", "(Werk)"))
        d.logout()
        self.ok(m.noop())
        data = {int(x.split()[0]): x for x in self.ok(m.fetch("1:3", "(FLAGS)"))}
        self.assertEqual(flags_of(data[1]), norm("(\\Flagged $Label1)"))
        self.assertEqual(flags_of(data[2]), norm("($Label1 Junk)"))
        # ... and zolder's next new keyword takes a letter Dovecot did not
        self.ok(m.store("3", "+FLAGS", "(Nog)"))
        with open(os.path.join(self.md, "dovecot-keywords")) as f:
            lines = f.read().splitlines()
        self.assertEqual(len({line.split()[0] for line in lines}), len(lines), lines)
        self.assertIn("Nog", [line.split()[1] for line in lines])
        d = self.dovecot_imap()
        data = self.ok(d.fetch("1:3", "(FLAGS)"))
        self.assertIn("Nog", flags_of(data[2]))
        d.logout()
        m.logout()


if __name__ == "__main__":
    unittest.main()
