"""The scenario language's parser (docs/scenarios.md). Strict: anything it does not know is an
error naming FILE:LINE. Standard library only.

A file is a header of `key: value` lines, then steps, one per line; a step may own a block of
indented lines below it (a message, an SMTP dialogue, an expected mailbox or chain).
"""

import os
import re

# Capabilities a scenario may wait for with `pending: CAPABILITY reason`.
CAPABILITIES = ("outbound", "fetch", "imap", "pop3", "filter")
# Of those, the ones whose verbs the runner cannot drive yet: using such a verb in a scenario
# that is not pending on it is an error.
UNBUILT_VERBS = {}

HEADER_KEYS = ("title", "world", "link", "pending", "config", "file", "rules", "user", "timeout")
STAGES = ("greeting", "helo", "mail", "rcpt", "data", "dot")
DNS_FAULTS = ("servfail", "nxdomain", "drop", "delay", "truncate", "none")
LINK_ACTIONS = ("up", "down", "dial", "hangup", "profile")
ZOLDERD_ACTIONS = ("kill9", "restart", "reload", "stop", "start")


class ScenarioError(Exception):
    """A FILE:LINE: message error."""

    def __init__(self, path, line, msg):
        super().__init__(f"{path}:{line}: {msg}")
        self.path, self.line, self.msg = path, line, msg


class Step:
    def __init__(self, line, verb, args, block=None, raw=""):
        self.line = line          # line number in the file
        self.verb = verb          # "send", "expect", ...
        self.args = args          # dict, per verb
        self.block = block        # list of (line, text) or None
        self.raw = raw            # the step line as written

    def __repr__(self):
        return f"Step({self.line}, {self.verb}, {self.args!r})"


class Scenario:
    def __init__(self, path):
        self.path = path
        self.name = os.path.splitext(os.path.basename(path))[0]
        self.title = ""
        self.world = None          # None: zolderd alone; else a world name or path
        self.pending = None        # (capability, reason)
        self.config = []           # [(key, value)] for zolder.conf
        self.files = {}            # name -> text, written into the instance folder
        self.rules = {}            # user -> text of their delivery rules (MAIL_DIR/rules)
        self.users = None          # None: the helper's default users
        self.timeout = 10.0        # seconds a waiting expectation may take
        self.link_mode = None      # the world's links start in this mode (up, down, demand)
        self.steps = []


_IDENT = r"[A-Za-z0-9][A-Za-z0-9._+-]*"
_ADDR = r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"


def _lines_with_blocks(text):
    """Yields (lineno, line, block): a line starting in column 1 with the indented lines under
    it (common indentation removed; blank lines inside a block kept, trailing ones dropped)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    i, n = 0, len(lines)
    while i < n:
        line = lines[i].rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#") and not line[:1].isspace():
            i += 1
            continue
        if line[:1].isspace():
            yield i + 1, line, None  # stray indented line: the caller reports it
            i += 1
            continue
        start = i + 1
        j = i + 1
        block = []
        while j < n:
            nxt = lines[j].rstrip("\r")
            if nxt[:1].isspace() and nxt.strip():
                block.append((j + 1, nxt))
            elif not nxt.strip():
                block.append((j + 1, ""))
            else:
                break
            j += 1
        while block and block[-1][1] == "":
            block.pop()
        j = block[-1][0] if block else i + 1
        if block:
            indent = min(len(t) - len(t.lstrip()) for _, t in block if t)
            block = [(ln, t[indent:] if t else "") for ln, t in block]
        yield start, line, block or None
        i = j


def parse_file(path):
    with open(path, encoding="utf-8") as f:
        return parse_text(f.read(), path)


def parse_text(text, path="<scenario>"):
    sc = Scenario(path)
    in_header = True
    for lineno, line, block in _lines_with_blocks(text):
        def err(msg, ln=lineno):
            raise ScenarioError(path, ln, msg)
        if line[:1].isspace():
            err("indented line without a step above it (a block belongs to the line just above)")
        m = re.match(r"([a-z]+):(?:\s+(.*))?$", line)
        word = line.split(None, 1)[0]
        if m and m.group(1) in HEADER_KEYS and word.endswith(":"):
            if not in_header:
                err(f"header line '{m.group(1)}:' after the first step; headers come first")
            _header(sc, m.group(1), (m.group(2) or "").strip(), block, err)
            continue
        if m and word.endswith(":"):
            err(f"unknown header '{m.group(1)}:' (known: {', '.join(HEADER_KEYS)})")
        in_header = False
        sc.steps.append(_step(sc, lineno, line.rstrip(), block, err))
    if not sc.steps and not sc.pending:
        raise ScenarioError(path, 1, "no steps")
    for st in sc.steps:
        cap = UNBUILT_VERBS.get(st.verb)
        if cap and not (sc.pending and cap in sc.pending[0].split(",")):
            raise ScenarioError(path, st.line, f"'{st.verb}' needs capability {cap}, which is "
                                f"not built yet: mark the scenario 'pending: {cap} REASON'")
    return sc


def _header(sc, key, value, block, err):
    if key not in ("file", "rules") and block:
        err(f"'{key}:' takes no indented block")
    if key == "title":
        if sc.title:
            err("title given twice")
        sc.title = value
    elif key == "world":
        if sc.world is not None:
            err("world given twice")
        if not re.fullmatch(r"[A-Za-z0-9_./-]+", value):
            err("world: a world name (fixtures/worlds/NAME.world), a path, or 'none'")
        sc.world = None if value == "none" else value
        if value == "none":
            sc.world = ""
    elif key == "link":
        if sc.link_mode:
            err("link given twice")
        if value not in ("up", "down", "demand"):
            err("link: up|down|demand (the mode the world's dial-up links start in)")
        sc.link_mode = value
    elif key == "pending":
        if sc.pending:
            err("pending given twice")
        parts = value.split(None, 1)
        caps = parts[0].split(",") if parts else []
        if not caps or any(c not in CAPABILITIES for c in caps) or len(set(caps)) != len(caps):
            err(f"pending: CAPABILITY[,CAPABILITY...] REASON, each one of {', '.join(CAPABILITIES)}")
        if len(parts) < 2:
            err("pending: give the reason after the capability")
        sc.pending = (",".join(caps), parts[1])
    elif key == "config":
        m = re.fullmatch(r"([a-z_]+)\s*=\s*(.*)", value)
        if not m:
            err("config: KEY = VALUE (a zolder.conf line, docs/config.md)")
        if any(k == m.group(1) for k, _ in sc.config):
            err(f"config key {m.group(1)} set twice")
        sc.config.append((m.group(1), m.group(2)))
    elif key == "file":
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", value) or value in ("zolder.conf", ".", ".."):
            err("file: NAME (a plain file name in the instance folder), then its lines indented")
        if value in sc.files:
            err(f"file {value} given twice")
        sc.files[value] = "".join(t + "\n" for _, t in (block or []))
    elif key == "rules":
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", value):
            err("rules: USER, then the user's delivery rules indented (docs/filter.md)")
        if value in sc.rules:
            err(f"rules for {value} given twice")
        sc.rules[value] = "".join(t + "\n" for _, t in (block or []))
    elif key == "user":
        if not re.fullmatch(r"[a-z][a-z0-9_-]*(\s+\S+)?", value):
            err("user: NAME [PASSWORD]")
        parts = value.split()
        if sc.users is None:
            sc.users = {}
        if parts[0] in sc.users:
            err(f"user {parts[0]} given twice")
        sc.users[parts[0]] = parts[1] if len(parts) > 1 else None
    elif key == "timeout":
        if not re.fullmatch(r"\d+(\.\d+)?", value) or not 0 < float(value) <= 60:
            err("timeout: SECONDS (at most 60)")
        sc.timeout = float(value)


def _need_block(block, err, what):
    if not block:
        err(f"{what} needs an indented block below it")
    return block


def _no_block(block, err):
    if block:
        err("this step takes no indented block", block[0][0])


def _step(sc, ln, line, block, err):
    words = line.split()
    verb = words[0]
    rest = line[len(verb):].strip()
    if verb == "send":
        m = re.fullmatch(rf"from\s+({_ADDR})(?:\s+helo\s+(\S+))?\s*:\s*(\S+)\s*->\s*(.+)", rest)
        if not m:
            err("send from ADDR [helo NAME]: SENDER -> RCPT[, RCPT...]")
        rcpts = [r.strip() for r in m.group(4).split(",") if r.strip()]
        _need_block(block, err, "send")
        return Step(ln, verb, {"from": m.group(1), "helo": m.group(2) or "client.thuis",
                               "sender": _strip_angle(m.group(3)), "rcpts": [_strip_angle(r) for r in rcpts]},
                    block, line)
    if verb == "session":
        m = re.fullmatch(rf"from\s+({_ADDR})(?:\s+to\s+(zolder|submission|{_IDENT}:\d+|{_ADDR}:\d+))?", rest)
        if not m:
            err("session from ADDR [to zolder|HOST:PORT]")
        _need_block(block, err, "session")
        dialogue = [_dialogue_line(bln, t, lambda msg, l=bln: err(msg, l)) for bln, t in block]
        return Step(ln, verb, {"from": m.group(1), "to": m.group(2) or "zolder", "dialogue": dialogue},
                    None, line)
    if verb == "sendmail":
        _need_block(block, err, "sendmail")
        return Step(ln, verb, {"argv": words[1:]}, block, line)
    if verb == "queue":
        _no_block(block, err)
        if rest != "run":
            err("queue run")
        return Step(ln, verb, {}, None, line)
    if verb == "link":
        _no_block(block, err)
        if len(words) < 2 or words[1] not in LINK_ACTIONS:
            err(f"link {'|'.join(LINK_ACTIONS)}")
        settings = {}
        if words[1] == "profile":
            for w in words[2:]:
                m = re.fullmatch(r"([a-z][a-z_-]*)=(\S+)", w)
                if not m:
                    err("link profile SETTING=VALUE... (docs/ispsim.md: latency, cut-after, cut-at, ...)")
                v = m.group(2)
                settings[m.group(1).replace("-", "_")] = int(v) if v.isdigit() else v
            if not settings:
                err("link profile needs at least one SETTING=VALUE")
        elif len(words) > 2:
            err(f"link {words[1]} takes no arguments")
        return Step(ln, verb, {"action": words[1], "settings": settings}, None, line)
    if verb == "dns":
        _no_block(block, err)
        m = re.fullmatch(r"fault\s+(\S+)\s+(\w+)(?:\s+(\d+)ms)?", rest)
        if not m or m.group(2) not in DNS_FAULTS:
            err(f"dns fault NAME {'|'.join(DNS_FAULTS)} [MSms]")
        return Step(ln, verb, {"name": m.group(1), "fault": m.group(2),
                               "delay_ms": int(m.group(3)) if m.group(3) else None}, None, line)
    if verb == "isp":
        _no_block(block, err)
        return Step(ln, verb, _isp_args(rest, err), None, line)
    if verb == "inject":
        m = re.fullmatch(rf"({_IDENT})\s+({_IDENT})", rest)
        if not m:
            err("inject STORE USER, then the message indented")
        _need_block(block, err, "inject")
        return Step(ln, verb, {"store": m.group(1), "user": m.group(2)}, block, line)
    if verb == "zolderd":
        _no_block(block, err)
        if rest not in ZOLDERD_ACTIONS:
            err(f"zolderd {'|'.join(ZOLDERD_ACTIONS)}")
        return Step(ln, verb, {"action": rest}, None, line)
    if verb in ("imap", "pop3"):
        m = re.fullmatch(r"(\S+)\s+(\S+)", rest)
        if not m:
            err(f"{verb} USER PASSWORD, then the dialogue indented (C: command / S: expected line)")
        _need_block(block, err, verb)
        dialogue = [_mailbox_line(bln, t, lambda msg, l=bln: err(msg, l)) for bln, t in block]
        if dialogue[0][0] != "send":
            err(f"{verb}: the dialogue starts with a command (C: ...)")
        return Step(ln, verb, {"user": m.group(1), "password": m.group(2), "dialogue": dialogue},
                    None, line)
    if verb == "fetch":
        _no_block(block, err)
        if rest:
            err("fetch (takes no arguments: polls every account of the fetchmailrc now)")
        return Step(ln, verb, {}, None, line)
    if verb == "expect":
        return _expect(ln, rest, block, err, line)
    err(f"unknown verb '{verb}' (send, session, sendmail, queue, link, dns, isp, inject, "
        f"zolderd, fetch, imap, pop3, expect)")


def _strip_angle(a):
    return a[1:-1] if a.startswith("<") and a.endswith(">") else a


def _isp_args(rest, err):
    usage = ("isp reply STAGE [host H] [message N] [rcpt N]: REPLY | isp hangup STAGE [host H] "
             "[message N] | isp delay STAGE MSms [host H] | isp flush | isp clear")
    words = rest.split(":", 1)[0].split()
    if rest in ("flush", "clear"):
        return {"action": rest}
    if not words or words[0] not in ("reply", "hangup", "delay") or len(words) < 2:
        err(usage)
    action, stage = words[0], words[1]
    if stage not in STAGES:
        err(f"isp {action}: stage one of {', '.join(STAGES)}")
    args = {"action": action, "stage": stage}
    opts = words[2:]
    if action == "delay":
        if not opts or not re.fullmatch(r"\d+ms", opts[0]):
            err("isp delay STAGE MSms [host H] [message N]")
        args["delay_ms"] = int(opts[0][:-2])
        opts = opts[1:]
    if len(opts) % 2:
        err(usage)
    for k, v in zip(opts[::2], opts[1::2]):
        if k == "host":
            args["host"] = v
        elif k in ("message", "rcpt") and v.isdigit():
            args[k] = int(v)
        else:
            err(f"isp {action}: unknown option {k} {v}")
    if action == "reply":
        if ":" not in rest:
            err("isp reply ...: REPLY (after a colon, e.g. ': 451 4.3.0 try again later')")
        reply = rest.split(":", 1)[1].strip()
        if not re.fullmatch(r"[45]\d\d( .*)?", reply):
            err("isp reply: the reply must be a 4xx or 5xx line")
        args["reply"] = reply
    elif ":" in rest:
        err(usage)
    return args


def _dialogue_line(ln, text, err):
    """One line of a session block: C: send with CRLF; R: send raw (escapes \\r \\n \\t \\\\ \\xHH);
    S: expect a reply; TLS: STARTTLS handshake; closed: expect the server to close."""
    if text == "closed":
        return ("closed", None, ln)
    if text == "TLS":
        return ("tls", None, ln)
    m = re.fullmatch(r"([CSR]):(?: (.*))?", text)
    if not m:
        err("session lines: 'C: command', 'R: raw bytes', 'S: expected reply', 'TLS' or 'closed'")
    kind, val = m.group(1), m.group(2) or ""
    if kind == "C":
        return ("send", val.encode("utf-8") + b"\r\n", ln)
    if kind == "R":
        return ("send", _unescape(val, err), ln)
    return ("expect", parse_reply_pattern(val, err), ln)


def _mailbox_line(ln, text, err):
    """One line of a pop3/imap block: `C: command` (sent with CRLF), `S: TEXT` (some line of the
    command's response starts with TEXT, after normalisation) or `S: ~ REGEX` (searched in the
    whole response)."""
    m = re.fullmatch(r"([CS]):(?: (.*))?", text)
    if not m or not m.group(2):
        err("pop3/imap lines: 'C: command' or 'S: expected line' (or 'S: ~ REGEX')")
    kind, val = m.group(1), m.group(2)
    if kind == "C":
        return ("send", val, ln)
    if val.startswith("~ "):
        try:
            return ("expect", {"regex": re.compile(val[2:], re.M)}, ln)
        except re.error as e:
            err(f"bad regex: {e}")
    return ("expect", {"text": val}, ln)


def _unescape(s, err):
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        nxt = s[i + 1:i + 2]
        if nxt in ("r", "n", "t", "\\"):
            out += {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\"}[nxt]
            i += 2
        elif nxt == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", s[i + 2:i + 4]):
            out.append(int(s[i + 2:i + 4], 16))
            i += 4
        else:
            err(f"bad escape \\{nxt} (known: \\r \\n \\t \\\\ \\xHH)")
    return bytes(out)


def parse_reply_pattern(val, err):
    """`250`, `2xx`, `554 5.7.1 text...` (text: a prefix of one of the reply's lines, after the
    code), or `~ REGEX` (searched in the whole reply)."""
    if val.startswith("~ "):
        try:
            return {"regex": re.compile(val[2:])}
        except re.error as e:
            err(f"bad regex: {e}")
    m = re.fullmatch(r"([2-5])(xx|\d\d)(?: (.*))?", val)
    if not m:
        err("S: CODE [TEXT] (250, 2xx, '554 5.7.1 <a@b>: Relay access denied') or S: ~ REGEX")
    return {"class": int(m.group(1)), "code": None if m.group(2) == "xx" else int(m.group(1) + m.group(2)),
            "text": m.group(3)}


_COUNT = r"(\d+|no|one)\s+(?:messages?|queries|query|dials?|records?|violations?)"


def _count(s):
    return {"no": 0, "one": 1}.get(s, None) if not s.isdigit() else int(s)


def _expect(ln, rest, block, err, line):
    """expect mailbox USER: N messages | expect mailbox USER message N: (block)
    | expect mailbox USER message N contains: TEXT | expect store STORE USER ... (same forms)
    | expect chain mailbox USER message N: (block, or 'file PATH') | expect chain store ...
    | expect queue: N messages | expect isp queue: N messages | expect log: TEXT
    | expect no log: TEXT | expect dns: N queries [for NAME] [type T] | expect dials: N
    | expect records KIND: N | expect violations: none"""
    def box_ref(s):
        m = re.fullmatch(rf"mailbox\s+({_IDENT})", s) or re.fullmatch(rf"store\s+({_IDENT})\s+({_IDENT})", s)
        if not m:
            err("a mailbox is 'mailbox USER' (zolder's) or 'store STORE USER' (ispsim's)")
        return ("mailbox", m.group(1)) if s.startswith("mailbox") else ("store", m.group(1), m.group(2))

    if ":" not in rest:
        err("expect WHAT: VALUE (the colon separates what from the expected value)")
    what, value = rest.split(":", 1)
    what, value = what.strip(), value.strip()
    a = {}
    m = re.fullmatch(r"chain\s+(.*?)\s+message\s+(\d+)", what)
    if m:
        a = {"kind": "chain", "box": box_ref(m.group(1)), "msg": int(m.group(2))}
        if value:
            fm = re.fullmatch(r"file\s+(\S+)", value)
            if not fm or block:
                err("expect chain ... message N: file PATH (or the hops as an indented block)")
            a["file"] = fm.group(1)
        else:
            a["hops"] = _need_block(block, err, "expect chain")
        return Step(ln, "expect", a, None, line)
    m = re.fullmatch(r"((?:mailbox|store)\s+.*?)\s+message\s+(\d+)(\s+contains)?", what)
    if m:
        a = {"box": box_ref(m.group(1)), "msg": int(m.group(2))}
        if m.group(3):
            _no_block(block, err)
            if not value:
                err("expect ... contains: TEXT")
            a.update(kind="message-contains", text=value)
        else:
            if value:
                err("expect ... message N: then the whole message indented below (or use 'contains: TEXT')")
            a.update(kind="message", text=_need_block(block, err, "expect ... message N"))
        return Step(ln, "expect", a, None, line)
    _no_block(block, err)
    if re.fullmatch(r"(mailbox|store)\s+.*", what):
        cm = re.fullmatch(_COUNT, value)
        if not cm:
            err("expect mailbox USER: N messages")
        return Step(ln, "expect", {"kind": "count", "box": box_ref(what), "n": _count(cm.group(1))}, None, line)
    if what in ("queue", "isp queue"):
        cm = re.fullmatch(_COUNT, value) if value != "empty" else None
        if value != "empty" and not cm:
            err(f"expect {what}: N messages (or: empty)")
        return Step(ln, "expect", {"kind": "queue" if what == "queue" else "isp-queue",
                                   "n": 0 if value == "empty" else _count(cm.group(1))}, None, line)
    if what in ("log", "no log"):
        if not value:
            err(f"expect {what}: TEXT")
        return Step(ln, "expect", {"kind": "log" if what == "log" else "no-log", "text": value}, None, line)
    if what == "dns":
        dm = re.fullmatch(r"(\d+|no|one)\s+quer(?:y|ies)(?:\s+for\s+(\S+))?(?:\s+type\s+([A-Z]+))?", value)
        if not dm:
            err("expect dns: N queries [for NAME] [type TYPE]")
        return Step(ln, "expect", {"kind": "dns", "n": _count(dm.group(1)), "name": dm.group(2),
                                   "type": dm.group(3)}, None, line)
    if what == "dials":
        if not re.fullmatch(r"\d+", value):
            err("expect dials: N")
        return Step(ln, "expect", {"kind": "dials", "n": int(value)}, None, line)
    rm = re.fullmatch(r"records\s+([a-z0-9-]+)", what)
    if rm:
        if not re.fullmatch(r"\d+", value):
            err("expect records KIND: N")
        return Step(ln, "expect", {"kind": "records", "record": rm.group(1), "n": int(value)}, None, line)
    if what == "violations":
        if value != "none":
            err("expect violations: none")
        return Step(ln, "expect", {"kind": "records", "record": "violation", "n": 0}, None, line)
    err(f"unknown expectation '{what}' (mailbox, store, chain, queue, isp queue, log, no log, dns, "
        f"dials, records, violations)")
