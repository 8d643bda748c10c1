"""Integration tests for IMAP folders (docs/imap.md, "Folders"): a real zolderd on its own
loopback address; folders are mbox files under the user's mail_dir (STATE_DIR/home/USER/Mail
here), driven with Python's imaplib, curl and mbsync (isync): the first login's special-use
folders, CREATE/LIST/RENAME/DELETE of trees, modified UTF-7 names kept as UTF-8 on disk,
subscriptions, COPY and MOVE with COPYUID, APPEND with TRYCREATE, RENAME INBOX, folders
filled by delivery rules (also while SELECTed), and bad names."""

import imaplib
import os
import re
import shutil
import smtplib
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "helper"))
from zolderd_instance import SourceIMAP, Zolderd, crypt_hash, test_port, write_mbsyncrc  # noqa: E402

ADDRESS = "127.0.1.47"
SMTP_PORT = 2525
IMAP_PORT = test_port(2143)
LAN_HOST = "127.0.1.5"
PASSWORD = "geheim wachtwoord"
imaplib.Commands.setdefault("MOVE", ("SELECTED",))
imaplib.Commands.setdefault("UNSELECT", ("SELECTED",))


def message(n, extra_headers=""):
    return (f"From: Sjoerd de Vries <sjoerd@zolder.thuis>\r\nTo: bouke@zolder.thuis\r\n"
            f"Subject: bericht {n}\r\nMessage-ID: <{n}@zolder.thuis>\r\n{extra_headers}"
            f"Date: Sat, 28 Nov 2026 10:00:00 +0100\r\n\r\nRegel een van {n}\r\n")


class FoldersCase(unittest.TestCase):
    files = {}

    def setUp(self):
        conf = {"imap": f"{ADDRESS}:{IMAP_PORT}", "imap_timeout": "60", "filter": "no"}
        self.z = Zolderd(address=ADDRESS, port=SMTP_PORT, conf=conf, files=self.files,
                         users={"bouke": crypt_hash(PASSWORD), "sjoerd": crypt_hash("ander"), "admin": "*"})
        self.addCleanup(lambda: self.z.cleanup())
        if os.path.isdir(self.z.inst.path("var")):
            self.z.give_to_daemon("var")
        self.z.start()
        self.mail_dir = self.z.inst.path("var", "home", "bouke", "Mail")

    def deliver(self, *numbers, extra_headers=""):
        with smtplib.SMTP(ADDRESS, self.z.port, source_address=(LAN_HOST, 0), timeout=10) as s:
            for n in numbers:
                s.sendmail("sjoerd@zolder.thuis", ["bouke@zolder.thuis"], message(n, extra_headers))

    def wait_inbox(self, text):
        self.z.wait_for(lambda: text in self.z.mbox("bouke"), what="delivery")

    def imap(self):
        m = SourceIMAP(ADDRESS, IMAP_PORT, "127.0.0.1")
        self.addCleanup(self.close_quietly, m)
        m.login("bouke", PASSWORD)
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

    def no(self, result, code=None):
        typ, data = result
        self.assertEqual(typ, "NO", data)
        if code:
            self.assertIn(f"[{code}]".encode(), data[0])
        return data

    def names(self, m, *args):
        """LIST (or the command given) as {name: attributes}."""
        data = self.ok(m.list(*args)) if not args or args[0] != "raw" else args[1]
        out = {}
        for line in data:
            if line is None:
                continue
            match = re.match(rb'\(([^)]*)\) "/" (.*)$', line)
            self.assertIsNotNone(match, line)
            name = match.group(2)
            if name.startswith(b'"'):
                name = name[1:-1].replace(b'\\"', b'"').replace(b"\\\\", b"\\")
            out[name.decode()] = set(match.group(1).decode().split())
        return out

    def ext_list(self, m, *args):
        typ, data = m._simple_command("LIST", *args)
        typ, data = m._untagged_response(typ, data, "LIST")
        self.assertEqual(typ, "OK", data)
        return data

    def on_disk(self, *parts):
        return os.path.join(self.mail_dir, *parts)


class FoldersTest(FoldersCase):
    def test_first_login_makes_the_special_use_folders(self):
        self.assertFalse(os.path.exists(self.mail_dir))
        m = self.imap()
        self.assertEqual(os.stat(self.mail_dir).st_mode & 0o777, 0o700)
        for name in ("Sent", "Drafts", "Trash", "Junk"):
            self.assertEqual(os.path.getsize(self.on_disk(name)), 0)
        typ, caps = m.capability()
        for cap in (b"CHILDREN", b"SPECIAL-USE", b"MOVE", b"UIDPLUS", b"LITERAL+"):
            self.assertIn(cap, caps[0].split())
        listed = self.names(m)
        self.assertEqual(list(listed), ["INBOX", "Drafts", "Junk", "Sent", "Trash"])
        self.assertEqual(listed["Sent"], {"\\NoInferiors", "\\Sent"})
        self.assertEqual(listed["Junk"], {"\\NoInferiors", "\\Junk"})
        special = self.names(m, "raw", self.ext_list(m, "(SPECIAL-USE)", '""', '"*"'))
        self.assertEqual(set(special), {"Drafts", "Junk", "Sent", "Trash"})
        ret = self.names(m, "raw", self.ext_list(m, '""', '"%"', "RETURN", "(CHILDREN SPECIAL-USE SUBSCRIBED)"))
        self.assertEqual(ret["Trash"], {"\\NoInferiors", "\\Trash", "\\Subscribed"})
        self.assertEqual(ret["INBOX"], {"\\HasNoChildren", "\\Subscribed"})
        self.assertEqual(set(self.names(m, "raw", self.ok(m.lsub())) or {}), {"INBOX", "Drafts", "Junk", "Sent", "Trash"})
        typ, data = m._simple_command("NAMESPACE")
        self.assertEqual(m._untagged_response(typ, data, "NAMESPACE")[1], [b'(("" "/")) NIL NIL'])
        # an Archive folder gets its attribute too; a second login creates nothing again
        self.ok(m.create("Archive"))
        self.assertIn("\\Archive", self.names(m)["Archive"])
        self.ok(m.delete("Junk"))
        m.logout()
        m = self.imap()
        self.assertNotIn("Junk", self.names(m))
        # unsupported LIST options: a clean BAD
        with self.assertRaises(imaplib.IMAP4.error):
            m._simple_command("LIST", "(FOO)", '""', '"*"')
        with self.assertRaises(imaplib.IMAP4.error):
            m._simple_command("LIST", '""', '"*"', "RETURN", "(STATUS (MESSAGES))")

    def test_create_list_rename_delete_a_tree(self):
        m = self.imap()
        self.ok(m.create("Projects/"))
        self.assertTrue(os.path.isdir(self.on_disk("Projects")))
        self.assertEqual(self.names(m, '""', "Projects")["Projects"], {"\\Noselect", "\\HasNoChildren"})
        self.ok(m.create("Projects/2026/Plans"))
        self.assertTrue(os.path.isfile(self.on_disk("Projects", "2026", "Plans")))
        self.ok(m.create("Projects/Old"))
        listed = self.names(m, '""', "Projects*")
        self.assertEqual(listed, {"Projects": {"\\Noselect", "\\HasChildren"},
                                  "Projects/2026": {"\\Noselect", "\\HasChildren"},
                                  "Projects/2026/Plans": {"\\NoInferiors"},
                                  "Projects/Old": {"\\NoInferiors"}})
        self.assertEqual(set(self.names(m, '""', "%")), {"INBOX", "Drafts", "Junk", "Projects", "Sent", "Trash"})
        self.assertEqual(set(self.names(m, "Projects/", "%")), {"Projects/2026", "Projects/Old"})
        self.assertEqual(set(self.names(m, '""', "Projects/%/%")), {"Projects/2026/Plans"})
        self.assertEqual(set(self.names(m, '""', "projects*")), set())  # case-sensitive, like the disk
        self.no(m.create("Projects/Old"), "ALREADYEXISTS")
        self.no(m.create("INBOX"), "ALREADYEXISTS")
        self.no(m.create("Sent/Sub"), "CANNOT")     # an mbox cannot hold folders
        self.no(m.select("Projects"), "CANNOT")     # \Noselect
        self.no(m.select("Nergens"), "NONEXISTENT")
        # a folder with mail keeps its UIDs and UIDVALIDITY through RENAME (the index moves too)
        self.ok(m.append("Projects/2026/Plans", "(\\Flagged)", None, message(1).encode()))
        before = self.ok(m.status("Projects/2026/Plans", "(MESSAGES UIDVALIDITY UIDNEXT)"))[0]
        self.assertIn(b"MESSAGES 1", before)
        self.ok(m.rename("Projects", "Archive/Projects"))
        self.assertFalse(os.path.exists(self.on_disk("Projects")))
        self.assertTrue(os.path.isfile(self.on_disk("Archive", "Projects", "2026", "Plans")))
        self.assertEqual(set(self.names(m, '""', "Archive/*")),
                         {"Archive/Projects", "Archive/Projects/2026", "Archive/Projects/2026/Plans",
                          "Archive/Projects/Old"})
        after = self.ok(m.status("Archive/Projects/2026/Plans", "(MESSAGES UIDVALIDITY UIDNEXT)"))[0]
        self.assertEqual(before.split(b" (")[1], after.split(b" (")[1])
        self.ok(m.select("Archive/Projects/2026/Plans"))
        # renamed with its index, journal and \Recent boundary: no session has claimed it yet
        self.assertEqual(self.ok(m.fetch("1", "(UID FLAGS)"))[0], b"1 (UID 1 FLAGS (\\Flagged \\Recent))")
        self.ok(m.close())
        self.no(m.rename("Archive", "Archive/Deeper"), "CANNOT")
        self.no(m.rename("Nergens", "Iets"), "NONEXISTENT")
        self.no(m.rename("Sent", "Trash"), "ALREADYEXISTS")
        # DELETE: a folder of folders only when empty; INBOX never; the index goes with the mbox
        self.no(m.delete("Archive/Projects"), "CANNOT")
        index_dir = self.z.inst.path("var", "index", "bouke")
        self.assertIn("folder-Archive%2FProjects%2F2026%2FPlans", os.listdir(index_dir))
        self.ok(m.delete("Archive/Projects/2026/Plans"))
        self.assertNotIn("folder-Archive%2FProjects%2F2026%2FPlans", os.listdir(index_dir))
        self.ok(m.delete("Archive/Projects/2026/"))
        self.ok(m.delete("Archive/Projects/Old"))
        self.ok(m.delete("Archive/Projects"))
        self.assertEqual(os.listdir(self.on_disk("Archive")), [])
        self.no(m.delete("INBOX"), "CANNOT")
        self.no(m.delete("Nergens"), "NONEXISTENT")
        m.logout()
        self.assertIn("user=bouke rename Projects to Archive/Projects", self.z.log())

    def test_non_ascii_names_round_trip(self):
        m = self.imap()
        self.ok(m.create("Verzonden/R&AOk-"))
        self.assertTrue(os.path.isfile(self.on_disk("Verzonden", "R\u00e9")))   # UTF-8 on disk, for mutt
        self.assertIn("Verzonden/R&AOk-", self.names(m, '""', "Verzonden/*"))
        self.ok(m.append("Verzonden/R&AOk-", None, None, message(7).encode()))
        self.assertEqual(self.ok(m.select("Verzonden/R&AOk-")), [b"1"])
        self.assertIn(b"bericht 7", self.ok(m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))[0][1])
        self.ok(m.close())
        # made on disk by mutt: listed in modified UTF-7
        with open(self.on_disk("Entw\u00fcrfe"), "w"):
            pass
        self.assertIn("Entw&APw-rfe", self.names(m))
        # bad names: clean NOs, nothing created
        for bad in ("R&AOk", "&AGE-", "a//b", "/etc/passwd", "../buiten", "a/../b", ".verborgen", "rules",
                    "Sent.lock", "INBOX/kind", "x" * 300):
            self.no(m.create(bad), "CANNOT")
        m.literal = "R\u00e9".encode("utf-8")   # raw 8-bit on the wire, in a literal
        typ, data = m._simple_command("CREATE")
        self.assertEqual(typ, "NO", data)
        self.assertIn(b"modified UTF-7", data[0])
        self.no(m.select("../../spool/mail/sjoerd"), "CANNOT")
        m.literal = b"a\x00b"                          # NUL in a name: BAD from the parser
        with self.assertRaises(imaplib.IMAP4.error) as ctx:
            m._simple_command("CREATE")
        self.assertIn("NUL", str(ctx.exception))
        self.assertFalse(os.path.exists(self.z.inst.path("var", "home", "bouke", "buiten")))
        self.assertEqual(sorted(os.listdir(self.mail_dir)),
                         [".subscriptions", "Drafts", "Entw\u00fcrfe", "Junk", "Sent", "Trash", "Verzonden"])

    def test_copy_and_move_with_copyuid(self):
        self.deliver(1, 2, 3)
        self.wait_inbox("Subject: bericht 3")
        m = self.imap()
        self.ok(m.create("Archief"))
        self.ok(m.select("INBOX"))
        self.ok(m.store("2", "+FLAGS", "(\\Flagged $Belangrijk)"))
        dates = self.ok(m.fetch("1:3", "INTERNALDATE"))
        typ, data = m.copy("1:2", "Archief")
        self.assertEqual(typ, "OK", data)
        match = re.match(rb"\[COPYUID (\d+) 1:2 1:2\]", data[0])
        self.assertIsNotNone(match, data)
        self.no(m.copy("1", "Nergens"), "TRYCREATE")
        m.response("COPYUID")   # imaplib keeps the tagged COPYUID too: clear it
        # UID MOVE: COPYUID in an untagged OK, then EXPUNGE
        typ, data = m.uid("MOVE", "3", "Trash")
        self.assertEqual(typ, "OK", data)
        self.assertRegex(m.response("COPYUID")[1][0].decode(), r"^\d+ 3 1$")
        self.assertEqual(m.response("EXPUNGE")[1], [b"3"])
        self.assertEqual(self.ok(m.select("INBOX")), [b"2"])
        typ, data = m.uid("MOVE", "99", "Trash")   # no such UID: nothing to do
        self.assertEqual(typ, "OK", data)
        self.ok(m.select("Archief", readonly=True))
        flags = self.ok(m.fetch("1:2", "(UID FLAGS INTERNALDATE)"))
        # copies are new to this mailbox: \Recent to the first session that looks (EXAMINE shows it)
        self.assertIn(b"UID 2 FLAGS (\\Flagged \\Recent $Belangrijk)", flags[1])
        for i in range(2):   # INTERNALDATE kept
            self.assertEqual(re.search(rb'INTERNALDATE "[^"]*"', flags[i]).group(0),
                             re.search(rb'INTERNALDATE "[^"]*"', dates[i]).group(0))
        self.no(m.uid("MOVE", "1", "INBOX"), "READ-ONLY")
        self.ok(m.select("Trash"))
        self.assertIn(b"bericht 3", self.ok(m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))[0][1])
        # MOVE within a folder tree and into the selected mailbox itself
        typ, data = m.copy("1", "Trash")
        self.assertEqual(typ, "OK", data)
        self.assertIn(b"[COPYUID", data[0])
        self.ok(m.noop())
        self.assertEqual(self.ok(m.select("Trash")), [b"2"])
        m.logout()
        with open(self.on_disk("Archief"), encoding="utf-8") as f:
            box = f.read()
        self.assertEqual(box.count("\nSubject: bericht"), 2)
        self.assertIn("X-Keywords: $Belangrijk", box)     # flags in the mbox for mutt too
        self.assertNotIn("Subject: bericht 3", self.z.mbox("bouke"))

    def test_append_trycreate_and_appenduid(self):
        m = self.imap()
        self.no(m.append("Nergens", None, None, message(1).encode()), "TRYCREATE")
        self.assertFalse(os.path.exists(self.on_disk("Nergens")))
        data = self.ok(m.append("Sent", "(\\Seen)", None, message(2).encode()))
        self.assertRegex(data[0].decode(), r"^\[APPENDUID \d+ 1\]")
        self.assertIn(b"MESSAGES 1", self.ok(m.status("Sent", "(MESSAGES UNSEEN)"))[0])
        self.assertIn(b"UNSEEN 0", self.ok(m.status("Sent", "(MESSAGES UNSEEN)"))[0])
        self.no(m.status("Nergens", "(MESSAGES)"), "NONEXISTENT")

    def test_rename_inbox_moves_its_messages(self):
        self.deliver(1, 2)
        self.wait_inbox("Subject: bericht 2")
        m = self.imap()
        self.ok(m.rename("INBOX", "Oud/2026"))
        self.assertEqual(self.ok(m.select("INBOX")), [b"0"])
        self.assertEqual(self.ok(m.select("Oud/2026")), [b"2"])
        self.assertNotIn("Subject: bericht", self.z.mbox("bouke"))

    def test_subscriptions(self):
        m = self.imap()
        self.ok(m.create("Lijsten/zolder"))
        self.ok(m.create("Lijsten/debian"))
        self.ok(m.subscribe("Lijsten/zolder"))
        self.ok(m.subscribe("Weg"))               # a name that does not exist may be subscribed
        with open(self.on_disk(".subscriptions")) as f:
            self.assertEqual(f.read(), "Drafts\nJunk\nLijsten/zolder\nSent\nTrash\nWeg\n")
        self.assertIn("Lijsten/zolder", self.names(m, "raw", self.ok(m.lsub('""', "*"))))
        self.assertEqual(self.names(m, "raw", self.ok(m.lsub('""', "%")))["Lijsten"], {"\\Noselect"})
        subscribed = self.names(m, "raw", self.ext_list(m, "(SUBSCRIBED)", '""', '"*"'))
        self.assertEqual(subscribed["Weg"], {"\\NonExistent", "\\Subscribed"})
        self.assertEqual(subscribed["Lijsten/zolder"], {"\\NoInferiors", "\\Subscribed"})
        self.assertNotIn("Lijsten/debian", subscribed)
        data = self.ext_list(m, "(SUBSCRIBED RECURSIVEMATCH)", '""', '"%"')
        self.assertIn(b'(\\Noselect \\HasChildren) "/" Lijsten ("CHILDINFO" ("SUBSCRIBED"))', data)
        self.ok(m.rename("Lijsten", "Oud"))       # subscriptions follow a rename
        self.assertIn("Oud/zolder", self.names(m, "raw", self.ok(m.lsub('""', "*"))))
        self.ok(m.unsubscribe("Oud/zolder"))
        self.assertNotIn("Oud/zolder", self.names(m, "raw", self.ok(m.lsub('""', "*"))))
        self.ok(m.unsubscribe("INBOX"))           # INBOX stays subscribed
        self.assertIn("INBOX", self.names(m, "raw", self.ok(m.lsub('""', "*"))))

    def test_hidden_files_are_not_folders(self):
        m = self.imap()
        for name, text in ((".verborgen", "From x\n"), ("notities.txt", "gewoon tekst\n"), ("Sent.lock", "123"),
                           ("kapot\x01naam", "")):
            with open(self.on_disk(name), "w") as f:
                f.write(text)
        os.symlink("/etc/passwd", self.on_disk("link"))
        os.mkfifo(self.on_disk("fifo"))
        self.assertEqual(list(self.names(m)), ["INBOX", "Drafts", "Junk", "Sent", "Trash"])
        self.no(m.select("link"), "NONEXISTENT")
        self.no(m.select("notities.txt"), "NONEXISTENT")

    @unittest.skipUnless(shutil.which("curl"), "curl not installed")
    def test_curl_lists_folders(self):
        m = self.imap()
        self.ok(m.create("Verzonden/R&AOk-"))
        m.logout()
        out = subprocess.run(["curl", "-s", "--user", f"bouke:{PASSWORD}", "--interface", "127.0.0.1",
                              f"imap://{ADDRESS}:{IMAP_PORT}/"], capture_output=True, timeout=20)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(b'* LIST (\\NoInferiors \\Sent) "/" Sent', out.stdout)
        self.assertIn(b'* LIST (\\Noselect \\HasChildren) "/" Verzonden', out.stdout)
        self.assertIn(b'"/" Verzonden/R&AOk-', out.stdout)


class RulesFoldersTest(FoldersCase):
    """Folders that delivery rules fill (MAIL_DIR/rules, docs/filter.md)."""
    files = {"var/home/bouke/Mail/rules": "if header List-Id contains zolder-users then folder lijsten\n"}

    def test_rules_filed_message_appears_and_a_selected_folder_sees_delivery(self):
        self.deliver(1, extra_headers="List-Id: <zolder-users.zolder.thuis>\r\n")
        self.z.wait_for(lambda: os.path.exists(self.on_disk("lijsten")), what="rules delivery")
        m = self.imap()
        listed = self.names(m)
        self.assertIn("lijsten", listed)
        self.assertNotIn("rules", listed)                  # the rules file is not a folder
        self.assertNotIn("Sent", listed)                   # MAIL_DIR existed: nothing made at login
        self.no(m.create("rules"), "CANNOT")
        self.assertEqual(self.ok(m.select("lijsten")), [b"1"])
        self.deliver(2, extra_headers="List-Id: <zolder-users.zolder.thuis>\r\n")
        deadline = time.time() + 10
        exists = None
        while time.time() < deadline and exists != b"2":
            self.ok(m.noop())
            exists = (m.response("EXISTS")[1] or [None])[-1]
            time.sleep(0.2)
        self.assertEqual(exists, b"2")
        self.assertIn(b"bericht 2", self.ok(m.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))[0][1])


class MbsyncFoldersTest(FoldersCase):
    @unittest.skipUnless(shutil.which("mbsync"), "mbsync (isync) not installed")
    def test_mbsync_syncs_a_folder_tree_both_ways(self):
        self.deliver(1)
        self.wait_inbox("Subject: bericht 1")
        m = self.imap()
        self.ok(m.create("Projecten/Zolder"))
        self.ok(m.append("Projecten/Zolder", None, None, message(2).encode()))
        m.logout()
        home = self.z.inst.path("mbsync")
        near = os.path.join(home, "Mail")
        os.makedirs(near)
        rc = write_mbsyncrc(home, ADDRESS, IMAP_PORT, "bouke", PASSWORD, near,
                            "Channel all\nFar :far:\nNear :near:\nPatterns *\nSync All\nCreate Both\n"
                            "Expunge Both\nSyncState *\n",
                            near_extra="SubFolders Verbatim\n")

        def run():
            r = subprocess.run(["mbsync", "-c", rc, "all"], env={**os.environ, "HOME": home},
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr + "\n--- log ---\n" + self.z.log()[-3000:])

        def count(*parts):
            d = os.path.join(near, *parts)
            return len(os.listdir(os.path.join(d, "cur"))) + len(os.listdir(os.path.join(d, "new")))

        run()
        self.assertEqual(count("INBOX"), 1)
        self.assertEqual(count("Projecten", "Zolder"), 1)
        for name in ("Sent", "Drafts", "Trash", "Junk"):
            self.assertTrue(os.path.isdir(os.path.join(near, name, "cur")), name)
        # near -> far: a new local folder with a message, and a message in Sent
        for parts, body in ((("Lokaal", "Notities"), "notitie"), (("Sent",), "verstuurd")):
            d = os.path.join(near, *parts)
            for sub in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(d, sub), exist_ok=True)
            with open(os.path.join(d, "new", f"1.{body}.laptop"), "w") as f:
                f.write(f"From: bouke@zolder.thuis\nSubject: {body}\n\n{body}\n")
        run()
        self.assertTrue(os.path.isfile(self.on_disk("Lokaal", "Notities")))
        with open(self.on_disk("Lokaal", "Notities")) as f:
            self.assertIn("Subject: notitie", f.read())
        with open(self.on_disk("Sent")) as f:
            self.assertIn("Subject: verstuurd", f.read())
        # a third run changes nothing
        before = {p: count(*p) for p in (("INBOX",), ("Projecten", "Zolder"), ("Lokaal", "Notities"), ("Sent",))}
        run()
        self.assertEqual(before, {p: count(*p) for p in before})


if __name__ == "__main__":
    unittest.main()
