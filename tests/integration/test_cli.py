"""Integration tests for the commands: `sendmail` (enqueue through zolderd's SMTP service,
-t, -i, -bs, -bp, -q and the sysexits statuses) and `zolderctl` (mailq, flush, reload, ping,
hold/release/delete), against a real zolderd on 127.0.1.31."""

import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "helper"))
import zolder_test  # noqa: E402
from zolderd_instance import Zolderd  # noqa: E402

ADDRESS = "127.0.1.31"
PORT = 2525

EX_USAGE, EX_DATAERR, EX_NOUSER, EX_TEMPFAIL, EX_CONFIG = 64, 65, 67, 75, 78
QUEUE_ID = re.compile(r"^([0-9A-Z]{16})(!?) ", re.M)


class CliCase(unittest.TestCase):
    def setUp(self):
        self.z = Zolderd(address=ADDRESS, port=PORT, name="zolder-cli")
        # Registered before start(): a daemon that fails to start still leaves no folder.
        self.addCleanup(self.z.cleanup)
        self.z.start()

    def run_cmd(self, name, *args, input=b"", env=None, timeout=30):
        full_env = dict(os.environ)
        full_env.pop("ZOLDER_CONFIG", None)
        full_env.update(env or {})
        return subprocess.run([zolder_test.binary(name), *args], input=input, capture_output=True,
                              timeout=timeout, env=full_env)

    def sendmail(self, *args, input=b"", env=None):
        return self.run_cmd("sendmail", "-C", self.z.config, *args, input=input, env=env)

    def ctl(self, *args):
        return self.run_cmd("zolderctl", "-c", self.z.config, *args)

    def assertExit(self, proc, status):
        self.assertEqual(proc.returncode, status,
                         f"stdout={proc.stdout!r} stderr={proc.stderr!r}\n--- log ---\n{self.z.log()}")

    def wait_mbox(self, user, text):
        self.z.wait_for(lambda: text in self.z.mbox(user), what=f"{text!r} in {user}'s mbox")
        return self.z.mbox(user)

    def queue_remote(self, subject="for afar"):
        """Queues one message for a remote recipient (deferred: dns = nodns and no hosts entry)."""
        p = self.sendmail("jan@paprika", input=f"Subject: {subject}\n\nx\n".encode())
        self.assertExit(p, 0)
        self.z.wait_for(lambda: len(self.z.queue_ids()) == 1, what="one queued message")
        return self.z.queue_ids()[0]


class SendmailTest(CliCase):
    def test_delivers_locally_as_a_trusted_local_program(self):
        msg = b"Subject: hoi\n\nFrom the attic\n.dot at the start\nlast line without newline"
        p = self.sendmail("sjoerd@zolder.thuis", input=msg)
        self.assertExit(p, 0)
        self.assertEqual(p.stderr, b"")
        box = self.wait_mbox("sjoerd", "last line without newline")
        self.assertIn("Subject: hoi", box)
        # Handed over from 127.0.0.1 although zolderd listens on 127.0.1.31.
        self.assertRegex(box, r"Received: from localhost \(localhost \[127\.0\.0\.1\]\)")
        self.assertIn("\n.dot at the start\n", box)       # stuffed on the wire, unstuffed again
        self.assertIn("\n>From the attic\n", box)         # mbox quoting, by the daemon
        self.assertRegex(box, r"\nFrom: .*<?[a-z0-9_-]+@zolder\.thuis>?\n")  # added: there was none
        self.assertNotIn("\r", box)

    def test_unqualified_recipient_and_sender_get_the_hostname(self):
        p = self.sendmail("-f", "cron", "sjoerd", input=b"Subject: qualified\n\nx\n")
        self.assertExit(p, 0)
        box = self.wait_mbox("sjoerd", "Subject: qualified")
        self.assertTrue(box.startswith("From cron@zolder.thuis "), box[:80])
        self.assertIn("From: cron@zolder.thuis\n", box)

    def test_full_name_from_F(self):
        p = self.sendmail("-f", "sjoerd@zolder.thuis", "-F", "Sjoerd Visser", "bouke@zolder.thuis",
                          input=b"Subject: named\n\nx\n")
        self.assertExit(p, 0)
        box = self.wait_mbox("bouke", "Subject: named")
        self.assertIn("From: Sjoerd Visser <sjoerd@zolder.thuis>\n", box)

    def test_t_takes_to_cc_bcc_and_removes_bcc(self):
        msg = (b"From: Sjoerd <sjoerd@zolder.thuis>\n"
               b"To: Sjoerd <sjoerd@zolder.thuis>\n"
               b"Cc: admin\n"
               b"Bcc: bouke@zolder.thuis\n"
               b"Subject: blind copy\n\nhallo\n")
        p = self.sendmail("-t", input=msg)
        self.assertExit(p, 0)
        for user in ("sjoerd", "admin", "bouke"):
            box = self.wait_mbox(user, "Subject: blind copy")
            self.assertNotIn("Bcc:", box)
        # The blind copy stays blind: nothing in the others' copies names bouke.
        self.assertNotIn("bouke", self.z.mbox("sjoerd"))
        self.assertNotIn("bouke", self.z.mbox("admin"))
        self.assertIn("Cc: admin\n", self.z.mbox("sjoerd"))

    def test_t_with_no_recipients_is_a_data_error(self):
        p = self.sendmail("-t", input=b"Subject: nobody\n\nx\n")
        self.assertExit(p, EX_DATAERR)
        self.assertIn(b"no recipient addresses found", p.stderr)

    def test_lone_dot_ends_input_unless_i(self):
        msg = b"Subject: dots\n\nbefore\n.\nafter\n"
        p = self.sendmail("sjoerd@zolder.thuis", input=msg)
        self.assertExit(p, 0)
        box = self.wait_mbox("sjoerd", "before")
        self.assertNotIn("after", box)

        for flag in ("-i", "-oi"):
            p = self.sendmail(flag, "bouke@zolder.thuis", input=msg.replace(b"dots", flag.encode()))
            self.assertExit(p, 0)
            box = self.wait_mbox("bouke", f"Subject: {flag}\n")
            part = box.split(f"Subject: {flag}\n")[1]
            self.assertIn("before\n.\nafter\n", part)

    def test_unknown_user_is_67_and_nothing_is_sent(self):
        p = self.sendmail("sjoerd@zolder.thuis", "niemand@zolder.thuis", input=b"Subject: x\n\nx\n")
        self.assertExit(p, EX_NOUSER)
        self.assertRegex(p.stderr.decode(), r"sendmail: niemand@zolder\.thuis: 550 5\.1\.1 .*User unknown")
        self.assertIn(b"message not sent", p.stderr)
        time.sleep(0.3)
        self.assertEqual(self.z.mbox("sjoerd"), "")   # all or nothing

    def test_daemon_stopped_is_75(self):
        self.z.stop()
        p = self.sendmail("sjoerd@zolder.thuis", input=b"Subject: x\n\nx\n")
        self.assertExit(p, EX_TEMPFAIL)
        self.assertIn(b"cannot connect to zolderd at 127.0.1.31:2525", p.stderr)
        self.assertExit(self.sendmail("-q"), EX_TEMPFAIL)
        for cmd in ("ping", "flush", "reload"):
            p = self.ctl(cmd)
            self.assertExit(p, EX_TEMPFAIL)
            self.assertIn(b"zolderd is not running", p.stderr)

    def test_config_from_environment(self):
        p = self.run_cmd("sendmail", "sjoerd@zolder.thuis", input=b"Subject: via env\n\nx\n",
                         env={"ZOLDER_CONFIG": self.z.config})
        self.assertExit(p, 0)
        self.wait_mbox("sjoerd", "Subject: via env")

    def test_usage_and_config_errors(self):
        self.assertExit(self.sendmail("-Z", "x"), EX_USAGE)
        self.assertExit(self.sendmail("-bs", "x"), EX_USAGE)
        p = self.sendmail(input=b"Subject: x\n\nx\n")
        self.assertExit(p, EX_USAGE)
        self.assertIn(b"no recipients", p.stderr)
        p = self.run_cmd("sendmail", "-C", self.z.inst.path("missing.conf"), "x")
        self.assertExit(p, EX_CONFIG)
        self.assertExit(self.run_cmd("zolderctl", "-c", self.z.inst.path("missing.conf"), "ping"),
                        EX_CONFIG)
        self.assertExit(self.ctl("frobnicate"), EX_USAGE)
        self.assertExit(self.ctl("hold"), EX_USAGE)
        self.assertExit(self.ctl("mailq", "extra"), EX_USAGE)

    def test_bs_relays_an_smtp_dialogue(self):
        proc = subprocess.Popen([zolder_test.binary("sendmail"), "-C", self.z.config, "-bs"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def reply():
            lines = []
            while True:
                line = proc.stdout.readline().decode()
                self.assertTrue(line.endswith("\r\n"), repr(line))
                lines.append(line)
                if line[3] == " ":
                    return int(line[:3]), lines

        def cmd(text):
            proc.stdin.write(text.encode() + b"\r\n")
            proc.stdin.flush()
            return reply()

        try:
            self.assertEqual(reply()[0], 220)
            code, lines = cmd("EHLO localhost")
            self.assertEqual(code, 250)
            self.assertTrue(any("PIPELINING" in l for l in lines))
            self.assertEqual(cmd("MAIL FROM:<sjoerd@zolder.thuis>")[0], 250)
            self.assertEqual(cmd("RCPT TO:<niemand@zolder.thuis>")[0], 550)
            self.assertEqual(cmd("RCPT TO:<bouke@zolder.thuis>")[0], 250)
            self.assertEqual(cmd("DATA")[0], 354)
            self.assertEqual(cmd("Subject: via -bs\r\n\r\nhoi\r\n.")[0], 250)
            self.assertEqual(cmd("QUIT")[0], 221)
            proc.stdin.close()
            self.assertEqual(proc.wait(10), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        box = self.wait_mbox("bouke", "Subject: via -bs")
        self.assertRegex(box, r"\[127\.0\.0\.1\]")

    def test_bs_without_daemon_answers_421(self):
        self.z.stop()
        p = self.sendmail("-bs", input=b"EHLO x\r\n")
        self.assertExit(p, EX_TEMPFAIL)
        self.assertTrue(p.stdout.startswith(b"421 "), p.stdout)


class ZolderctlTest(CliCase):
    def test_mailq_empty(self):
        p = self.ctl("mailq")
        self.assertExit(p, 0)
        self.assertEqual(p.stdout, b"Mail queue is empty\n")
        p = self.sendmail("-bp")
        self.assertExit(p, 0)
        self.assertEqual(p.stdout, b"Mail queue is empty\n")

    def test_mailq_shows_remote_recipient_deferred(self):
        qid = self.queue_remote()
        # the first attempt defers at once (dns = nodns): its reason and the next attempt's
        # time are kept in the queue file and shown (before it: "waiting for remote delivery")
        self.z.wait_for(lambda: b"; next attempt " in self.ctl("mailq").stdout, what="the deferral reason")
        p = self.ctl("mailq")
        self.assertExit(p, 0)
        out = p.stdout.decode()
        self.assertTrue(out.startswith("-Queue ID-  "), out)
        self.assertRegex(out, rf"(?m)^{qid} +\d+ \w{{3}} \w{{3}} [ \d]\d \d\d:\d\d:\d\d  \S+@zolder\.thuis$")
        self.assertRegex(out, r"(?m)^ {46}\(Host or domain name not found: paprika [^;\n]*; "
                              r"next attempt \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d\)\n {47}jan@paprika$")
        self.assertIn("-- 1 Kbytes in 1 Request.", out)
        self.assertEqual(self.sendmail("-bp").stdout, p.stdout)

    def test_hold_release_delete(self):
        qid = self.queue_remote()
        p = self.ctl("hold", qid)
        self.assertExit(p, 0)
        self.assertEqual(p.stdout.decode(), f"{qid}: held\n")
        self.assertEqual(self.z.queue_ids(), [])
        self.assertIn(f"{qid}!", self.ctl("mailq").stdout.decode())
        self.assertEqual(self.ctl("hold", qid).stdout.decode(), f"{qid}: already held\n")

        p = self.ctl("release", qid)
        self.assertExit(p, 0)
        self.assertTrue(p.stdout.decode().startswith(f"{qid}: released\n"), p.stdout)
        self.assertEqual(self.z.queue_ids(), [qid])
        out = self.ctl("mailq").stdout.decode()
        self.assertIn(f"{qid} ", out)
        self.assertNotIn(f"{qid}!", out)

        p = self.ctl("delete", qid)
        self.assertExit(p, 0)
        self.assertEqual(p.stdout.decode(), f"{qid}: deleted\n")
        self.assertEqual(self.ctl("mailq").stdout, b"Mail queue is empty\n")

        p = self.ctl("delete", qid)
        self.assertExit(p, 1)
        self.assertIn(f"{qid}: no such message in the queue".encode(), p.stderr)
        p = self.ctl("release", "0000000000000000")
        self.assertExit(p, 1)
        p = self.ctl("hold", "../../../etc/passwd")
        self.assertExit(p, 1)
        self.assertIn(b"not a queue id", p.stderr)

    def test_some_ids_fail_others_proceed(self):
        qid = self.queue_remote()
        p = self.ctl("hold", "NOSUCHIDNOSUCHID", qid)
        self.assertExit(p, 1)
        self.assertEqual(p.stdout.decode(), f"{qid}: held\n")
        self.assertIn(b"NOSUCHIDNOSUCHID: no such message", p.stderr)

    def test_flush_ping_reload(self):
        self.queue_remote()
        p = self.ctl("flush")
        self.assertExit(p, 0)
        self.assertIn(b"queue run done", p.stdout)
        self.z.wait_log("queue run:")
        self.assertExit(self.sendmail("-q"), 0)
        p = self.ctl("ping")
        self.assertExit(p, 0)
        self.assertEqual(p.stdout, b"pong\n")
        p = self.ctl("reload")
        self.assertExit(p, 0)
        self.z.wait_log("reloaded")
        # Still deferred, never dropped.
        self.assertIn(b"jan@paprika", self.ctl("mailq").stdout)


if __name__ == "__main__":
    unittest.main()
