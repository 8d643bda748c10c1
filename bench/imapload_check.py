#!/usr/bin/env python3
"""bench/imapload_check.py: checks build/bench/imapload against a fake IMAP server whose
answers try to trip it: responses cut into pieces of 1..N bytes, literals whose bytes look like
the tagged answer, one FETCH line longer than imapload's 64 KiB line buffer that ends in a
literal, a ~300 KB UID SEARCH line, NO answers to STORE, a wrong password, a refused port and a
server that never answers (imapload must stop by itself at --seconds + --grace).

    python3 bench/imapload_check.py [--imapload build/bench/imapload]

The fake server counts the commands it gets and the NO answers it gives; imapload's JSON must
agree op by op. It listens on 127.0.0.1 on a port the kernel picks, so it needs no itest lock.
Exit 0 when every case passes.
"""

import argparse
import collections
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER, PASSWORD = "bench", "geheim"


class FakeImap:
    """A thread per connection; answers imaptest's cycle as imapload sends it."""

    def __init__(self, pieces, mode="answer"):
        self.pieces = pieces          # 0: each answer in one send, else 1..pieces bytes a send
        self.mode = mode              # "answer" or "hang" (greeting, then silence)
        self.counts = collections.Counter()
        self.nos = collections.Counter()
        self.problems = []
        self.lock = threading.Lock()
        self.held = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def close(self):
        self.sock.close()
        for c in self.held:
            c.close()

    def accept(self):
        k = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            k += 1
            self.held.append(conn)
            threading.Thread(target=self.serve, args=(conn, k), daemon=True).start()

    def send(self, conn, data, rng):
        i = 0
        while i < len(data):
            n = rng.randint(1, self.pieces) if self.pieces else len(data)
            conn.sendall(data[i:i + n])
            i += n

    def problem(self, text):
        with self.lock:
            self.problems.append(text)

    def serve(self, conn, seed):
        try:
            self.session(conn, random.Random(seed))
        except OSError:
            pass

    def session(self, conn, rng):
        f = conn.makefile("rb")
        self.send(conn, b"* OK fake ready\r\n", rng)
        if self.mode == "hang":
            return
        exists = 100
        while True:
            line = f.readline()
            if not line:
                return
            tag, cmd = line.rstrip(b"\r\n").split(b" ", 1)
            kind = cmd.split(b" ")[0].decode()
            if cmd.startswith(b"UID SEARCH"):
                kind = "UID SEARCH"
            elif cmd.startswith(b"FETCH 1:*"):
                kind = "FETCH 1:*"
            elif b"BODY.PEEK" in cmd:
                kind = "FETCH BODY"
            elif b"ENVELOPE" in cmd:
                kind = "FETCH ENVELOPE"
            with self.lock:
                self.counts[kind] += 1
            status, out = b"OK", b""
            if kind == "LOGIN":
                if cmd != f"LOGIN {USER} {PASSWORD}".encode():
                    status = b"NO"
            elif kind == "SELECT":
                out = (b"* FLAGS (\\Seen \\Deleted)\r\n* %d EXISTS\r\n* 0 RECENT\r\n"
                       b"* OK [UIDVALIDITY 1] x\r\n" % exists)
            elif kind == "FETCH 1:*":
                out = b"".join(b"* %d FETCH (FLAGS () UID %d RFC822.SIZE 4000)\r\n" % (i, i)
                               for i in range(1, exists + 1))
                trap = b"\r\n" + tag + b" OK inside a literal\r\n"
                out += b"* 1 FETCH (X-TRAP {%d}\r\n" % len(trap) + trap + b" UID 1)\r\n"
            elif kind == "FETCH BODY":
                n = int(cmd.split(b" ")[1])
                if not 1 <= n <= exists - 10:
                    self.problem(f"FETCH {n}: outside 1..EXISTS-10")
                body = (b"Subject: x\r\n\r\n" + tag + b" OK trap\r\n" + b"x" * rng.randint(0, 9000)
                        + b"\r\n")
                out = b"* %d FETCH (BODY[] {%d}\r\n" % (n, len(body)) + body + b")\r\n"
            elif kind == "FETCH ENVELOPE":
                subject = b"a}{3}\r\n" + tag + b" BAD"
                out = (b'* 3 FETCH (ENVELOPE ("date" {%d}\r\n' % len(subject) + subject
                       + b" NIL NIL NIL NIL NIL NIL NIL NIL))\r\n")
            elif kind == "UID SEARCH":
                out = b"* SEARCH " + b" ".join(b"%d" % (1000000 + i)
                                               for i in range(rng.randint(0, 40000))) + b"\r\n"
                trap = b"\r\n" + tag + b" NO trap\r\n"
                out += (b"* 1 FETCH (X-LONG " + b"y" * rng.randint(60000, 200000)
                        + b" {%d}\r\n" % len(trap) + trap + b")\r\n")
            elif kind == "STORE":
                if rng.random() < 0.1:
                    status = b"NO"
            elif kind == "APPEND":
                m = re.search(rb"\{(\d+)\}$", cmd)
                self.send(conn, b"+ go\r\n", rng)
                data = f.read(int(m.group(1)))
                if f.read(2) != b"\r\n":
                    self.problem("APPEND: no CRLF after the literal")
                if not data.startswith(b"From: Sender "):
                    self.problem("APPEND: not message()'s head")
                if re.search(rb"(^|\n)From ", data):
                    self.problem("APPEND: a line starts with 'From '")
                if not 4096 <= len(data) <= 4096 + 400:
                    self.problem(f"APPEND: {len(data)} bytes for --size 4096")
                if b"\n" in data.replace(b"\r\n", b""):
                    self.problem("APPEND: a bare LF")
            elif kind == "LOGOUT":
                self.send(conn, b"* BYE bye\r\n" + tag + b" OK bye\r\n", rng)
                return
            if status == b"NO":
                with self.lock:
                    self.nos[kind] += 1
            self.send(conn, out + tag + b" " + status + b" done\r\n", rng)


def run(imapload, port, password=PASSWORD, seconds=2, grace=5):
    r = subprocess.run([imapload, "--host", "127.0.0.1", "--port", str(port), "--user", USER,
                        "--password", password, "--clients", "4", "--seconds", str(seconds),
                        "--grace", str(grace)], capture_output=True, text=True,
                       timeout=seconds + grace + 30)
    if r.returncode != 0:
        raise AssertionError(f"imapload exited {r.returncode}: {r.stderr.strip()}")
    return json.loads(r.stdout)


def check_counts(fake, out):
    errors = []
    if not out["ops"]:
        errors.append("no ops")
    for kind in set(fake.counts) | set(out["ops"]):
        if out["ops"].get(kind, 0) != fake.counts[kind]:
            errors.append(f"{kind}: server got {fake.counts[kind]}, imapload counted "
                          f"{out['ops'].get(kind, 0)}")
    for kind in set(fake.nos) | set(k for k in out["errors"] if k != "connection"):
        if out["errors"].get(kind, 0) != fake.nos[kind]:
            errors.append(f"{kind}: server said NO {fake.nos[kind]} times, imapload counted "
                          f"{out['errors'].get(kind, 0)}")
    if out["errors"].get("connection"):
        errors.append(f"connection errors: {out.get('last_error')}")
    return errors + fake.problems


def case_cycle(imapload, pieces, password=PASSWORD):
    fake = FakeImap(pieces)
    try:
        out = run(imapload, fake.port, password)
    finally:
        fake.close()
    errors = check_counts(fake, out)
    if password == PASSWORD and fake.counts["LOGIN"] and fake.nos["LOGIN"]:
        errors.append("LOGIN refused with the right password")
    if sum(fake.nos.values()) and not re.search(r"^[A-Z :*]+: b\d+ NO done$", out.get("last_refusal", "")):
        errors.append(f"last_refusal is {out.get('last_refusal')!r}, not the last NO line")
    if password != PASSWORD and out["errors"].get("LOGIN") != out["ops"].get("LOGIN"):
        errors.append("a wrong password was not counted as LOGIN errors")
    return errors, f"{out['ops_total']} ops, {out['cycles']} cycles"


def case_refused(imapload):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]   # bound, not listening: connections are refused
    try:
        out = run(imapload, port, seconds=1, grace=1)
    finally:
        s.close()
    errors = [] if out["errors"].get("connection", 0) >= 4 and not out["ops"] else \
        [f"refused port: {out}"]
    return errors, f"{out['errors'].get('connection', 0)} connection errors"


def case_hang(imapload):
    fake = FakeImap(0, mode="hang")
    t0 = time.monotonic()
    try:
        out = run(imapload, fake.port, seconds=1, grace=2)
    finally:
        fake.close()
    took = time.monotonic() - t0
    errors = []
    if out["errors"].get("connection") != 4 or "deadline" not in out.get("last_error", ""):
        errors.append(f"silent server: {out}")
    if not 2.5 < took < 6:
        errors.append(f"silent server: imapload took {took:.1f} s for --seconds 1 --grace 2")
    return errors, f"stopped after {took:.1f} s"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--imapload", default=os.path.join(ROOT, "build", "bench", "imapload"))
    args = ap.parse_args()
    cases = [("answers in 1..3-byte pieces", lambda: case_cycle(args.imapload, 3)),
             ("answers in 1..7000-byte pieces", lambda: case_cycle(args.imapload, 7000)),
             ("answers whole", lambda: case_cycle(args.imapload, 0)),
             ("wrong password", lambda: case_cycle(args.imapload, 0, "falsch")),
             ("refused port", lambda: case_refused(args.imapload)),
             ("server that never answers", lambda: case_hang(args.imapload))]
    failed = 0
    for name, case in cases:
        errors, note = case()
        print(f"{'ok  ' if not errors else 'FAIL'} {name}: {note}")
        for e in errors[:5]:
            print(f"     {e}")
        failed += bool(errors)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
