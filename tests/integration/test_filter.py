"""Integration tests for the content filter (docs/filter.md): a real zolderd on its own
loopback address; mail handed over SMTP is scanned after its 250 and before delivery.

- the seed's Sober.K case: a banned .exe and an EICAR body from the null sender are
  quarantined, bouke gets nothing, the admin gets the seed-shaped notice;
- a zip holding a banned name, a zip bomb, doubtful MIME: quarantined;
- clean multipart mail (with a harmless zip) is delivered;
- zolderctl quarantine list/show/release/delete; a released message is not rescanned;
- the clamd back-end against Debian's clamav-daemon started here with a local signature
  database (EICAR and a pattern only clamd knows); clamd down -> deferred, or delivered
  unscanned with filter_fail_open.
"""

import base64
import io
import os
import shutil
import signal
import smtplib
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "helper"))
from zolderd_instance import Zolderd, crypt_hash, test_port  # noqa: E402
import zolder_test  # noqa: E402

ADDRESS = "127.0.1.44"
SMTP_PORT = 2625
LAN_HOST = "127.0.1.5"
CLAMD = shutil.which("clamd") or "/usr/sbin/clamd"
# Two halves, so this file is not itself the EICAR test file.
EICAR = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-" + "ANTIVIRUS-TEST-FILE!$H+H*"
CLAMD_ONLY = "ZOLDER-CLAMD-ONLY-TEST-PATTERN-4711"


def b64(data):
    return base64.encodebytes(data).decode().replace("\n", "\r\n")


def multipart(subject, parts, sender="sjoerd@zolder.thuis", extra_headers=""):
    """parts: (content-type line, extra headers, body) tuples."""
    out = (f"{extra_headers}From: {sender}\r\nTo: bouke@zolder.thuis\r\nSubject: {subject}\r\n"
           "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"grens\"\r\n\r\n")
    for ctype, headers, body in parts:
        out += f"--grens\r\nContent-Type: {ctype}\r\n{headers}\r\n{body}\r\n"
    return out + "--grens--\r\n"


def make_zip(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


class FilterCase(unittest.TestCase):
    conf = {}

    def setUp(self):
        conf = {"filter_archive_expanded": "1048576"}
        conf.update(self.conf)
        self.z = Zolderd(address=ADDRESS, port=SMTP_PORT, conf=conf)
        self.addCleanup(lambda: self.z.cleanup())
        self.z.start()

    def send(self, msg, sender="sjoerd@zolder.thuis", rcpts=("bouke@zolder.thuis",)):
        with smtplib.SMTP(ADDRESS, self.z.port, source_address=(LAN_HOST, 0), timeout=10) as s:
            s.sendmail(sender, list(rcpts), msg.encode())

    def ctl(self, *args):
        return self.z.run_tool("zolderctl", "-c", self.z.config, *args)

    def quarantine_dir(self):
        return self.z.inst.path("var", "quarantine")

    def quarantined(self):
        try:
            return sorted(n for n in os.listdir(self.quarantine_dir()) if "." not in n)
        except FileNotFoundError:
            return []

    def wait_quarantined(self, n=1):
        self.z.wait_for(lambda: len(self.quarantined()) >= n, what=f"{n} quarantined")
        return self.quarantined()

    def wait_notice(self, text):
        self.z.wait_for(lambda: text in self.z.mbox("admin"), what=f"notice with {text!r}")
        return self.z.mbox("admin")


class FilterVerdicts(FilterCase):
    def test_sober_k_seed_case(self):
        """The seed's notice: a banned .exe and a virus, from <>, for bouke."""
        msg = multipart("Your IP was logged", [
            ("text/plain", "", "Dear Sir/Madam, see the attachment.\r\n" + EICAR),
            ("application/octet-stream; name=\"Liste.exe\"",
             "Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"Liste.exe\"\r\n",
             b64(b"MZ\x90\x00" + b"\x00" * 60)),
        ], sender="news@cstesucgr.gov",
            extra_headers="Received: from cstesucgr.gov (cstesucgr.gov [198.51.100.7]) by relay.example "
                          "with SMTP id 1; Sat, 16 Nov 2002 22:03:00 +0000\r\n")
        self.send(msg, sender="")
        ids = self.wait_quarantined()
        notice = self.wait_notice("WAS NOT delivered")
        for line in ("A virus (Eicar-Test-Signature) was found.",
                     "A banned name (.exe) was found.",
                     "Scanner detecting a virus: zolder built-in signatures",
                     "The mail originated from: <>",
                     "According to the 'Received:' trace, the message originated at:\n   cstesucgr.gov "
                     "(cstesucgr.gov [198.51.100.7])",
                     "Notification to sender will not be mailed.",
                     "The message WAS NOT delivered to:\n<bouke@zolder.thuis>:"):
            self.assertIn(line, notice.replace("\r\n", "\n"))
        self.assertIn(f"quarantined as {ids[0]}", notice)
        self.assertEqual(self.z.mbox("bouke"), "", "bouke must get nothing")
        self.assertEqual(self.z.queue_ids(), [], "nothing stays queued")
        # the quarantine is the run_as user's only
        st = os.stat(self.quarantine_dir())
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.quarantine_dir(), ids[0])).st_mode) & 0o077, 0)
        log = self.z.log()
        self.assertIn(f"{ids[0]}: filter=quarantined virus=Eicar-Test-Signature", log)
        self.assertEqual(log.count(f"{ids[0]}: filter="), 1, "one verdict line per message")
        # no notice to the (forged) sender: only the admin's notice was queued and delivered
        self.assertNotIn("news@cstesucgr.gov", "".join(self.z.queue_ids()))

    def test_notice_names_alias_targets(self):
        """Mail for an alias: the notice says where it would have gone (after expansion)."""
        self.send(multipart("voor de baas", [("application/octet-stream; name=\"baas.exe\"", "", "TVqQ")]),
                  rcpts=("postmaster@zolder.thuis", "bouke@zolder.thuis"))
        ids = self.wait_quarantined()
        notice = self.wait_notice("WAS NOT delivered").replace("\r\n", "\n")
        self.assertIn(f"<postmaster@zolder.thuis> (for: admin):\n   quarantined as {ids[0]}", notice)
        self.assertIn(f"<bouke@zolder.thuis>:\n   quarantined as {ids[0]}", notice)

    def test_zip_with_banned_name(self):
        z = make_zip([("lees mij.txt", b"hallo"), ("docs/factuur.pdf.exe", b"not really")])
        self.send(multipart("factuur", [("text/plain", "", "zie bijlage"),
                                        ("application/zip; name=\"factuur.zip\"",
                                         "Content-Transfer-Encoding: base64\r\n", b64(z))]))
        self.wait_quarantined()
        notice = self.wait_notice("A banned name (.exe) was found.")
        self.assertIn("The banned attachment: docs/factuur.pdf.exe", notice)
        self.assertEqual(self.z.mbox("bouke"), "")

    def test_zip_bomb(self):
        bomb = make_zip([("zeros.bin", b"\0" * (16 * 1024 * 1024))])
        self.assertLess(len(bomb), 64 * 1024)
        self.send(multipart("bom", [("application/zip; name=\"bom.zip\"",
                                     "Content-Transfer-Encoding: base64\r\n", b64(bomb))]))
        self.wait_quarantined()
        notice = self.wait_notice("zip bomb")
        self.assertIn("A message with doubtful content (archive refused: zip bomb", notice)
        self.assertEqual(self.z.mbox("bouke"), "")

    def test_malformed_mime_quarantined(self):
        msg = ("From: sjoerd@zolder.thuis\r\nSubject: kapot\r\nMIME-Version: 1.0\r\n"
               "Content-Type: multipart/mixed\r\n\r\n--x\r\nContent-Type: application/octet-stream; "
               "name=a.exe\r\n\r\nMZ\r\n--x--\r\n")
        self.send(msg)
        self.wait_quarantined()
        self.wait_notice("malformed MIME")
        self.assertEqual(self.z.mbox("bouke"), "")

    def test_clean_multipart_delivered(self):
        z = make_zip([("notes.txt", b"boodschappen"), ("foto.jpg", b"\xff\xd8\xff\xe0 jpeg")])
        msg = multipart("vakantiefoto's", [
            ("text/plain; charset=utf-8", "", "Hoi Bouke, de foto's."),
            ("application/pdf; name=\"reis.pdf\"", "Content-Transfer-Encoding: base64\r\n",
             b64(b"%PDF-1.4 nothing to see")),
            ("application/zip; name=\"fotos.zip\"", "Content-Transfer-Encoding: base64\r\n", b64(z)),
        ])
        self.send(msg)
        self.z.wait_for(lambda: "Subject: vakantiefoto's" in self.z.mbox("bouke"), what="delivery")
        self.assertEqual(self.quarantined(), [])
        self.assertIn("filter=clean", self.z.log())
        self.assertNotIn("Content-filter", self.z.mbox("admin"))

    def test_release_and_delete(self):
        msg = multipart("spelletje", [("application/octet-stream; name=\"spel.exe\"", "", "TVqQAAMAAAAEAAAA")])
        self.send(msg)
        self.send(msg.replace("spelletje", "tweede spelletje"))
        ids = self.wait_quarantined(2)
        out = self.ctl("quarantine", "list")
        self.assertEqual(out.returncode, 0, out.stderr)
        text = out.stdout.decode()
        for qid in ids:
            self.assertIn(qid, text)
        self.assertIn("banned=.exe (spel.exe)", text)
        shown = self.ctl("quarantine", "show", ids[0])
        self.assertEqual(shown.returncode, 0, shown.stderr)
        self.assertIn(b"Subject: spelletje", shown.stdout)
        self.assertIn(b"Recipient: <bouke@zolder.thuis>", shown.stdout)
        # ids are validated before they become paths
        bad = self.ctl("quarantine", "release", "../../etc/passwd")
        self.assertEqual(bad.returncode, 1)
        self.assertIn(b"not a queue id", bad.stderr)
        self.assertEqual(self.ctl("quarantine", "frobnicate", ids[0]).returncode, 64)
        # release: delivered without a rescan
        rel = self.ctl("quarantine", "release", ids[0])
        self.assertEqual(rel.returncode, 0, rel.stderr)
        self.z.wait_for(lambda: "Subject: spelletje" in self.z.mbox("bouke"), what="released delivery")
        self.assertEqual(self.z.log().count(f"{ids[0]}: filter="), 1, "released mail is not rescanned")
        # delete: gone for good
        dele = self.ctl("quarantine", "delete", ids[1])
        self.assertEqual(dele.returncode, 0, dele.stderr)
        self.assertEqual(self.quarantined(), [])
        self.assertEqual(self.ctl("quarantine", "show", ids[1]).returncode, 1)
        self.assertNotIn("tweede spelletje", self.z.mbox("bouke"))

    def test_restart_does_not_rescan(self):
        """A message scanned clean that still waits in the queue (a remote recipient, no
        route) is not scanned again by the next run, nor after a restart."""
        self.send("From: sjoerd@zolder.thuis\r\nSubject: naar buiten\r\n\r\nhallo\r\n",
                  rcpts=("jan@paprika.example",))
        self.z.wait_log("filter=clean")
        ids = self.z.queue_ids()
        self.assertEqual(len(ids), 1)
        mode = os.stat(self.z.inst.path("var", "queue", "msg", ids[0])).st_mode
        self.assertTrue(mode & stat.S_IXUSR, "the scanned mark is on the queue file")
        self.assertEqual(self.ctl("flush").returncode, 0)
        self.z.stop()
        self.z.start()
        self.assertEqual(self.ctl("flush").returncode, 0)
        self.assertEqual(self.z.queue_ids(), ids)
        self.assertEqual(self.z.log().count(f"{ids[0]}: filter="), 1, "scanned once")


class FilterReload(FilterCase):
    def test_reload_changes_the_lists(self):
        """A reload applies new lists; a bad signature file is refused, the running filter kept."""
        with open(self.z.config) as f:
            conf = f.read()
        self.z.inst.write("sigs", "Test.Bad hex 0011\n")
        self.z.inst.write("zolder.conf", conf + "virus_signatures = sigs\n")
        self.assertEqual(self.ctl("reload").returncode, 0)
        self.z.wait_log("reload refused, keeping the running config")
        self.assertIn("sigs:1: hex pattern", self.z.log())
        self.z.inst.write("sigs", "Zolder.Test.Local text ZOLDER-LOCAL-SIGNATURE\n")
        self.z.inst.write("zolder.conf", conf + "virus_signatures = sigs\nbanned_extensions = .scr\n")
        self.assertEqual(self.ctl("reload").returncode, 0)
        self.z.wait_log(f"reloaded {self.z.config}")
        self.send(multipart("spelletje", [("application/octet-stream; name=\"spel.exe\"", "", "TVqQ")]))
        self.z.wait_for(lambda: "Subject: spelletje" in self.z.mbox("bouke"), what=".exe delivered after reload")
        self.send("From: sjoerd@zolder.thuis\r\nSubject: lokaal\r\n\r\nZOLDER-LOCAL-SIGNATURE\r\n")
        self.wait_notice("A virus (Zolder.Test.Local) was found.")
        self.assertNotIn("Subject: lokaal", self.z.mbox("bouke"))


class FilterKillNine(FilterCase):
    """kill -9 while mail is being filtered: clean mail is delivered exactly once, banned mail
    is quarantined exactly once and the admin gets exactly one notice for each."""

    def test_kill9_nothing_lost_nothing_twice(self):
        total = 80
        acked = []
        done = threading.Event()

        def message(i):
            tag = f"k9-{i:03d}"
            if i % 2:
                return tag, multipart(tag, [("application/octet-stream; name=\"spel.exe\"", "X-Tag: " + tag + "\r\n",
                                             "TVqQAAMAAAAEAAAA")])
            return tag, f"From: sjoerd@zolder.thuis\r\nSubject: {tag}\r\nX-Tag: {tag}\r\n\r\nschoon\r\n"

        def kept(tag):
            if tag in self.z.mbox("bouke"):
                return True
            for d in (("var", "queue", "msg"), ("var", "quarantine")):
                folder = self.z.inst.path(*d)
                for name in os.listdir(folder) if os.path.isdir(folder) else []:
                    try:
                        with open(os.path.join(folder, name), "rb") as f:
                            if tag.encode() in f.read():
                                return True
                    except (FileNotFoundError, IsADirectoryError):
                        pass
            return False

        def sender():
            i = 0
            while i < total:
                tag, msg = message(i)
                try:
                    with smtplib.SMTP(ADDRESS, self.z.port, source_address=(LAN_HOST, 0), timeout=10) as s:
                        s.sendmail("sjoerd@zolder.thuis", ["bouke@zolder.thuis"], msg.encode())
                    acked.append(tag)
                    i += 1
                except (OSError, smtplib.SMTPException):
                    time.sleep(0.3)
                    deadline = time.monotonic() + 30
                    while time.monotonic() < deadline:
                        try:
                            with smtplib.SMTP(ADDRESS, self.z.port, timeout=2) as probe:
                                probe.noop()
                            break
                        except (OSError, smtplib.SMTPException):
                            time.sleep(0.05)
                    if kept(tag):
                        acked.append(tag)
                        i += 1
            done.set()

        t = threading.Thread(target=sender)
        t.start()
        kills = []
        for threshold in (20, 50):
            self.z.wait_for(lambda th=threshold: len(acked) >= th, timeout=60, what=f"{threshold} acks")
            kills.append(len(acked))
            self.z.kill9()
            self.z.start()
        t.join(120)
        self.assertTrue(done.is_set())
        self.assertTrue(all(k < total for k in kills), kills)
        self.z.wait_for(lambda: not self.z.queue_ids(), timeout=60, what="queue drained")
        inbox = self.z.mbox("bouke")
        for i in range(total):
            tag = f"k9-{i:03d}"
            if i % 2:
                self.assertNotIn(f"X-Tag: {tag}", inbox)
            else:
                self.assertEqual(inbox.count(f"X-Tag: {tag}\n"), 1, tag)
        ids = self.quarantined()
        self.assertEqual(len(ids), total // 2, "each banned message quarantined once")
        notices = self.z.mbox("admin")
        for qid in ids:
            self.assertEqual(notices.count(f"quarantined as {qid}"), 1, qid)
        self.assertEqual(notices.count("Subject: BANNED FILENAME"), total // 2, "one notice each")


class FilterOff(FilterCase):
    conf = {"filter": "no"}

    def test_filter_off_delivers(self):
        msg = multipart("spelletje", [("application/octet-stream; name=\"spel.exe\"", "", "TVqQAAMAAAAEAAAA")])
        self.send(msg)
        self.z.wait_for(lambda: "Subject: spelletje" in self.z.mbox("bouke"), what="delivery")
        self.assertEqual(self.quarantined(), [])


class ClamdDown(FilterCase):
    """clamd configured but not answering: deferred, never delivered unscanned."""
    conf = {"clamd": "unix:/nonexistent/zolder-test-clamd.ctl", "local_retry_delay": "1"}

    def test_clamd_down_defers(self):
        self.send("From: sjoerd@zolder.thuis\r\nSubject: wacht\r\n\r\nhallo\r\n")
        self.z.wait_log("filter=deferred (cannot connect to clamd")
        time.sleep(1.5)  # a retry comes and defers again
        self.assertEqual(len(self.z.queue_ids()), 1, "the message stays queued")
        self.assertEqual(self.z.mbox("bouke"), "")
        self.assertGreaterEqual(self.z.log().count("filter=deferred"), 2)


class ClamdDownFailOpen(FilterCase):
    conf = {"clamd": "unix:/nonexistent/zolder-test-clamd.ctl", "filter_fail_open": "yes"}

    def test_fail_open_delivers_unscanned(self):
        self.send("From: sjoerd@zolder.thuis\r\nSubject: toch\r\n\r\nhallo\r\n")
        self.z.wait_for(lambda: "Subject: toch" in self.z.mbox("bouke"), what="delivery")
        self.assertIn("filter=unscanned, delivered anyway", self.z.log())


class SlowClamd:
    """A clamd stand-in on a unix socket that answers INSTREAM only when the test lets it:
    each scan is held (its stream read completely) until release() or 30 s."""

    def __init__(self, folder):
        self.path = os.path.join(folder, "slow-clamd.ctl")
        self.held = threading.Semaphore(0)   # one release per scan that arrived
        self.arrived = []                    # stream lengths, in arrival order
        self.go = threading.Event()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        os.chmod(self.path, 0o777)           # zolderd's scanner runs as run_as
        self.listener.listen(8)
        self.threads = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            t = threading.Thread(target=self.serve, args=(conn,), daemon=True)
            t.start()

    def serve(self, conn):
        with conn:
            conn.settimeout(60)
            f = conn.makefile("rb")
            command = b""
            while not command.endswith(b"\0"):
                c = f.read(1)
                if not c:
                    return
                command += c
            total = 0
            while True:
                (n,) = struct.unpack(">I", f.read(4))
                if n == 0:
                    break
                total += len(f.read(n))
            self.arrived.append(total)
            self.held.release()
            self.go.wait(30)
            try:
                conn.sendall(b"stream: OK\0")
            except OSError:
                pass  # the scanner that asked is gone (a test killed it)

    def release(self):
        self.go.set()

    def close(self):
        self.go.set()
        self.listener.close()


def proc_status(pid):
    """/proc/PID/status as a dict (None when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    except (FileNotFoundError, ProcessLookupError):
        return None


# under memcheck (ZOLDERD_VALGRIND=1) the scanners run without their seccomp filter (docs/filter.md)
SECCOMP_MODE = "0" if os.environ.get("ZOLDERD_VALGRIND") == "1" else "2"


def children(pid):
    """The live child processes of pid."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_status(name)
            if st and st.get("PPid") == str(pid) and st.get("State", "").split()[0] != "Z":
                out.append(int(name))
    return sorted(out)


class ScannerConfinement(FilterCase):
    """In the running zolderd the scanner processes are confined: no new privileges, a seccomp
    filter (mode 2), and only zolderd's children (docs/filter.md, "Security")."""

    def test_scanner_processes_confined(self):
        self.send("From: sjoerd@zolder.thuis\r\nSubject: schoon\r\n\r\nhallo\r\n")
        self.z.wait_for(lambda: "Subject: schoon" in self.z.mbox("bouke"), what="delivery")
        scanners = children(self.z.inst.proc.pid)
        self.assertTrue(scanners, "a scanner process runs after a scan")
        for pid in scanners:
            st = proc_status(pid)
            self.assertEqual(st["Seccomp"], SECCOMP_MODE, f"scanner {pid} has a seccomp filter")
            self.assertEqual(st["NoNewPrivs"], "1")
            self.assertEqual(st["Uid"].split()[0], proc_status(self.z.inst.proc.pid)["Uid"].split()[0])


@unittest.skipUnless(os.geteuid() == 0, "filter_user needs zolderd started as root")
class FilterUser(FilterCase):
    """filter_user: the scanner processes run as a user of their own (tools/deps creates
    zolder-scan), started by the launcher zolderd forked while it was root."""
    # a message handed to the scanner just killed is deferred (by design) and retried after
    # local_retry_delay: keep that well inside the test's wait
    conf = {"filter_user": "zolder-scan", "filter_scanners": "2", "local_retry_delay": "1"}

    def setUp(self):
        import pwd
        try:
            self.scan_uid = pwd.getpwnam("zolder-scan").pw_uid
        except KeyError:
            self.skipTest("no zolder-scan user (tools/deps creates it)")
        super().setUp()

    def scanners(self):
        launchers = children(self.z.inst.proc.pid)
        self.assertEqual(len(launchers), 1, "one launcher, zolderd's only child")
        return launchers[0], children(launchers[0])

    def test_scanners_run_as_filter_user(self):
        self.assertIn("scanner processes run as zolder-scan", self.z.log())
        self.send("From: sjoerd@zolder.thuis\r\nSubject: schoon\r\n\r\nhallo\r\n")
        self.send(f"From: sjoerd@zolder.thuis\r\nSubject: virus\r\n\r\n{EICAR}\r\n")
        self.z.wait_for(lambda: "Subject: schoon" in self.z.mbox("bouke"), what="clean mail delivered")
        self.wait_quarantined()
        self.wait_notice("A virus (Eicar-Test-Signature) was found.")
        self.assertNotIn("Subject: virus", self.z.mbox("bouke"))
        zolderd_uid = int(proc_status(self.z.inst.proc.pid)["Uid"].split()[0])
        launcher, scanners = self.scanners()
        self.assertTrue(scanners, "scanner processes run under the launcher")
        for pid in [launcher] + scanners:
            st = proc_status(pid)
            uids = {int(u) for u in st["Uid"].split()}
            self.assertEqual(uids, {self.scan_uid}, f"process {pid}: real, effective, saved uid")
            self.assertNotEqual(self.scan_uid, zolderd_uid)
            self.assertEqual(st["NoNewPrivs"], "1")
            self.assertEqual(st["CapEff"], "0000000000000000")
        for pid in scanners:
            self.assertEqual(proc_status(pid)["Seccomp"], SECCOMP_MODE, "the scanner has its seccomp filter")
        # filter-tmp is the scanners' user's, private, and empty between scans
        tmp = self.z.inst.path("var", "filter-tmp")
        st = os.stat(tmp)
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (self.scan_uid, 0o700))
        self.assertEqual(os.listdir(tmp), [])
        # a scanner that dies (here between scans) is replaced: zolderd learns it from the launcher
        os.kill(scanners[0], 9)
        for n in range(3):
            self.send(f"From: sjoerd@zolder.thuis\r\nSubject: daarna {n}\r\n\r\nhallo\r\n")
        self.z.wait_for(lambda: all(f"Subject: daarna {n}" in self.z.mbox("bouke") for n in range(3)),
                        what="mail after a scanner died")
        self.z.wait_for(lambda: not self.z.queue_ids(), what="queue empty")
        self.assertEqual(self.z.mbox("bouke").count("Subject: daarna"), 3, "each delivered once")
        # zolderd stops: the launcher and its scanners go with it
        everyone = [launcher] + children(launcher)
        self.z.stop()
        for pid in everyone:
            self.z.wait_for(lambda pid=pid: proc_status(pid) is None or
                            proc_status(pid).get("State", "").startswith("Z"), what=f"process {pid} gone")

    def test_scanner_crash_with_filter_user(self):
        """A scanner killed mid-scan by SIGSYS (what its seccomp filter does) defers the message
        (the launcher reports how it died); SIGSEGV quarantines as before."""
        folder = tempfile.mkdtemp(prefix="zolder-slowclamd-")
        os.chmod(folder, 0o755)
        self.addCleanup(shutil.rmtree, folder, True)
        clamd = SlowClamd(folder)
        self.addCleanup(clamd.close)
        self.z.stop()
        with open(self.z.config, "a") as f:
            f.write(f"clamd = unix:{clamd.path}\nclamd_timeout = 40\n")
        self.z.start()
        self.send("From: sjoerd@zolder.thuis\r\nSubject: vast\r\n\r\nhallo\r\n")
        self.assertTrue(clamd.held.acquire(timeout=10), "the scan reached the stand-in")
        launcher, scanners = self.scanners()
        busy = [p for p in scanners if os.path.isdir(f"/proc/{p}")]
        self.assertTrue(busy)
        tmp = self.z.inst.path("var", "filter-tmp")
        ids = self.z.queue_ids()
        self.assertEqual(os.listdir(tmp), ids, "the scanner made its message's folder")
        for pid in busy:
            os.kill(pid, signal.SIGSYS)
        self.z.wait_log("was killed by its system-call filter (SIGSYS)")
        self.assertIn(f"{ids[0]}: filter=deferred", self.z.log())
        self.assertEqual(self.z.queue_ids(), ids, "deferred: still queued, not delivered")
        self.assertEqual(self.z.mbox("bouke"), "")
        self.z.wait_for(lambda: os.listdir(tmp) == [], what="the launcher removed the dead scanner's folder")


class FilterAsync(unittest.TestCase):
    """A scan under way holds up nothing: while the (slow) clamd stand-in holds scans, the
    same zolderd serves an SMTP transaction and a POP3 login at once (issue 8: the filter runs
    on the event loop)."""

    def setUp(self):
        self.folder = tempfile.mkdtemp(prefix="zolder-slowclamd-")
        os.chmod(self.folder, 0o755)
        self.addCleanup(shutil.rmtree, self.folder, True)
        self.clamd = SlowClamd(self.folder)
        self.addCleanup(self.clamd.close)
        self.pop3_port = test_port(2110)
        conf = {"clamd": f"unix:{self.clamd.path}", "clamd_timeout": "40",
                "pop3": f"{ADDRESS}:{self.pop3_port}", "filter_scanners": "2"}
        self.z = Zolderd(address=ADDRESS, port=SMTP_PORT, conf=conf,
                         users={"bouke": crypt_hash("geheim"), "sjoerd": "*", "admin": "*"})
        self.addCleanup(lambda: self.z.cleanup())
        self.z.start()

    def send(self, subject):
        with smtplib.SMTP(ADDRESS, self.z.port, source_address=(LAN_HOST, 0), timeout=10) as s:
            s.sendmail("sjoerd@zolder.thuis", ["bouke@zolder.thuis"],
                       f"From: sjoerd@zolder.thuis\r\nSubject: {subject}\r\n\r\nschoon\r\n".encode())

    def test_slow_scan_blocks_nothing(self):
        self.send("eerste")
        self.assertTrue(self.clamd.held.acquire(timeout=10), "the first scan reached the stand-in")
        held_at = time.monotonic()
        time.sleep(1.5)
        # clamd holds the first scan: zolderd must still serve SMTP and POP3 at once
        start = time.monotonic()
        self.send("tweede")
        smtp_seconds = time.monotonic() - start
        start = time.monotonic()
        with socket.create_connection((ADDRESS, self.pop3_port), timeout=5,
                                      source_address=("127.0.0.1", 0)) as s:
            f = s.makefile("rb")
            self.assertTrue(f.readline().startswith(b"+OK"))
            s.sendall(b"USER bouke\r\n")
            self.assertTrue(f.readline().startswith(b"+OK"))
            s.sendall(b"PASS geheim\r\n")
            self.assertTrue(f.readline().startswith(b"+OK"), "POP3 login while a scan is held")
            s.sendall(b"STAT\r\n")
            self.assertEqual(f.readline(), b"+OK 0 0\r\n", "nothing delivered before its verdict")
            s.sendall(b"QUIT\r\n")
            f.readline()
        pop3_seconds = time.monotonic() - start
        self.assertLess(smtp_seconds, 3.0, "an SMTP transaction during a held scan")
        self.assertLess(pop3_seconds, 3.0, "a POP3 login during a held scan")
        # the second message is scanned beside the first (two scanner processes)
        self.assertTrue(self.clamd.held.acquire(timeout=10), "the second scan runs at the same time")
        self.assertEqual(self.z.mbox("bouke"), "", "held scans: nothing delivered yet")
        self.assertEqual(len(self.z.queue_ids()), 2)
        time.sleep(max(0.0, 4.0 - (time.monotonic() - held_at)))  # several seconds held
        self.assertEqual(self.z.mbox("bouke"), "")
        self.clamd.release()
        self.z.wait_for(lambda: "Subject: tweede" in self.z.mbox("bouke") and
                        "Subject: eerste" in self.z.mbox("bouke"), what="both delivered after the verdicts")
        self.z.wait_for(lambda: not self.z.queue_ids(), what="queue empty")
        log = self.z.log()
        self.assertEqual(log.count("filter=clean"), 2, log)
        self.assertEqual(self.z.mbox("bouke").count("Subject: eerste"), 1)
        # the scanner's private folders are gone after their verdicts
        tmp = self.z.inst.path("var", "filter-tmp")
        self.assertEqual(stat.S_IMODE(os.stat(tmp).st_mode), 0o700)
        self.assertEqual(os.listdir(tmp), [])

    def test_working_folders_are_recycled(self):
        """An emptied working folder waits in STATE_DIR/filter-spare (out of the scanners'
        reach) for the next message: renamed, not made and removed again (each mkdir takes
        an inode, which ext4 without a journal finds ever more slowly under a stream of
        deletions)."""
        self.clamd.release()
        tmp = self.z.inst.path("var", "filter-tmp")
        spare = self.z.inst.path("var", "filter-spare")
        inodes = set()
        for i in range(3):
            self.send(f"bericht {i}")
            self.z.wait_for(lambda: f"Subject: bericht {i}" in self.z.mbox("bouke"), what=f"bericht {i}")
            self.assertEqual(os.listdir(tmp), [])
            self.assertEqual(os.listdir(spare), ["0"], "one folder, back among the spares")
            st = os.stat(os.path.join(spare, "0"))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o700)
            self.assertEqual(os.listdir(os.path.join(spare, "0")), [])
            inodes.add(st.st_ino)
        self.assertEqual(len(inodes), 1, "the same folder served every message")
        self.assertEqual(stat.S_IMODE(os.stat(spare).st_mode), 0o700)
        # a folder the scanner left something in is removed, not kept
        self.z.stop()
        with open(os.path.join(spare, "0", "left"), "w") as f:
            f.write("x")
        self.z.start()
        self.send("na herstart")
        self.z.wait_for(lambda: "Subject: na herstart" in self.z.mbox("bouke"), what="after the restart")
        self.assertEqual(os.listdir(spare), ["0"])
        self.assertEqual(os.listdir(os.path.join(spare, "0")), [], "the spares are emptied at start")


class FilterPipeline(unittest.TestCase):
    """One scanner process gets the next messages on its socket while it scans (up to 8, or
    4 MiB): it never waits for zolderd between two. When it dies, the message it was
    scanning gets the crash's verdict, and those queued behind it are scanned again by the
    next process: nothing lost, nothing delivered twice, nothing quarantined for another's
    crash."""

    def setUp(self):
        self.folder = tempfile.mkdtemp(prefix="zolder-slowclamd-")
        os.chmod(self.folder, 0o755)
        self.addCleanup(shutil.rmtree, self.folder, True)
        self.clamd = SlowClamd(self.folder)
        self.addCleanup(self.clamd.close)
        conf = {"clamd": f"unix:{self.clamd.path}", "clamd_timeout": "40", "filter_scanners": "1"}
        self.z = Zolderd(address=ADDRESS, port=SMTP_PORT, conf=conf,
                         users={"bouke": "*", "sjoerd": "*", "admin": "*"})
        self.addCleanup(lambda: self.z.cleanup())
        self.z.start()

    def send(self, subject):
        with smtplib.SMTP(ADDRESS, self.z.port, source_address=(LAN_HOST, 0), timeout=10) as s:
            s.sendmail("sjoerd@zolder.thuis", ["bouke@zolder.thuis"],
                       f"From: sjoerd@zolder.thuis\r\nSubject: {subject}\r\n\r\nschoon\r\n".encode())

    def test_crash_with_messages_queued_behind(self):
        self.send("eerste")
        self.assertTrue(self.clamd.held.acquire(timeout=10), "the first scan reached the stand-in")
        self.send("tweede")
        self.send("derde")
        tmp = self.z.inst.path("var", "filter-tmp")
        # the other two are queued at the same (only) scanner process, each with its folder
        self.z.wait_for(lambda: len(os.listdir(tmp)) == 3, what="three messages at the scanner")
        ids = self.z.queue_ids()  # time-ordered: eerste, tweede, derde
        self.assertEqual(sorted(os.listdir(tmp)), ids)
        scanners = children(self.z.inst.proc.pid)
        self.assertEqual(len(scanners), 1, "filter_scanners = 1")
        first = ids[0]
        os.kill(scanners[0], signal.SIGSEGV)  # it crashes while scanning eerste
        self.z.wait_log(f"{first}: filter=quarantined")
        self.clamd.release()  # the next process rescans tweede and derde
        self.z.wait_for(lambda: "Subject: tweede" in self.z.mbox("bouke") and
                        "Subject: derde" in self.z.mbox("bouke"), what="both delivered after a rescan")
        self.z.wait_for(lambda: not self.z.queue_ids(), what="queue empty")
        inbox = self.z.mbox("bouke")
        self.assertEqual(inbox.count("Subject: tweede"), 1)
        self.assertEqual(inbox.count("Subject: derde"), 1)
        self.assertNotIn("Subject: eerste", inbox)
        log = self.z.log()
        self.assertIn("the scanner crashed on it", log)
        self.assertEqual(log.count("filter=quarantined"), 1, log)
        self.assertNotIn(f"{first}: filter=clean", log)
        for qid in ids[1:]:
            self.assertEqual(log.count(f"{qid}: filter=clean"), 1, log)
        self.assertEqual(os.listdir(tmp), [])


def clamd_unavailable():
    if not os.path.exists(CLAMD):
        return "clamd is not installed (tools/deps installs clamav-daemon)"
    return None


@unittest.skipIf(clamd_unavailable(), clamd_unavailable() or "")
class ClamdBackend(FilterCase):
    """Debian's clamd, started here on its own socket with a local database: no freshclam."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="zolder-clamd-")
        os.chmod(cls.dir, 0o755)
        db = os.path.join(cls.dir, "db")
        os.mkdir(db)
        with open(os.path.join(db, "zolder-test.ndb"), "w") as f:
            f.write(f"Zolder.Test.EICAR:0:*:{EICAR.encode().hex()}\n")
            f.write(f"Zolder.Test.ClamdOnly:0:*:{CLAMD_ONLY.encode().hex()}\n")
        cls.sock = os.path.join(cls.dir, "clamd.ctl")
        conf = os.path.join(cls.dir, "clamd.conf")
        with open(conf, "w") as f:
            f.write(f"LocalSocket {cls.sock}\nLocalSocketMode 666\nDatabaseDirectory {db}\n"
                    f"Foreground yes\nLogFile {cls.dir}/clamd.log\nLogVerbose yes\n"
                    f"PidFile {cls.dir}/clamd.pid\nTemporaryDirectory {cls.dir}\n"
                    "ScanMail yes\nScanArchive yes\nBytecode no\n")
        if os.geteuid() == 0:
            with open(conf, "a") as f:
                f.write("User root\n")
        cls.proc = subprocess.Popen([CLAMD, "-c", conf], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not os.path.exists(cls.sock):
            if cls.proc.poll() is not None:
                out = cls.proc.stdout.read().decode(errors="replace")
                shutil.rmtree(cls.dir, ignore_errors=True)
                raise unittest.SkipTest(f"clamd cannot run here: exited {cls.proc.returncode}: {out[-500:]}")
            time.sleep(0.1)
        if not os.path.exists(cls.sock):
            cls.proc.kill()
            cls.proc.wait()
            raise unittest.SkipTest("clamd cannot run here: no socket after 60 s")

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        try:
            cls.proc.wait(10)
        except subprocess.TimeoutExpired:
            cls.proc.kill()
            cls.proc.wait()
        cls.proc.stdout.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.conf = {"clamd": f"unix:{self.sock}"}
        super().setUp()

    def test_clamd_knows_eicar(self):
        """The local database holds an EICAR signature (INSTREAM by hand)."""
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(self.sock)
        data = EICAR.encode()
        s.sendall(b"zINSTREAM\0" + struct.pack("!I", len(data)) + data + struct.pack("!I", 0))
        reply = s.recv(1024)
        s.close()
        self.assertIn(b"Zolder.Test.EICAR", reply)
        self.assertIn(b"FOUND", reply)

    def test_clamd_finds_what_only_it_knows(self):
        self.send(multipart("clamd", [("application/octet-stream; name=\"data.bin\"",
                                       "Content-Transfer-Encoding: base64\r\n",
                                       b64(b"prefix " + CLAMD_ONLY.encode() + b" suffix"))]))
        self.wait_quarantined()
        notice = self.wait_notice("A virus (Zolder.Test.ClamdOnly")
        self.assertIn("Scanner detecting a virus: ClamAV (clamd)", notice)
        self.assertEqual(self.z.mbox("bouke"), "")

    def test_clean_mail_passes_clamd(self):
        self.send("From: sjoerd@zolder.thuis\r\nSubject: schoon\r\n\r\nhallo\r\n")
        self.z.wait_for(lambda: "Subject: schoon" in self.z.mbox("bouke"), what="delivery")
        self.assertIn("filter=clean", self.z.log())


if __name__ == "__main__":
    unittest.main()
