"""Integration tests for zolderd's IMAP service: a real zolderd on its own loopback address,
mail delivered over SMTP into the mbox spool, read with Python's imaplib (and curl): login,
select, fetch (envelope, bodystructure, sections), store, search, expunge, IDLE, two
sessions on one mailbox, STARTTLS and imaps, flags in the mbox as mutt keeps them, bad input."""

import base64
import imaplib
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "helper"))
from zolderd_instance import MBSYNC_INBOX_CHANNEL, SourceIMAP, Zolderd, crypt_hash, test_port, write_mbsyncrc  # noqa: E402,E501

ADDRESS = "127.0.1.43"
SMTP_PORT = 2525
IMAP_PORT = test_port(2143)
IMAPS_PORT = test_port(2993)
LAN_HOST = "127.0.1.5"
PASSWORD = "geheim wachtwoord"
imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))


def message(n, extra=""):
    return (f"From: Sjoerd de Vries <sjoerd@zolder.thuis>\r\nTo: bouke@zolder.thuis\r\n"
            f"Subject: bericht {n}\r\nMessage-ID: <{n}@zolder.thuis>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0100\r\n"
            f"\r\nRegel een van {n}\r\nFrom the attic {n}\r\n{extra}")


MULTIPART = ("From: sjoerd@zolder.thuis\r\nTo: bouke@zolder.thuis\r\nSubject: met bijlage\r\n"
             "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"grens\"\r\n\r\n"
             "preamble\r\n--grens\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHallo daar\r\n"
             "--grens\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\n"
             "Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"a.bin\"\r\n\r\n"
             "AAECAw==\r\n--grens\r\nContent-Type: message/rfc822\r\n\r\nSubject: binnen\r\nFrom: x@y.z\r\n\r\n"
             "innerlijk\r\n--grens--\r\n")


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class ImapCase(unittest.TestCase):
    tls = False
    extra_conf = {}

    def setUp(self):
        # the content filter would quarantine the malformed MIME these tests feed the IMAP
        # side (test_deep_mime); the filter has its own tests
        conf = {"imap": f"{ADDRESS}:{IMAP_PORT}", "imap_timeout": "60", "filter": "no"}
        conf.update(self.extra_conf)
        if self.tls:
            conf["imaps"] = f"{ADDRESS}:{IMAPS_PORT}"
        self.z = Zolderd(address=ADDRESS, port=SMTP_PORT, conf=conf, tls=self.tls,
                         users={"bouke": crypt_hash(PASSWORD), "sjoerd": crypt_hash("ander"), "admin": "*"})
        self.addCleanup(lambda: self.z.cleanup())
        self.z.start()

    def deliver(self, *numbers, raw=None):
        with smtplib.SMTP(ADDRESS, self.z.port, source_address=(LAN_HOST, 0), timeout=10) as s:
            for n in numbers:
                s.sendmail("sjoerd@zolder.thuis", ["bouke@zolder.thuis"], message(n))
            if raw:
                s.sendmail("sjoerd@zolder.thuis", ["bouke@zolder.thuis"], raw)
        last = f"Subject: bericht {numbers[-1]}" if numbers else "Subject: met bijlage"
        self.z.wait_for(lambda: last in self.z.mbox("bouke"), what="delivery")

    def imap(self, source="127.0.0.1", login=True, select=True):
        m = SourceIMAP(ADDRESS, IMAP_PORT, source)
        self.addCleanup(self.close_quietly, m)
        if login:
            m.login("bouke", PASSWORD)
        if select:
            typ, data = m.select("INBOX")
            self.assertEqual(typ, "OK", data)
        return m

    @staticmethod
    def close_quietly(m):
        try:
            m.shutdown()
        except OSError:
            pass

    def ok(self, result):
        typ, data = result
        self.assertEqual(typ, "OK", data)
        return data


class ImapTest(ImapCase):
    def test_login_select_fetch(self):
        self.deliver(1, 2, 3)
        m = self.imap(select=False)
        self.assertIn("IDLE", m.capabilities)
        self.assertIn("AUTH=PLAIN", m.capabilities)
        typ, data = m.select("INBOX")
        self.assertEqual(typ, "OK")
        self.assertEqual(data, [b"3"])
        self.assertEqual(m.untagged_responses.get("UIDVALIDITY", [b"0"])[0] != b"0", True)
        # the first session to see new mail gets \Recent (RFC 3501 2.3.2); the next one does not
        self.assertEqual(m.untagged_responses.get("RECENT"), [b"3"])
        data = self.ok(m.fetch("1:3", "(UID FLAGS RFC822.SIZE INTERNALDATE)"))
        self.assertEqual(len(data), 3)
        self.assertRegex(data[0].decode(), r'^1 \(UID 1 FLAGS \(\\Recent\) RFC822.SIZE \d+ INTERNALDATE "[ 0-9]\d-\w{3}-\d{4} ')
        self.assertEqual(self.ok(m.search(None, "RECENT")), [b"1 2 3"])
        self.assertEqual(self.ok(m.search(None, "OLD")), [b""])
        other = self.imap(select=False)
        self.assertEqual(self.ok(other.status("INBOX", "(MESSAGES RECENT)")), [b"INBOX (MESSAGES 3 RECENT 0)"])
        other.select("INBOX")
        self.assertEqual(other.untagged_responses.get("RECENT"), [b"0"])
        self.assertEqual(self.ok(other.fetch("1", "FLAGS"))[0], b"1 (FLAGS ())")
        self.assertEqual(self.ok(other.search(None, "NEW")), [b""])
        other.logout()
        # RFC822.SIZE is exactly the bytes BODY[] sends
        data = self.ok(m.fetch("2", "(RFC822.SIZE BODY.PEEK[])"))
        size = int(re.search(rb"RFC822.SIZE (\d+)", data[0][0]).group(1))
        self.assertEqual(len(data[0][1]), size)
        self.assertIn(b"Subject: bericht 2\r\n", data[0][1])
        self.assertIn(b"\r\nFrom the attic 2\r\n", data[0][1])  # mboxrd quoting undone
        # peek left \Seen alone; BODY[] sets it
        self.assertEqual(self.ok(m.fetch("2", "FLAGS"))[0], b"2 (FLAGS (\\Recent))")
        self.assertEqual(self.ok(m.search(None, "NEW")), [b"1 2 3"])
        data = self.ok(m.fetch("2", "BODY[TEXT]"))
        self.assertEqual(data[0][1], b"Regel een van 2\r\nFrom the attic 2\r\n")
        self.assertIn(b"\\Seen", b" ".join(x if isinstance(x, bytes) else b" ".join(x) for x in data))
        self.assertIn(b"\\Seen", self.ok(m.fetch("2", "FLAGS"))[0])
        # header sections and partials
        data = self.ok(m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)] BODY.PEEK[]<0.6>)"))
        self.assertEqual(data[0][1], b"From: Sjoerd de Vries <sjoerd@zolder.thuis>\r\nSubject: bericht 1\r\n\r\n")
        self.assertEqual(data[1][1], b"Delive")
        data = self.ok(m.fetch("1", "(BODY.PEEK[HEADER.FIELDS.NOT (Received Return-Path Delivered-To From To Date Message-ID)])"))
        self.assertEqual(data[0][1], b"Subject: bericht 1\r\n\r\n")
        data = self.ok(m.fetch("3", "(RFC822.HEADER)"))
        self.assertTrue(data[0][1].endswith(b"\r\n\r\n"))
        # UID FETCH names UIDs; unknown UIDs are skipped, absurd ranges are fine
        data = self.ok(m.uid("FETCH", "2:4294967295", "(FLAGS)"))
        self.assertEqual([d.split()[2] for d in data], [b"2", b"3"])
        self.assertEqual(self.ok(m.uid("FETCH", "99", "FLAGS")), [None])
        m.logout()
        self.assertIn("imapd", self.z.log())
        self.assertIn("login user=bouke", self.z.log())

    def test_envelope_and_bodystructure(self):
        self.deliver(1, raw=MULTIPART)
        m = self.imap()
        data = self.ok(m.fetch("1", "(ENVELOPE)"))
        env = data[0].decode()
        self.assertIn('"Sat, 28 Nov 2026 10:00:00 +0100" "bericht 1"', env)
        self.assertIn('(("Sjoerd de Vries" NIL "sjoerd" "zolder.thuis"))', env)
        self.assertIn('((NIL NIL "bouke" "zolder.thuis"))', env)
        self.assertIn('"<1@zolder.thuis>"', env)
        data = self.ok(m.fetch("2", "(BODYSTRUCTURE)"))
        bs = data[0].decode()
        self.assertIn('("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 10 1', bs)
        self.assertIn('"APPLICATION" "OCTET-STREAM" ("NAME" "a.bin") NIL NIL "BASE64" 8', bs)
        self.assertIn('("ATTACHMENT" ("FILENAME" "a.bin"))', bs)
        self.assertIn('"MESSAGE" "RFC822" NIL NIL NIL "7BIT"', bs)
        self.assertIn('"binnen"', bs)
        self.assertIn('"MIXED" ("BOUNDARY" "grens")', bs)
        data = self.ok(m.fetch("2", "(BODY.PEEK[1] BODY.PEEK[2] BODY.PEEK[2.MIME] BODY.PEEK[3.HEADER] BODY.PEEK[3.TEXT] BODY.PEEK[3.1])"))
        self.assertEqual(data[0][1], b"Hallo daar")
        self.assertEqual(data[1][1], b"AAECAw==")
        self.assertTrue(data[2][1].startswith(b"Content-Type: application/octet-stream"))
        self.assertEqual(data[3][1], b"Subject: binnen\r\nFrom: x@y.z\r\n\r\n")
        self.assertEqual(data[4][1], b"innerlijk")
        self.assertEqual(data[5][1], b"innerlijk")
        data = self.ok(m.fetch("2", "(BODY)"))
        self.assertNotIn(b"ATTACHMENT", data[0])  # BODY has no extension data
        # a section that does not exist: empty, not an error
        data = self.ok(m.fetch("2", "(BODY.PEEK[9])"))
        self.assertIn(b"BODY[9] NIL", data[0])
        m.logout()

    def test_store_search_expunge_and_flags_in_the_mbox(self):
        self.deliver(1, 2, 3, 4)
        m = self.imap()
        data = self.ok(m.store("1,3", "+FLAGS", "(\\Deleted \\Flagged)"))
        self.assertEqual(len(data), 2)
        self.assertIn(b"\\Deleted", data[0])
        self.ok(m.store("2", "+FLAGS.SILENT", "(\\Seen $Werk)"))
        self.assertEqual(self.ok(m.search(None, "DELETED")), [b"1 3"])
        self.assertEqual(self.ok(m.search(None, "UNSEEN")), [b"1 3 4"])
        self.assertEqual(self.ok(m.search(None, "KEYWORD", "$Werk")), [b"2"])
        self.assertEqual(self.ok(m.search(None, "OR", "SEEN", "FLAGGED")), [b"1 2 3"])
        self.assertEqual(self.ok(m.search(None, "NOT", "DELETED", "SUBJECT", "bericht")), [b"2 4"])
        self.assertEqual(self.ok(m.search(None, "FROM", "sjoerd", "BODY", "van 4")), [b"4"])
        self.assertEqual(self.ok(m.search(None, "HEADER", "Message-ID", "3@zolder")), [b"3"])
        self.assertEqual(self.ok(m.search(None, "TEXT", "attic 2")), [b"2"])
        self.assertEqual(self.ok(m.search(None, "2:*", "LARGER", "10", "SMALLER", "100000")), [b"2 3 4"])
        self.assertEqual(self.ok(m.search(None, "SENTON", "28-Nov-2026")), [b"1 2 3 4"])
        self.assertEqual(self.ok(m.search(None, "SENTBEFORE", "1-Jan-2000")), [b""])
        self.assertEqual(self.ok(m.search(None, "SINCE", "1-Jan-2000", "BEFORE", "1-Jan-2200")), [b"1 2 3 4"])
        self.assertEqual(self.ok(m.uid("SEARCH", "UID", "3:*")), [b"3 4"])
        self.assertEqual(self.ok(m.search(None, "ALL")), [b"1 2 3 4"])
        # flags are in the index now, not yet in the mbox
        self.assertNotIn("X-Keywords", self.z.mbox("bouke"))
        typ, data = m.expunge()
        self.assertEqual(typ, "OK")
        self.assertEqual(data, [b"3", b"1"] if data[0] == b"3" else [b"1", b"2"])
        box = self.z.mbox("bouke")
        self.assertNotIn("Subject: bericht 1\n", box)
        self.assertNotIn("Subject: bericht 3\n", box)
        # mutt's fields for the kept messages
        self.assertRegex(box, r"Subject: bericht 2\n(.*\n)*Status: RO\nX-Keywords: \$Werk\n\nRegel een van 2")
        # an unchanged message is copied as it is
        self.assertRegex(box, r"Subject: bericht 4\nMessage-ID: <4@zolder.thuis>\nDate: .*\n\nRegel een van 4")
        self.assertEqual(self.ok(m.search(None, "ALL")), [b"1 2"])
        self.assertEqual(self.ok(m.fetch("1", "(UID FLAGS)"))[0], b"1 (UID 2 FLAGS (\\Seen \\Recent $Werk))")
        m.logout()
        # a new session (and UIDs) after the rewrite
        m = self.imap()
        self.assertEqual(self.ok(m.fetch("1:*", "(UID)")), [b"1 (UID 2)", b"2 (UID 4)"])
        # UID EXPUNGE removes only the named \Deleted messages
        self.ok(m.store("1:2", "+FLAGS", "(\\Deleted)"))
        data = self.ok(m.uid("EXPUNGE", "4"))
        self.assertEqual(self.ok(m.uid("SEARCH", "ALL")), [b"2"])
        # CLOSE expunges silently
        self.ok(m.close())
        m.logout()
        self.assertNotIn("bericht", self.z.mbox("bouke"))

    def test_flags_set_by_mutt_are_read(self):
        self.deliver(1, 2)
        path = self.z.mbox_path("bouke")
        with open(path) as f:
            box = f.read()
        box = box.replace("Subject: bericht 2\n", "Subject: bericht 2\nStatus: RO\nX-Status: AF\nX-Keywords: klus\n")
        with open(path, "w") as f:
            f.write(box)
        m = self.imap()
        data = self.ok(m.fetch("1:2", "FLAGS"))
        self.assertEqual(data[0], b"1 (FLAGS (\\Recent))")
        self.assertEqual(data[1], b"2 (FLAGS (\\Seen \\Answered \\Flagged \\Recent klus))")
        m.logout()

    def test_idle_sees_a_new_delivery(self):
        self.deliver(1)
        m = self.imap()
        tag = m._new_tag().decode()
        m.send(f"{tag} IDLE\r\n".encode())
        self.assertTrue(m.readline().startswith(b"+ "))
        self.deliver(2)
        m.sock.settimeout(10)
        line = m.readline()
        self.assertEqual(line, b"* 2 EXISTS\r\n")
        self.assertEqual(m.readline(), b"* 2 RECENT\r\n")
        m.send(b"DONE\r\n")
        self.assertTrue(m.readline().startswith(f"{tag} OK".encode()))
        self.assertEqual(self.ok(m.fetch("2", "(BODY.PEEK[HEADER.FIELDS (Subject)])"))[0][1],
                         b"Subject: bericht 2\r\n\r\n")
        m.logout()

    def test_two_sessions_see_each_others_changes(self):
        self.deliver(1, 2, 3)
        a = self.imap()
        b = self.imap()
        self.ok(a.store("2", "+FLAGS", "(\\Deleted)"))
        # b learns about the flag on NOOP, as an untagged FETCH
        b.noop()
        fetches = b.untagged_responses.pop("FETCH", [])
        self.assertTrue(any(b"\\Deleted" in f for f in fetches), fetches)
        a.expunge()
        # b is told of the expunge on NOOP (not during FETCH)
        typ, data = b.noop()
        self.assertEqual(b.untagged_responses.pop("EXPUNGE", None), [b"2"])
        self.assertEqual(self.ok(b.fetch("1:*", "(UID)")), [b"1 (UID 1)", b"2 (UID 3)"])
        # during a FETCH the expunge waits: the message stays in the view as gone
        self.ok(b.store("1", "+FLAGS", "(\\Deleted)"))
        b.expunge()
        data = a.fetch("1:*", "(UID BODY.PEEK[HEADER.FIELDS (Subject)])")
        self.assertEqual(data[0], "NO", data)  # EXPUNGEISSUED for the gone message
        fetched = a.untagged_responses.pop("FETCH", [])
        self.assertIn(b"bericht 3", b"".join(x[1] for x in fetched if isinstance(x, tuple)))
        self.assertNotIn("EXPUNGE", a.untagged_responses)
        a.noop()
        self.assertEqual(a.untagged_responses.pop("EXPUNGE", None), [b"1"])
        self.assertEqual(self.ok(a.fetch("1:*", "(UID)")), [b"1 (UID 3)"])
        a.logout()
        b.logout()

    def test_append(self):
        self.deliver(1)
        m = self.imap()
        msg = b"From: a@b\r\nSubject: opgeslagen\r\n\r\nFrom here on\r\nregel\r\n"
        typ, data = m.append("INBOX", "(\\Seen $Concept)", '"05-Jan-2026 01:02:03 +0000"', msg)
        self.assertEqual(typ, "OK", data)
        self.assertRegex(data[0], rb"^\[APPENDUID \d+ 2\] Append completed.")
        # the selected session sees it at once
        self.assertEqual(m.untagged_responses.get("EXISTS")[-1], b"2")
        data = self.ok(m.fetch("2", "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])"))
        self.assertIn(b"FLAGS (\\Seen \\Recent $Concept)", data[0][0])
        self.assertIn(b'" 5-Jan-2026 ', data[0][0])
        self.assertEqual(data[0][1], msg)
        self.assertIn(f"RFC822.SIZE {len(msg)}".encode(), data[0][0])
        self.assertIn("\n>From here on\n", self.z.mbox("bouke"))  # mboxrd, as delivery writes it
        self.assertEqual(m.append("Archief", None, None, msg)[0], "NO")
        m.logout()
        # flags reach the mbox when the last session leaves (deferred compaction), and a new
        # session sees all
        self.z.wait_for(lambda: "X-Keywords: $Concept" in self.z.mbox("bouke"), what="flags in the mbox")
        m = self.imap(select=False)
        self.ok(m.append("INBOX", None, None, b"Subject: drie\r\n\r\nx\r\n"))
        self.assertEqual(self.ok(m.select()), [b"3"])
        m.logout()

    def test_delivery_while_two_imap_and_one_pop3_session_are_open(self):
        import poplib
        self.z.stop()
        with open(self.z.config, "a") as f:
            f.write(f"pop3 = {ADDRESS}:{test_port(2110)}\n")
        self.z.start()
        self.deliver(1, 2)
        a = self.imap()
        b = self.imap()
        p = poplib.POP3(ADDRESS, test_port(2110), timeout=10)
        self.addCleanup(p.close)
        p.user("bouke")
        p.pass_(PASSWORD)
        self.assertEqual(p.stat()[0], 2)
        self.deliver(3, 4)
        for m in (a, b):
            m.noop()
            self.assertEqual(m.untagged_responses.pop("EXISTS", [None])[-1], b"4")
        self.assertEqual(p.stat()[0], 2)  # POP3 keeps the maildrop of its login
        p.dele(1)
        self.ok(a.store("3", "+FLAGS", "(\\Deleted)"))
        a.expunge()
        b.noop()
        self.assertEqual(b.untagged_responses.pop("EXPUNGE", None), [b"3"])
        self.assertEqual(p.quit()[:3], b"+OK")
        a.noop()
        b.noop()
        self.assertEqual(a.untagged_responses.pop("EXPUNGE", None), [b"1"])
        self.assertEqual(b.untagged_responses.pop("EXPUNGE", None), [b"1"])
        self.assertEqual(self.ok(a.fetch("1:*", "(UID)")), [b"1 (UID 2)", b"2 (UID 4)"])
        self.assertEqual(self.ok(b.uid("SEARCH", "ALL")), [b"2 4"])
        a.logout()
        b.logout()

    def test_large_fetch_pauses_and_resumes(self):
        line = "x" * 998 + "\r\n"
        big = "Subject: groot\r\n\r\n" + line * 2000  # about 2 MB each, 10 MB in all: past the 4 MiB mark
        with smtplib.SMTP(ADDRESS, self.z.port, source_address=(LAN_HOST, 0), timeout=30) as smtp:
            for _ in range(5):
                smtp.sendmail("sjoerd@zolder.thuis", ["bouke@zolder.thuis"], big)
        self.z.wait_for(lambda: self.z.mbox("bouke").count("Subject: groot") == 5, what="delivery")
        m = self.imap()
        tag = m._new_tag().decode()
        # the FETCH and a pipelined NOOP: the NOOP is read only after the FETCH has gone out
        m.send(f"{tag} FETCH 1:* (BODY.PEEK[TEXT])\r\nn1 NOOP\r\n".encode())
        time.sleep(0.5)  # let the server's output pile up
        got = 0
        while True:
            head = m.readline()
            if head.startswith(f"{tag} ".encode()):
                break
            size = int(re.search(rb"\{(\d+)\}\r\n$", head).group(1))
            got += len(m.read(size))
            m.readline()  # ")"
        self.assertEqual(head, f"{tag} OK Fetch completed.\r\n".encode())
        self.assertEqual(got, 5 * 2000 * 1000)
        self.assertEqual(m.readline(), b"n1 OK NOOP completed.\r\n")
        m.logout()

    def test_bad_input_gets_clean_errors(self):
        self.deliver(1)
        m = self.imap()
        for args in (("FETCH", "0", "FLAGS"), ("FETCH", "2", "FLAGS"), ("FETCH", "1:99999999999", "FLAGS"),
                     ("FETCH", "1", "(FOO)"), ("FETCH", "1", "BODY[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17]"),
                     ("STORE", "1", "+FLAGS", "(\\Bogus)"), ("SEARCH", "FOO"), ("SEARCH", "CHARSET", "KOI8-R", "ALL")):
            with self.assertRaises(imaplib.IMAP4.error, msg=args):
                m._simple_command(*args)
        tag = m._new_tag().decode()
        m.send(f"{tag} FROBNICATE\r\n".encode())
        self.assertEqual(m.readline(), f"{tag} BAD Unknown command.\r\n".encode())
        # an absurd UID set is fine, and a deep MIME message does not hurt
        self.assertEqual(self.ok(m.uid("FETCH", "1:4294967295,*,1:*", "(UID)")), [b"1 (UID 1)"])
        # a huge literal announced: refused before any byte is sent, the session goes on
        tag = m._new_tag().decode()
        m.send(f"{tag} LOGIN {{99999999}}\r\n".encode())
        self.assertEqual(m.readline(), f"{tag} BAD Literal too large.\r\n".encode())
        # a LITERAL+ one: the connection is closed, cleanly
        other = self.imap(login=False, select=False)
        other.send(b"x1 LOGIN {99999999+}\r\nabc")
        other.sock.settimeout(10)
        self.assertTrue(other.readline().startswith(b"* BYE"))
        self.assertEqual(other.readline(), b"")
        # a very long line
        other = self.imap(login=False, select=False)
        other.send(b"x2 NOOP " + b"A" * 20000 + b"\r\nx3 NOOP\r\n")
        self.assertEqual(other.readline(), b"x2 BAD Command line too long.\r\n")
        self.assertEqual(other.readline(), b"x3 OK NOOP completed.\r\n")
        self.assertEqual(self.ok(m.noop()), [b"NOOP completed."])
        m.logout()

    def test_deep_mime(self):
        depth = 60
        raw = "From: a@b\r\nTo: bouke@zolder.thuis\r\nSubject: diep\r\n"
        for i in range(depth):
            raw += f"Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
        raw += "\r\ndiepste\r\n"
        self.deliver(raw=raw.replace("Subject: diep", "Subject: met bijlage"))
        m = self.imap()
        data = self.ok(m.fetch("1", "(BODYSTRUCTURE ENVELOPE BODY.PEEK[1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1])"))
        self.assertIn(b"BODYSTRUCTURE", data[0][0])
        self.assertIn(b"zolder", self.ok(m.noop())[0] + b"zolder")
        m.logout()

    def test_other_commands(self):
        m = self.imap(select=False)
        self.assertEqual(self.ok(m.select()), [b"0"])
        self.assertEqual(self.ok(m.fetch("1:*", "FLAGS")), [None])  # empty mailbox: nothing, no error
        with self.assertRaises(imaplib.IMAP4.error):
            m.fetch("1", "FLAGS")
        self.ok(m.close())
        # the first login made the special-use folders (tests/integration/test_imapd_folders.py)
        self.assertEqual(self.ok(m.list()), [b'(\\HasNoChildren) "/" INBOX', b'(\\NoInferiors \\Drafts) "/" Drafts',
                                             b'(\\NoInferiors \\Junk) "/" Junk', b'(\\NoInferiors \\Sent) "/" Sent',
                                             b'(\\NoInferiors \\Trash) "/" Trash'])
        self.assertEqual(self.ok(m.list('""', '""')), [b'(\\Noselect) "/" ""'])
        self.assertEqual(self.ok(m.list('""', "Archief*")), [None])
        self.assertEqual(self.ok(m.lsub('""', "IN*")), [b'() "/" INBOX'])
        self.assertIn(b"MESSAGES 0", self.ok(m.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN RECENT)"))[0])
        self.assertEqual(m.select("Archief")[0], "NO")
        self.ok(m.create("Archief"))
        self.ok(m.namespace())
        typ, data = m._simple_command("ID", "NIL")
        self.assertEqual(typ, "OK")
        self.ok(m._simple_command("ENABLE", "CONDSTORE"))
        self.ok(m.select("INBOX", readonly=True))
        self.assertEqual(m.store("1:*", "+FLAGS", "(\\Seen)")[0], "NO")
        self.ok(m._simple_command("UNSELECT"))
        with self.assertRaises(imaplib.IMAP4.error):
            m.fetch("1", "FLAGS")  # not in the selected state
        m.logout()

    def test_login_failures_and_authenticate_plain(self):
        m = self.imap(login=False, select=False)
        started = time.monotonic()
        with self.assertRaises(imaplib.IMAP4.error):
            m.login("bouke", "fout")
        self.assertGreater(time.monotonic() - started, 0.9)  # failed logins are slowed
        self.assertIn("login failed from [127.0.0.1] user=bouke", self.z.log())
        self.assertNotIn("fout", self.z.log())
        m.authenticate("PLAIN", lambda _: b"\0bouke\0" + PASSWORD.encode())
        self.ok(m.select())
        m.logout()
        # SASL-IR: the initial response on the command line
        m = self.imap(login=False, select=False)
        token = base64.b64encode(b"\0bouke\0" + PASSWORD.encode()).decode()
        typ, data = m._simple_command("AUTHENTICATE", "PLAIN", token)
        self.assertEqual(typ, "OK")
        m.logout()

    def test_plaintext_refused_from_the_lan_without_tls(self):
        m = self.imap(source=LAN_HOST, login=False, select=False)
        self.assertIn("LOGINDISABLED", m.capabilities)
        with self.assertRaises(imaplib.IMAP4.error) as ctx:
            m.login("bouke", PASSWORD)
        self.assertIn("PRIVACYREQUIRED", str(ctx.exception))
        m.logout()

    @unittest.skipUnless(shutil.which("curl"), "curl not installed")
    def test_curl_imap(self):
        self.deliver(1, 2)
        url = f"imap://{ADDRESS}:{IMAP_PORT}/INBOX"
        out = subprocess.run(["curl", "-s", "--user", f"bouke:{PASSWORD}", "--interface", "127.0.0.1",
                              url + ";UID=2"], capture_output=True, timeout=20)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(b"Subject: bericht 2", out.stdout)
        out = subprocess.run(["curl", "-s", "--user", f"bouke:{PASSWORD}", "--interface", "127.0.0.1",
                              url + "?SUBJECT%20%22bericht%201%22"], capture_output=True, timeout=20)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(b"* SEARCH 1", out.stdout)


class ImapClientsTest(ImapCase):
    """Real clients from Debian: fetchmail and mbsync (isync)."""
    tls = True

    def run_tool(self, args, home):
        r = subprocess.run(args, env={**os.environ, "HOME": home}, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + "\n--- log ---\n" + self.z.log()[-3000:])
        return r.stdout + r.stderr

    @unittest.skipUnless(shutil.which("fetchmail"), "fetchmail not installed")
    def test_fetchmail_imap(self):
        self.deliver(1, 2)
        home = self.z.inst.path("fetchmail")
        os.makedirs(home)
        rc = os.path.join(home, "fetchmailrc")
        out = os.path.join(home, "out.bsmtp")
        with open(rc, "w") as f:
            f.write("set no bouncemail\n"
                    f"poll {ADDRESS} protocol imap port {IMAP_PORT} timeout 20:\n"
                    f'  user "bouke" password "{PASSWORD}" is "bouke" here\n'
                    '  sslproto "TLS1.2+" no sslcertck\n  fetchall\n')
        os.chmod(rc, 0o600)
        log = self.run_tool(["fetchmail", "-f", rc, "--nodetach", "--nosyslog", "-v", "--bsmtp", out,
                             "--idfile", os.path.join(home, "ids"), "--pidfile", os.path.join(home, "pid")], home)
        with open(out) as f:
            bsmtp = f.read()
        self.assertEqual(bsmtp.count("\nDATA\n"), 2, log)
        self.assertIn("upgrade to TLS succeeded", log)
        self.assertIn("Subject: bericht 1\n", bsmtp)
        self.assertIn("\nFrom the attic 2\n", bsmtp)
        # fetchmail marked them \Deleted and expunged: the spool is empty now
        self.assertNotIn("bericht", self.z.mbox("bouke"))

    @unittest.skipUnless(shutil.which("mbsync"), "mbsync (isync) not installed")
    def test_mbsync_both_ways(self):
        self.deliver(1, 2, 3)
        home = self.z.inst.path("mbsync")
        maildir = os.path.join(home, "Mail")
        os.makedirs(maildir)
        rc = write_mbsyncrc(home, ADDRESS, IMAP_PORT, "bouke", PASSWORD, maildir, MBSYNC_INBOX_CHANNEL)
        cmd = ["mbsync", "-c", rc, "inbox"]
        self.run_tool(cmd, home)
        cur = lambda: sorted(os.listdir(os.path.join(maildir, "INBOX", "cur")) +  # noqa: E731
                             os.listdir(os.path.join(maildir, "INBOX", "new")))
        self.assertEqual(len(cur()), 3)
        # near -> far: one message read and one deleted locally, one new message to upload
        names = cur()
        sub = lambda n: "cur" if os.path.exists(os.path.join(maildir, "INBOX", "cur", n)) else "new"  # noqa: E731
        bodies = {}
        for n in names:
            with open(os.path.join(maildir, "INBOX", sub(n), n)) as f:
                bodies[n] = f.read()
        two = next(n for n in names if "Subject: bericht 2" in bodies[n])
        three = next(n for n in names if "Subject: bericht 3" in bodies[n])
        base = lambda n: n.split(":2,")[0]  # noqa: E731
        os.rename(os.path.join(maildir, "INBOX", sub(two), two), os.path.join(maildir, "INBOX", "cur", base(two) + ":2,S"))
        os.rename(os.path.join(maildir, "INBOX", sub(three), three),
                  os.path.join(maildir, "INBOX", "cur", base(three) + ":2,T"))
        with open(os.path.join(maildir, "INBOX", "new", "1.local.zolder"), "w") as f:
            f.write("From: bouke@zolder.thuis\nSubject: lokaal\n\nGeschreven op de laptop.\n")
        # far side: a new delivery and a flag set by another client
        self.deliver(4)
        m = self.imap()
        self.ok(m.store("1", "+FLAGS", "(\\Flagged)"))
        m.logout()
        self.run_tool(cmd, home)
        # the expunge's bytes leave the mbox a second after mbsync's session (deferred compaction)
        self.z.wait_for(lambda: "Subject: bericht 3\n" not in self.z.mbox("bouke"), what="compaction")
        box = self.z.mbox("bouke")
        self.assertNotIn("Subject: bericht 3\n", box)       # deleted near, expunged far
        self.assertIn("Subject: lokaal\n", box)            # uploaded with APPEND
        self.assertRegex(box, r"Subject: bericht 2\n(.*\n)*Status: RO\n")
        names = cur()
        self.assertEqual(len(names), 4)                    # 1, 2, 4 and the local one
        self.assertTrue(any("F" in n.split(":2,")[1] for n in names if ":2," in n), names)  # \\Flagged came near
        # a third run changes nothing
        self.run_tool(cmd, home)
        self.assertEqual(cur(), names)

    @unittest.skipUnless(shutil.which("mutt") and shutil.which("script"), "mutt or script not installed")
    def test_mutt_and_zolder_agree_on_flags(self):
        """zolder's flags reach mutt through the mbox, mutt's reach zolder, and mutt over IMAP works."""
        self.deliver(1, 2, 3)
        m = self.imap()
        self.ok(m.store("2", "+FLAGS", "(\\Flagged)"))
        self.ok(m._simple_command("CHECK"))  # writes the flags into the mbox
        m.logout()
        self.assertRegex(self.z.mbox("bouke"), r"Subject: bericht 2\n(.*\n)*X-Status: F\n")
        self.assertNotIn("X-Status", self.z.mbox("bouke").split("Subject: bericht 3")[1])
        home = self.z.inst.path("mutt")
        os.makedirs(home)
        out = os.path.join(home, "flagged.txt")
        rc = os.path.join(home, "muttrc")
        with open(rc, "w") as f:
            f.write("set mbox_type=mbox\nset wait_key=no\nset pipe_decode=no\nset quit=yes\nset move=no\n"
                    "set confirmappend=no\nset delete=yes\nset sort=mailbox-order\nset auto_tag=yes\n"
                    f'push "<tag-pattern>~F<enter><pipe-message>cat >> {out}<enter>'
                    '<untag-pattern>~A<enter><search>~s bericht.3<enter><flag-message><sync-mailbox><quit>"\n')
        os.makedirs(os.path.join(home, "Mail"))  # else mutt asks to create it, eating the pushed keys
        # mutt works on the spool file itself, taking the same locks as delivery and zolder
        run = ["script", "-qec", f"mutt -n -F {rc} -f {self.z.mbox_path('bouke')}", "/dev/null"]
        r = subprocess.run(run, env={**os.environ, "HOME": home, "TERM": "vt100"}, capture_output=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stdout[-2000:])
        with open(out) as f:
            flagged = f.read()
        self.assertIn("Subject: bericht 2", flagged, r.stdout[-3000:])  # mutt read zolder's X-Status: F
        self.assertNotIn("Subject: bericht 1", flagged)
        m = self.imap()
        data = self.ok(m.fetch("1:3", "(UID FLAGS)"))
        self.assertEqual(data[0], b"1 (UID 1 FLAGS ())")     # UIDs kept across mutt's rewrite
        self.assertIn(b"UID 2 FLAGS (\\Flagged", data[1])
        self.assertIn(b"UID 3 FLAGS (\\Flagged", data[2])  # zolder read mutt's flag
        m.logout()

    @unittest.skipUnless(shutil.which("mutt") and shutil.which("script"), "mutt or script not installed")
    def test_mutt_over_imap(self):
        self.deliver(1, 2)
        home = self.z.inst.path("mutt")
        os.makedirs(home)
        os.makedirs(os.path.join(home, "Mail"))
        rc = os.path.join(home, "muttrc")
        with open(rc, "w") as f:
            f.write(f"set folder=imap://bouke@{ADDRESS}:{IMAP_PORT}/\nset spoolfile=+INBOX\n"
                    f'set imap_pass="{PASSWORD}"\nset ssl_starttls=no\nset ssl_force_tls=no\n'
                    "set wait_key=no\nset quit=yes\nset move=no\nset delete=yes\nset sort=mailbox-order\n"
                    'push "<search>~s bericht.1<enter><delete-message><next-undeleted><flag-message><sync-mailbox>'
                    '<quit>"\n')
        run = ["script", "-qec", f"mutt -n -F {rc}", "/dev/null"]
        r = subprocess.run(run, env={**os.environ, "HOME": home, "TERM": "vt100"}, capture_output=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stdout[-2000:])
        box = self.z.mbox("bouke")
        self.assertNotIn("Subject: bericht 1\n", box, self.z.log()[-2000:])
        self.assertRegex(box, r"Subject: bericht 2\n(.*\n)*X-Status: F\n")


class ImapTlsTest(ImapCase):
    tls = True

    def test_starttls_then_login_from_the_lan(self):
        self.deliver(1)
        m = self.imap(source=LAN_HOST, login=False, select=False)
        self.assertIn("STARTTLS", m.capabilities)
        m.starttls(ssl_context=tls_context())
        self.assertNotIn("STARTTLS", m.capabilities)
        self.assertIn("AUTH=PLAIN", m.capabilities)
        m.login("bouke", PASSWORD)
        self.assertEqual(self.ok(m.select()), [b"1"])
        m.logout()
        self.assertIn("TLS established", self.z.log())

    def test_bytes_pipelined_after_starttls_are_discarded(self):
        s = socket.create_connection((ADDRESS, IMAP_PORT), 10, source_address=(LAN_HOST, 0))
        self.addCleanup(s.close)
        f = s.makefile("rb")
        self.assertTrue(f.readline().startswith(b"* OK"))
        s.sendall(b"a STARTTLS\r\nb LOGIN bouke x\r\n")
        self.assertTrue(f.readline().startswith(b"a OK"))
        self.z.wait_log("discarded 17 bytes pipelined after STARTTLS")
        tls = tls_context().wrap_socket(s)
        self.addCleanup(tls.close)
        tf = tls.makefile("rb")
        tls.sendall(b"c NOOP\r\n")
        self.assertEqual(tf.readline(), b"c OK NOOP completed.\r\n")

    def test_imaps_implicit_tls(self):
        self.deliver(1, 2)
        m = imaplib.IMAP4_SSL(ADDRESS, IMAPS_PORT, ssl_context=tls_context(), timeout=10)
        self.addCleanup(self.close_quietly, m)
        m.login("bouke", PASSWORD)
        self.assertEqual(self.ok(m.select()), [b"2"])
        self.assertIn(b"Subject: bericht 1", self.ok(m.fetch("1", "BODY.PEEK[]"))[0][1])
        m.logout()


if __name__ == "__main__":
    unittest.main()
