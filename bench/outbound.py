#!/usr/bin/env python3
"""bench/outbound.py: `make bench-outbound`, the outbound benchmark of issue 5 section 7.

N messages of SIZE bytes are queued in zolderd with `defer_remote = yes` (the dial-up
setting: nothing leaves), then one flush (`zolderctl flush`) sends them all to ispsim's
smarthost through its dial-up link (mode up, no latency or bandwidth limit: loopback speed).
Measured: messages/s from the flush to the empty queue, how many connections went through the
link (the issue's "one dial carries the whole queue"), dials, and what the smarthost took.

ispsim runs a one-host world: the smarthost relays for the link's customer address by
in-process hand-off to a domain without MX, so each message is taken, recorded (`no-route`)
and dropped, with -q (DATA lines summed up in one record): the sink costs little. Bounded
(--deadline), stops only what it started, by PID. Standard library only.

    python3 bench/outbound.py [--messages 5000] [--size 4096] [--record | --no-record]
"""

import argparse
import datetime
import json
import os
import platform
import smtplib
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "helper"))
sys.path.insert(0, os.path.join(ROOT, "simulator", "python"))

import zolder_test  # noqa: E402
from ispsim_client import IspsimClient  # noqa: E402
from zolderd_instance import Zolderd  # noqa: E402
import results_md  # noqa: E402  (bench/, beside this script)

ZOLDER = ("127.0.1.52", 2527)
LAN_HOST = "127.0.1.5"
CUSTOMER = "127.0.13.10"
SMARTHOST = "127.0.12.35"          # where the smarthost listens
LINK_SMARTHOST = "127.13.12.35"    # the same through the dial-up link
WORLD = f"""world bench-outbound
zone bench.test
link modem listen 127.13.0.0/16 from {CUSTOMER} mode up seed 1
host smtp.bench.test {SMARTHOST} via modem
customer {CUSTOMER} public 62.251.70.10
smarthost smtp.bench.test customers {CUSTOMER} relay handoff
"""
RCPT = "bench@nowhere.test"         # no MX in this world: taken and dropped


def log(msg):
    print(msg, flush=True)


def message(i, size):
    head = (f"From: sjoerd@zolder.thuis\r\nTo: {RCPT}\r\nSubject: bench {i}\r\n"
            f"Message-ID: <bench{i}@zolder.thuis>\r\n\r\n")
    line = ("0123456789abcdefghijklmnopqrstuvwxyz" * 3)[:76] + "\r\n"
    body = (line * (size // len(line) + 1))[:max(0, size - len(head) - 2)] + "\r\n"
    return head + body


def queue_count(z):
    return len(z.queue_ids())


def fill(z, n, size, sessions=4):
    """Queues n messages over a few SMTP sessions (one connection each, many transactions)."""
    errors = []

    def worker(k):
        try:
            with smtplib.SMTP(*ZOLDER, source_address=(LAN_HOST, 0), timeout=60) as s:
                s.ehlo("ecs.thuis")
                for i in range(k, n, sessions):
                    s.sendmail("sjoerd@zolder.thuis", [RCPT], message(i, size))
        except Exception as e:  # reported below
            errors.append(e)
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"queueing failed: {errors[0]!r}")


def count_relayed(isp):
    n, since = 0, 0
    while True:
        got = isp.call("records.read", kind="delivery", since=since, limit=10000)
        n += sum(1 for r in got["records"] if r.get("status") == "no-route")
        if not got["records"]:
            return n
        since = got["next"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--deadline", type=float, default=300)
    ap.add_argument("--record", dest="record", action="store_true", default=None)
    ap.add_argument("--no-record", dest="record", action="store_false")
    args = ap.parse_args()
    record = args.record if args.record is not None else (args.messages == 5000 and args.size == 4096)

    for addr, port in ((SMARTHOST, 25), (ZOLDER[0], ZOLDER[1])):
        if not zolder_test.address_free(addr, port):
            sys.exit(f"{addr}:{port} is in use")
    isp_inst = zolder_test.Instance(name="ispsim-bench")
    z = None
    try:
        isp_inst.write("bench.world", WORLD)
        sock = isp_inst.path("ispsim.sock")
        isp_inst.start([zolder_test.binary("ispsim"), "-q", "-w", isp_inst.path("bench.world"), "-s", sock,
                        "-d", isp_inst.path("data"), "-r", isp_inst.path("records")], timeout=30)
        isp = IspsimClient(sock, timeout=60)
        z = Zolderd(address=ZOLDER[0], port=ZOLDER[1], conf={
            "smarthost": f"[{LINK_SMARTHOST}]:25", "dns": "nodns", "defer_remote": "yes",
            "smtp_bind_address": CUSTOMER})
        z.start()

        log(f"queueing {args.messages} x {args.size} B with defer_remote = yes ...")
        t0 = time.monotonic()
        fill(z, args.messages, args.size)
        z.wait_for(lambda: queue_count(z) == args.messages, timeout=args.deadline, what="all messages queued")
        queued_s = time.monotonic() - t0
        stats0 = isp.link_stats()
        log(f"queued in {queued_s:.2f} s; flushing ...")

        t1 = time.monotonic()
        subprocess.run([zolder_test.binary("zolderctl"), "-c", z.config, "flush"], check=True,
                       capture_output=True, timeout=60)
        z.wait_for(lambda: queue_count(z) == 0, timeout=args.deadline, what="an empty queue")
        flush_s = time.monotonic() - t1
        stats = isp.link_stats()
        relayed = count_relayed(isp)
        connections = stats["connections"] - stats0["connections"]
        rate = args.messages / flush_s
        log(f"flushed {args.messages} messages in {flush_s:.2f} s: {rate:.1f} msg/s, "
            f"{connections} connection(s), {stats['dials']} dial(s), smarthost took {relayed}")
        errors = [l for l in z.log().splitlines() if ": error:" in l or ": warning:" in l]

        result = {
            "when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "messages": args.messages, "size": args.size, "queue_seconds": round(queued_s, 3),
            "flush_seconds": round(flush_s, 3), "messages_per_second": round(rate, 1),
            "connections": connections, "dials": stats["dials"], "smarthost_took": relayed,
            "link_bytes_up": stats["bytes_up"] - stats0["bytes_up"],
            "zolderd_log_warnings": len(errors),
            "git": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                  capture_output=True, text=True).stdout.strip(),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, kernel {platform.release()}",
        }
        if relayed != args.messages:
            log(f"WARNING: the smarthost took {relayed} of {args.messages}")
        if record:
            os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
            stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
            raw = os.path.join(HERE, "results", f"outbound-{stamp}.json")
            with open(raw, "w") as f:
                json.dump(result, f, indent=2)
            with results_md.section_writer(os.path.join(HERE, "RESULTS.md")) as f:
                f.write(f"\n## {result['when']}: outbound, {args.messages} x {args.size} B flushed to "
                        f"ispsim's smarthost\n\n")
                f.write(f"Command: `make bench-outbound (python3 bench/outbound.py)`  \n")
                f.write(f"Machine: {result['machine']} (shared)  \nVersions: zolder 0.1 (git {result['git']})  \n")
                f.write(f"Raw numbers: `bench/results/{os.path.basename(raw)}`\n\n")
                f.write("| | zolder |\n|---|---|\n")
                f.write(f"| queued first (4 SMTP sessions, defer_remote = yes) (s) | {queued_s:.2f} |\n")
                f.write(f"| flush to empty queue (s) | {flush_s:.2f} |\n")
                f.write(f"| messages/s | {rate:.1f} |\n")
                f.write(f"| connections through the link | {connections} |\n")
                f.write(f"| dials | {stats['dials']} |\n")
                f.write(f"| taken by the smarthost | {relayed}/{args.messages} |\n")
                f.write(f"| bytes up the link | {result['link_bytes_up']:,} |\n")
                f.write(f"| zolderd warnings/errors in its log | {len(errors)} |\n\n")
                f.write("Setup: ispsim one-host world (smarthost, relay handoff to a domain without MX: taken, "
                        "recorded, dropped; -q), reached through its dial-up link (mode up, no profile); zolderd "
                        "smarthost = [link address]:25, smtp_bind_address = the link's customer address, "
                        "dns = nodns, clear text (the smarthost offers no STARTTLS). Each message is its own "
                        "transaction (MAIL, RCPT pipelined; DATA; the dot) on one connection; each recipient's "
                        "D mark is fdatasync'd and each finished queue file is unlinked with a folder fsync.\n")
            log(f"recorded in bench/RESULTS.md and {raw}")
    finally:
        if z:
            z.cleanup()
        status = isp_inst.stop()
        if status not in (0, None):
            log(f"ispsim exited with {status}")
        isp_inst.cleanup()


if __name__ == "__main__":
    main()
