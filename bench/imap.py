#!/usr/bin/env python3
"""bench/imap.py: the IMAP benchmark of issue 7 section 6, zolder side only (so far).

One zolderd with an mbox INBOX of N messages (written straight into the spool, as if
delivered), then:

- cold SELECT: the first SELECT of the mailbox without an index (seconds);
- load: C clients (threads, imaplib), each LOGIN + SELECT + FETCH 1:* (FLAGS UID RFC822.SIZE),
  then for D seconds a mix after imaptest's default profile without EXPUNGE/APPEND (those
  rewrite or grow the mbox): FETCH of random messages' FLAGS/UID/RFC822.SIZE, BODY.PEEK[],
  ENVELOPE, UID SEARCH UNSEEN, STORE +/-FLAGS \\Seen, NOOP. Reported as IMAP commands per
  second (each command one op) over all clients;
- memory: zolderd's VmRSS before and after K more logged-in, selected, idle connections:
  KiB per idle connection.

PENDING (issue 7): the same run against Debian's dovecot (mbox and mdbox) printed as ratios,
POP3 full retrieval, the 100,000-message cold SELECT, and bench/RESULTS.md with a plot.

Usage: python3 bench/imap.py [--messages N] [--clients C] [--seconds D] [--idle K] [--quick]
Standard library only; zolderd is stopped by PID at the end (tests/helper).
"""

import argparse
import imaplib
import json
import os
import random
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "helper"))

from zolderd_instance import Zolderd, crypt_hash  # noqa: E402

ADDRESS = "127.0.1.52"
SMTP_PORT = 2525
IMAP_PORT = 2143
USER = "bench"
PASSWORD = "bench wachtwoord"


def log(msg):
    print(msg, flush=True)


def write_mailbox(path, n, rng):
    """An mbox of n messages of 1-8 KiB, as local delivery writes them."""
    words = ["zolder", "post", "bericht", "lan", "modem", "thuis", "koffie", "fiets", "regen", "kaas"]
    with open(path, "w") as f:
        for i in range(1, n + 1):
            body_lines = rng.randint(10, 120)
            body = "\n".join(" ".join(rng.choice(words) for _ in range(10)) for _ in range(body_lines))
            f.write(f"From sender{i % 50}@example.test Sat Nov 28 07:{i % 60:02d}:00 2026\n"
                    f"Delivered-To: {USER}@zolder.thuis\nFrom: Sender {i % 50} <sender{i % 50}@example.test>\n"
                    f"To: {USER}@zolder.thuis\nSubject: bench message {i}\nMessage-ID: <{i}@bench.test>\n"
                    f"Date: Sat, 28 Nov 2026 07:00:00 +0100\n\n{body}\n\n")


def vmrss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def connect():
    m = imaplib.IMAP4(ADDRESS, IMAP_PORT, timeout=60)
    m.login(USER, PASSWORD)
    return m


def client(n, deadline, counts, errors, seed):
    rng = random.Random(seed)
    ops = 0
    try:
        m = connect()
        m.select("INBOX")
        m.fetch("1:*", "(FLAGS UID RFC822.SIZE)")
        ops += 3
        while time.monotonic() < deadline:
            i = str(rng.randint(1, n))
            r = rng.random()
            if r < 0.30:
                typ, _ = m.fetch(i, "(FLAGS UID RFC822.SIZE)")
            elif r < 0.50:
                typ, _ = m.fetch(i, "(BODY.PEEK[])")
            elif r < 0.60:
                typ, _ = m.fetch(i, "(ENVELOPE)")
            elif r < 0.70:
                typ, _ = m.uid("SEARCH", "UNSEEN")
            elif r < 0.90:
                typ, _ = m.store(i, "+FLAGS" if rng.random() < 0.5 else "-FLAGS", "(\\Seen)")
            else:
                typ, _ = m.noop()
            if typ != "OK":
                errors.append(typ)
            ops += 1
        m.logout()
    except (imaplib.IMAP4.error, OSError) as e:
        errors.append(repr(e))
    counts.append(ops)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--idle", type=int, default=100)
    ap.add_argument("--quick", action="store_true", help="1,000 messages, 4 clients, 5 s, 20 idle")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    if args.quick:
        args.messages, args.clients, args.seconds, args.idle = 1000, 4, 5.0, 20
    rng = random.Random(7)
    z = Zolderd(address=ADDRESS, port=SMTP_PORT, name="zolderd-bench-imap",
                conf={"imap": f"{ADDRESS}:{IMAP_PORT}", "imap_connection_limit": str(args.idle + args.clients + 10)},
                users={USER: crypt_hash(PASSWORD)})
    result = {"messages": args.messages, "clients": args.clients, "seconds": args.seconds, "idle": args.idle}
    try:
        z.start()
        spool = z.mbox_path(USER)
        os.makedirs(os.path.dirname(spool), exist_ok=True)
        write_mailbox(spool, args.messages, rng)
        owner = os.stat(os.path.dirname(spool))
        os.chown(spool, owner.st_uid, owner.st_gid)
        result["mbox_bytes"] = os.path.getsize(spool)
        pid = z.inst.proc.pid

        m = connect()
        t0 = time.monotonic()
        typ, data = m.select("INBOX")
        result["cold_select_s"] = round(time.monotonic() - t0, 3)
        assert typ == "OK" and int(data[0]) == args.messages, (typ, data)
        t0 = time.monotonic()
        m.select("INBOX")
        result["warm_select_s"] = round(time.monotonic() - t0, 3)
        m.logout()
        log(f"mailbox: {args.messages} messages, {result['mbox_bytes'] / 1e6:.1f} MB; "
            f"cold SELECT {result['cold_select_s']} s, warm SELECT {result['warm_select_s']} s")

        counts, errors = [], []
        deadline = time.monotonic() + args.seconds
        threads = [threading.Thread(target=client, args=(args.messages, deadline, counts, errors, i))
                   for i in range(args.clients)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        result["ops"] = sum(counts)
        result["ops_per_s"] = round(sum(counts) / elapsed, 1)
        result["errors"] = errors[:10]
        log(f"load: {args.clients} clients for {elapsed:.1f} s: {sum(counts)} commands, "
            f"{result['ops_per_s']} ops/s, {len(errors)} errors")

        before = vmrss_kib(pid)
        idle = []
        for _ in range(args.idle):
            c = connect()
            c.select("INBOX")
            idle.append(c)
        time.sleep(0.5)
        after = vmrss_kib(pid)
        for c in idle:
            try:
                c.logout()
            except (imaplib.IMAP4.error, OSError, socket.error):
                pass
        result["rss_kib_before"] = before
        result["rss_kib_after_idle"] = after
        result["kib_per_idle_connection"] = round((after - before) / max(args.idle, 1), 1)
        log(f"memory: VmRSS {before} KiB -> {after} KiB with {args.idle} idle selected connections: "
            f"{result['kib_per_idle_connection']} KiB each")
    finally:
        z.cleanup()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    print(json.dumps(result))
    return 1 if result.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
