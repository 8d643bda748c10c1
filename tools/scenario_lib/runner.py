"""Runs one parsed scenario: a fresh instance (own folder, own loopback addresses), ispsim on
the named world and zolderd through the shared helper, the steps in order, then teardown by
PID. Addresses: every scenario is written with the seed's addresses (127.0.x.y, the link's
127.9.x.y); the runner shifts the second octet by a per-job base (127.0.1.20 -> 127.40.1.20
for job 0, 127.50.1.20 for job 1, ...) in configs, files, world and sources, and shifts back
in everything it reads, so jobs never meet each other or other test runs. 127.0.0.1 is never
shifted."""

import difflib
import os
import re
import smtplib
import socket
import ssl
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "helper"))
sys.path.insert(0, os.path.join(ROOT, "simulator", "python"))

import zolder_test  # noqa: E402
import zolderd_instance  # noqa: E402
from ispsim_client import IspsimClient  # noqa: E402

from . import mailclient, received  # noqa: E402
from .normalize import Normalizer  # noqa: E402

ZOLDER_ADDR = "127.0.1.20"
ZOLDER_PORT = 25 if os.geteuid() == 0 else 2525
SUBMISSION_PORT = 587 if os.geteuid() == 0 else 2587
POP3_PORT = 110 if os.geteuid() == 0 else 2110
IMAP_PORT = 143 if os.geteuid() == 0 else 2143
# The reading client runs on zolder itself, as the seed's mutt on the Linux box: plain-text
# logins are allowed from loopback only.
READER_ADDR = "127.0.0.1"


class Failure(Exception):
    """A scenario step did not do what the scenario expects: (line, message, diff)."""

    def __init__(self, line, msg, diff=""):
        super().__init__(msg)
        self.line, self.msg, self.diff = line, msg, diff


class Shift:
    """127.A.x.y <-> 127.(BASE+A).x.y for A in 0..9, except 127.0.0.x (local programs)."""

    # a whole address (127.0.1.5, 127.0.1.0/24) or a prefix (hosts.allow's 127.0.1.)
    RX = r"(?<![\d.])127\.(\d{1,3})\.(\d{1,3}\.(?:\d{1,3})?)(?![\d])"

    def __init__(self, base):
        self.base = base

    def out(self, text):
        def sub(m):
            a = int(m.group(1))
            if a > 9 or (a == 0 and m.group(2).startswith("0.")):  # 127.0.0.x stays: local programs
                return m.group(0)
            return f"127.{self.base + a}.{m.group(2)}"
        return re.sub(self.RX, sub, text)

    def back(self, text):
        def sub(m):
            a = int(m.group(1))
            if self.base <= a <= self.base + 9:
                return f"127.{a - self.base}.{m.group(2)}"
            return m.group(0)
        return re.sub(self.RX, sub, text)


def mbox_messages(text):
    msgs, cur, prev_blank = [], None, True
    for line in text.split("\n"):
        if line.startswith("From ") and prev_blank:
            if cur is not None:
                msgs.append("\n".join(cur))
            cur = [line]
        elif cur is not None:
            cur.append(line)
        prev_blank = line == ""
    if cur is not None:
        msgs.append("\n".join(cur))
    return [m.rstrip("\n") for m in msgs]


def _strip_blank_tail(lines):
    while lines and lines[-1] == "":
        lines.pop()
    return lines


class Run:
    def __init__(self, sc, rules, job=0, keep=False, base_dir=None, log=None):
        self.sc = sc
        self.norm = Normalizer(rules)
        self.shift = Shift(40 + 10 * job)
        self.keep = keep
        self.base_dir = base_dir
        self.inst = None        # the scenario's folder (zolder_test.Instance)
        self.z = None
        self.isp_inst = None
        self.isp = None
        self.isp_sock = None
        self.replies = []
        self.log = log or (lambda s: None)

    # --- setup and teardown ------------------------------------------------------------------
    def world_path(self):
        w = self.sc.world
        if not w:
            return None
        if "/" in w or w.endswith(".world"):
            return os.path.normpath(os.path.join(os.path.dirname(self.sc.path), w))
        return os.path.join(ROOT, "fixtures", "worlds", w + ".world")

    def setup(self):
        conf = {k: self.shift.out(v) for k, v in self.sc.config}
        conf.setdefault("relay_from", self.shift.out("127.0.1.0/24"))
        files = {k: self.shift.out(v) for k, v in self.sc.files.items()}
        if "hosts" in files:
            conf.setdefault("hosts_file", "hosts")
        if "fetchmailrc" in files:
            conf.setdefault("fetchmailrc", "fetchmailrc")
            conf.setdefault("fetch_interval", "0")  # polls only when a `fetch` step asks
        for key, name in (("aliases", "aliases"), ("access", "access"), ("hosts.allow", "hosts_allow"),
                          ("hosts.deny", "hosts_deny")):
            if key in files and key != "aliases":
                conf.setdefault(name, key)
        users = None
        if self.sc.users is not None:
            users = {u: (zolderd_instance.crypt_hash(p) if p else "*") for u, p in self.sc.users.items()}
        tls = conf.get("tls_cert") == "test"   # the test CA's zolder.thuis certificate
        if tls:
            conf.pop("tls_cert")
            conf.pop("tls_key", None)
        aliases = files.pop("aliases", None)
        addr = self.shift.out(ZOLDER_ADDR)
        verbs = {st.verb for st in self.sc.steps}
        if "pop3" in verbs:
            conf.setdefault("pop3", f"{addr}:{POP3_PORT}")
        if "imap" in verbs:
            conf.setdefault("imap", f"{addr}:{IMAP_PORT}")
        self.z = zolderd_instance.Zolderd(address=addr, port=ZOLDER_PORT, conf=conf, users=users,
                                          aliases=aliases, files=files, keep=True,
                                          name=f"scenario-{self.sc.name}", tls=tls)
        self.inst = self.z.inst
        if self.sc.rules:
            # MAIL_DIR/rules under the default mail_dir of a user without a home, handed to
            # zolderd's user as an admin would (it files mail into folders beside it)
            for user, text in self.sc.rules.items():
                self.inst.write(f"var/home/{user}/Mail/rules", self.shift.out(text))
            self.z.give_to_daemon("var")
        wp = self.world_path()
        if wp:
            self.start_ispsim(wp)
        self.z.start()

    def start_ispsim(self, wp):
        sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
        with open(wp, encoding="utf-8") as f:
            text = f.read()
        if re.search(r"^\s*certs\s", text, re.M) and not os.path.exists(
                os.path.join(ROOT, "fixtures", "certs", "smtp.hccnet.nl.pem")):
            zolderd_instance.ensure_certs()
        text = re.sub(r"^(\s*certs\s+)(\S+)", lambda m: m.group(1) + os.path.normpath(
            os.path.join(os.path.dirname(wp), m.group(2))), text, flags=re.M)
        text = re.sub(r"^(\s*mailbox\s.*?\smbox\s+)(\S+)", lambda m: m.group(1) + os.path.normpath(
            os.path.join(os.path.dirname(wp), m.group(2))), text, flags=re.M)
        if self.sc.link_mode:
            # the line's state before the first step: a demand line has not dialled yet
            text = re.sub(r"^(\s*link\s+\S+\s+listen\s+\S+\s+from\s+\S+)(?:\s+mode\s+\S+)?",
                          lambda m: f"{m.group(1)} mode {self.sc.link_mode}", text, flags=re.M)
        world = self.inst.write("world.world", self.shift.out(text))
        from ispsim_common import world_ports  # the listeners a world asks for
        busy = [f"{a}:{p}" for a, p, proto in world_ports(world) if not zolder_test.address_free(a, p, proto)]
        if busy:
            raise RuntimeError("world addresses in use, not ours: " + ", ".join(busy))
        self.isp_inst = zolder_test.Instance(name="ispsim", keep=True, base=self.inst.dir)
        self.isp_sock = self.isp_inst.path("ispsim.sock")
        self.isp_inst.start([zolder_test.binary("ispsim"), "-w", world, "-s", self.isp_sock,
                             "-d", self.isp_inst.path("data"), "-r", self.isp_inst.path("records")],
                            timeout=30)
        self.isp = IspsimClient(self.isp_sock)

    def teardown(self, passed):
        """Ends what we started, by PID; removes the folder unless kept or failed."""
        problems = []
        if self.isp:
            try:
                self.isp.close()
            except OSError:
                pass
        if self.isp_inst:
            rc = self.isp_inst.stop()
            if rc not in (0, None):
                problems.append(f"ispsim exited with {rc}")
        if self.z:
            try:
                self.z.stop()
            except AssertionError as e:
                problems.append(str(e).split("\n")[0])
            if passed and not problems and not self.keep:
                self.z.inst.keep = False
                self.z.inst.cleanup()
        return problems

    # --- helpers -------------------------------------------------------------------------------
    def wait(self, check):
        """Polls check() (returns (ok, actual)) until ok or the scenario's timeout."""
        deadline = time.monotonic() + self.sc.timeout
        while True:
            ok, actual = check()
            if ok or time.monotonic() > deadline:
                return ok, actual
            time.sleep(0.02)

    def need_isp(self, step):
        if not self.isp:
            raise Failure(step.line, f"'{step.raw}' needs a world (add 'world: seed')")

    def norm_block(self, block):
        return [self.norm.line(t, expected=True) for _, t in block]

    def mailbox_text(self, box):
        if box[0] == "mailbox":
            return self.shift.back(self.z.mbox(box[1]))
        return None

    def messages(self, box):
        if box[0] == "mailbox":
            return mbox_messages(self.mailbox_text(box))
        if not self.isp:
            return []
        out = []
        for m in self.isp.messages(box[1], box[2]):
            out.append(self.shift.back(self.isp.read(box[1], box[2], m["uid"]).replace("\r\n", "\n")).rstrip("\n"))
        return out

    def box_name(self, box):
        return f"zolder mailbox {box[1]}" if box[0] == "mailbox" else f"ispsim store {box[1]} user {box[2]}"

    # --- steps -----------------------------------------------------------------------------------
    def run(self):
        for st in self.sc.steps:
            self.log(f"line {st.line}: {st.raw}")
            getattr(self, "do_" + st.verb)(st)

    def do_send(self, st):
        a = st.args
        msg = "\r\n".join(t for _, t in st.block) + "\r\n"
        try:
            with smtplib.SMTP(self.z.address, self.z.port, source_address=(self.shift.out(a["from"]), 0),
                              timeout=self.sc.timeout) as s:
                s.ehlo(a["helo"])
                refused = s.sendmail(a["sender"], a["rcpts"], msg.encode("utf-8"))
                if refused:
                    raise Failure(st.line, f"recipients refused: {refused}")
        except smtplib.SMTPException as e:
            raise Failure(st.line, f"send failed: {self.shift.back(str(e))}")
        except OSError as e:
            raise Failure(st.line, f"send failed: {e}")

    def do_sendmail(self, st):
        msg = "\n".join(t for _, t in st.block) + "\n"
        p = subprocess.run([zolder_test.binary("sendmail"), "-C", self.z.config] + st.args["argv"],
                           input=msg.encode(), capture_output=True, timeout=30)
        if p.returncode != 0:
            raise Failure(st.line, f"sendmail exited {p.returncode}: {p.stderr.decode(errors='replace')}")

    def do_session(self, st):
        a = st.args
        to = a["to"]
        if to == "zolder":
            host, port = self.z.address, self.z.port
        elif to == "submission":
            host, port = self.z.address, SUBMISSION_PORT
        else:
            h, p = to.rsplit(":", 1)
            host, port = self.shift.out(h), int(p)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(self.sc.timeout)
        try:
            sock.bind((self.shift.out(a["from"]), 0))
            sock.connect((host, port))
        except OSError as e:
            sock.close()
            raise Failure(st.line, f"cannot connect from {a['from']} to {to}: {e}")
        talk = zolderd_instance.SMTPTalk(sock)
        try:
            for kind, val, ln in a["dialogue"]:
                if kind == "send":
                    try:
                        talk.send(self.shift.out(val.decode("latin-1")).encode("latin-1"))
                    except OSError as e:
                        raise Failure(ln, f"send failed: {e}")
                elif kind == "expect":
                    try:
                        code, lines = talk.reply()
                    except (EOFError, OSError) as e:
                        raise Failure(ln, f"expected a reply, the connection ended ({e})")
                    lines = [self.shift.back(x) for x in lines]
                    self.check_reply(ln, val, code, lines)
                elif kind == "closed":
                    if not talk.closed(timeout=self.sc.timeout):
                        raise Failure(ln, "expected the server to close the connection")
                elif kind == "tls":
                    ctx = ssl.create_default_context(cafile=os.path.join(ROOT, "fixtures", "certs", "ca.pem"))
                    ctx.check_hostname = False
                    try:
                        talk.sock = ctx.wrap_socket(talk.sock)
                    except (OSError, ssl.SSLError) as e:
                        raise Failure(ln, f"TLS handshake failed: {e}")
        finally:
            talk.close()

    def check_reply(self, ln, pat, code, lines):
        shown = "\n".join(lines)
        if "regex" in pat:
            if not pat["regex"].search(shown):
                raise Failure(ln, f"reply does not match /{pat['regex'].pattern}/:\n{shown}")
            return
        if code // 100 != pat["class"] or (pat["code"] and code != pat["code"]):
            want = pat["code"] or f"{pat['class']}xx"
            raise Failure(ln, f"expected a {want} reply, got:\n{shown}")
        if pat["text"]:
            want = self.norm.line(pat["text"], expected=True)
            texts = [self.norm.line(x[4:]) for x in lines]
            if not any(t.startswith(want) for t in texts):
                raise Failure(ln, "reply text differs", _diff([f"{code} {want}"],
                                                              [f"{x[:3]} {t}" for x, t in zip(lines, texts)]))

    def do_queue(self, st):
        p = self.z.run_tool("zolderctl", "-c", self.z.config, "flush")
        if p.returncode != 0:
            raise Failure(st.line, f"zolderctl flush exited {p.returncode}: {p.stderr.decode(errors='replace')}")

    def do_zolderd(self, st):
        act = st.args["action"]
        if act == "kill9":
            self.z.kill9()
        elif act == "stop":
            self.z.stop()
        elif act in ("start", "restart"):
            if act == "restart":
                self.z.stop()
            self.z.start()
        elif act == "reload":
            p = self.z.run_tool("zolderctl", "-c", self.z.config, "reload")
            if p.returncode != 0:
                raise Failure(st.line, f"zolderctl reload exited {p.returncode}")

    def do_link(self, st):
        self.need_isp(st)
        act = st.args["action"]
        if act == "profile":
            self.isp.link_profile(**st.args["settings"])
        else:
            {"up": self.isp.link_up, "down": self.isp.link_down, "dial": self.isp.link_dial,
             "hangup": self.isp.link_hangup}[act]()

    def do_dns(self, st):
        self.need_isp(st)
        a = st.args
        self.isp.dns_fault(a["name"], a["fault"], a["delay_ms"])

    def do_isp(self, st):
        self.need_isp(st)
        a = dict(st.args)
        act = a.pop("action")
        if act == "flush":
            self.isp.flush()
        elif act == "clear":
            self.isp.clear_faults()
        else:
            if act == "hangup":
                a["hangup"] = True
            self.isp.smtp_fault(**a)

    def do_inject(self, st):
        self.need_isp(st)
        self.isp.inject(st.args["store"], st.args["user"], "\n".join(t for _, t in st.block) + "\n")

    def do_fetch(self, st):
        p = self.z.run_tool("zolderctl", "-c", self.z.config, "fetch", timeout=600)
        out = (p.stdout + p.stderr).decode(errors="replace")
        if p.returncode != 0:
            raise Failure(st.line, f"zolderctl fetch exited {p.returncode}: {self.shift.back(out)}")
        # zolderd answers "fetch done: status S, ..." with fetchmail's code: 0 mail, 1 none
        m = re.search(r"fetch done: status (\d+)", out)
        if not m or m.group(1) not in ("0", "1"):
            raise Failure(st.line, f"the poll failed: {self.shift.back(out.strip())} (see the log)")

    def do_pop3(self, st):
        self._mailbox_dialogue(st, mailclient.Pop3, POP3_PORT)

    def do_imap(self, st):
        self._mailbox_dialogue(st, mailclient.Imap, IMAP_PORT)

    def _mailbox_dialogue(self, st, client_class, port):
        """Logs in as USER, then each C: line; each S: line must be found in the response to
        the command before it."""
        a = st.args
        try:
            client = client_class(self.z.address, port, READER_ADDR, self.sc.timeout)
        except (OSError, mailclient.ProtocolError) as e:
            raise Failure(st.line, f"{st.verb}: cannot connect to zolder: {e}")
        try:
            try:
                client.login(a["user"], a["password"])
            except (OSError, mailclient.ProtocolError) as e:
                raise Failure(st.line, f"{st.verb} login as {a['user']} failed: {e}")
            response = []
            for kind, val, ln in a["dialogue"]:
                if kind == "send":
                    try:
                        response = [self.shift.back(x) for x in client.command(self.shift.out(val))]
                    except (OSError, mailclient.ProtocolError) as e:
                        raise Failure(ln, f"{st.verb}: {e}")
                    continue
                shown = "\n".join(response)
                if "regex" in val:
                    if not val["regex"].search(shown):
                        raise Failure(ln, f"response does not match /{val['regex'].pattern}/:\n{shown}")
                    continue
                want = self.norm.line(val["text"], expected=True)
                texts = [self.norm.line(x) for x in response]
                if not any(t.startswith(want) for t in texts):
                    raise Failure(ln, "no line of the response starts with the expected text",
                                  _diff([want], texts))
        finally:
            client.close()

    def do_expect(self, st):
        a = st.args
        getattr(self, "expect_" + a["kind"].replace("-", "_"))(st, a)

    def expect_count(self, st, a):
        if a["box"][0] == "store":
            self.need_isp(st)
        ok, n = self.wait(lambda: (len(self.messages(a["box"])) == a["n"], len(self.messages(a["box"]))))
        if not ok:
            raise Failure(st.line, f"{self.box_name(a['box'])} holds {n} message(s), expected {a['n']}")

    def _message(self, st, a):
        if a["box"][0] == "store":
            self.need_isp(st)
        ok, msgs = self.wait(lambda: (len(self.messages(a["box"])) >= a["msg"], self.messages(a["box"])))
        if not ok:
            raise Failure(st.line, f"{self.box_name(a['box'])} holds {len(msgs)} message(s), no message {a['msg']}")
        return msgs[a["msg"] - 1]

    def expect_message(self, st, a):
        actual = _strip_blank_tail(self.norm.text(self._message(st, a)).split("\n"))
        want = _strip_blank_tail(self.norm_block(a["text"]))
        if actual != want:
            raise Failure(st.line, f"{self.box_name(a['box'])} message {a['msg']} differs", _diff(want, actual))

    def expect_message_contains(self, st, a):
        actual = self.norm.text(self._message(st, a))
        if self.norm.line(a["text"], expected=True) not in actual:
            raise Failure(st.line, f"{self.box_name(a['box'])} message {a['msg']} lacks {a['text']!r}:\n{actual}")

    def expect_chain(self, st, a):
        if "file" in a:
            path = os.path.normpath(os.path.join(os.path.dirname(self.sc.path), a["file"]))
            if not os.path.exists(path):
                path = os.path.join(ROOT, a["file"])
            with open(path, encoding="utf-8") as f:
                block = [(n, t.rstrip("\n")) for n, t in enumerate(f, 1)
                         if t.strip() and not t.startswith("#")]
        else:
            block = a["hops"]
        want = [re.sub(r"^\d+\.?\s+", "", t).strip() for _, t in block]
        want = [self.norm.line(w, expected=True) for w in want]
        msg = self._message(st, a)
        actual = [self.norm.line(received.canonical(h)) for h in received.hops(msg)]
        ok = len(want) == len(actual) and all(_glob(w, x) for w, x in zip(want, actual))
        if not ok:
            raise Failure(st.line, f"Received chain of {self.box_name(a['box'])} message {a['msg']} differs "
                          f"(hop by hop, oldest first)",
                          _diff([f"{i}. {w}" for i, w in enumerate(want, 1)],
                                [f"{i}. {x}" for i, x in enumerate(actual, 1)]))

    def expect_queue(self, st, a):
        ok, n = self.wait(lambda: (len(self.z.queue_ids()) == a["n"], len(self.z.queue_ids())))
        if not ok:
            raise Failure(st.line, f"zolder's queue holds {n} message(s), expected {a['n']}")

    def expect_isp_queue(self, st, a):
        self.need_isp(st)
        ok, n = self.wait(lambda: (len(self.isp.queue()) == a["n"], len(self.isp.queue())))
        if not ok:
            raise Failure(st.line, f"the smarthost's queue holds {n} message(s), expected {a['n']}")

    def log_lines(self):
        return [self.norm.line(self.shift.back(x)) for x in self.z.log().splitlines()]

    def expect_log(self, st, a):
        want = self.norm.line(a["text"], expected=True)
        ok, lines = self.wait(lambda: (any(want in x for x in self.log_lines()), self.log_lines()))
        if not ok:
            raise Failure(st.line, f"no log line contains {want!r}; the log:\n" + "\n".join(lines[-30:]))

    def expect_no_log(self, st, a):
        want = self.norm.line(a["text"], expected=True)
        hits = [x for x in self.log_lines() if want in x]
        if hits:
            raise Failure(st.line, f"log lines contain {want!r}:\n" + "\n".join(hits))

    def expect_dns(self, st, a):
        self.need_isp(st)

        def count():
            recs = [r for r in self.isp.records("dns")
                    if (not a["name"] or r.get("name", "").rstrip(".").lower() == a["name"].rstrip(".").lower())
                    and (not a["type"] or r.get("type") == a["type"])]
            return len(recs) == a["n"], recs
        ok, recs = self.wait(count)
        if not ok:
            raise Failure(st.line, f"{len(recs)} DNS queries, expected {a['n']}:\n" +
                          "\n".join(f"{r.get('name')} {r.get('type')} {r.get('rcode')}" for r in recs))

    def expect_dials(self, st, a):
        self.need_isp(st)
        ok, n = self.wait(lambda: (self.isp.link_stats()["dials"] == a["n"], self.isp.link_stats()["dials"]))
        if not ok:
            raise Failure(st.line, f"{n} dials, expected {a['n']}")

    def expect_records(self, st, a):
        self.need_isp(st)
        recs = self.isp.records(a["record"])
        if a["n"] == 0:
            if recs:
                raise Failure(st.line, f"ispsim recorded {len(recs)} {a['record']} record(s):\n" +
                              "\n".join(self.shift.back(str(r)) for r in recs[:20]))
            return
        ok, recs = self.wait(lambda: (len(self.isp.records(a["record"])) == a["n"], self.isp.records(a["record"])))
        if not ok:
            raise Failure(st.line, f"ispsim recorded {len(recs)} {a['record']} record(s), expected {a['n']}")


def _glob(pattern, text):
    """'*' in an expected hop matches any text; everything else literally."""
    rx = ".*".join(re.escape(p) for p in pattern.split("*"))
    return re.fullmatch(rx, text) is not None


def _diff(want, actual):
    return "\n".join(difflib.unified_diff(want, actual, "expected", "actual", lineterm="", n=3))
