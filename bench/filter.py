#!/usr/bin/env python3
"""bench/filter.py: content filter throughput (docs/filter.md).

The same mix of mail goes through one zolderd twice, with `filter = yes` and `filter = no`,
and the difference is what the filter costs: messages/s delivered and zolderd CPU per
message. The mix, in equal parts:

  plain      a 2 KiB text message
  multipart  text + a 24 KiB base64 attachment (report.pdf)
  zip        text + a base64 zip attachment (3 entries, 40 KiB expanded)

Every message must be delivered (none of them is banned or infected); the run fails
otherwise. Usage:

  python3 bench/filter.py                     # 1500 messages per run, recorded in bench/
  python3 bench/filter.py --messages 300 --no-record
"""

import argparse
import base64
import io
import json
import os
import smtplib
import subprocess
import sys
import threading
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "helper"))
from zolderd_instance import Zolderd  # noqa: E402
import results_md  # noqa: E402  (bench/, beside this script)

ADDRESS = "127.0.1.52"
PORT = 2527


def b64(data):
    return base64.encodebytes(data).decode().replace("\n", "\r\n")


def make_zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("notes.txt", ("boodschappen " * 1000).encode())
        zf.writestr("data.csv", ("1,2,3,4\n" * 3000).encode())
        zf.writestr("foto.jpg", os.urandom(4096))
    return buf.getvalue()


def messages():
    text = ("Hallo, dit is een gewoon bericht van de zolder.\r\n" * 40)
    pdf = b"%PDF-1.4\n" + os.urandom(24 * 1024)
    z = make_zip()
    head = "From: sjoerd@zolder.thuis\r\nTo: bench@bench.test\r\nSubject: {kind} {n}\r\n"
    mp = ("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"grens\"\r\n\r\n"
          "--grens\r\nContent-Type: text/plain\r\n\r\n{text}\r\n"
          "--grens\r\nContent-Type: {ctype}; name=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n"
          "Content-Disposition: attachment; filename=\"{name}\"\r\n\r\n{data}--grens--\r\n")
    return {
        "plain": head + "\r\n" + text,
        "multipart": head + mp.format(text=text[:400], ctype="application/pdf", name="report.pdf", data=b64(pdf)),
        "zip": head + mp.format(text=text[:400], ctype="application/zip", name="archief.zip", data=b64(z)),
    }


def proc_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid):
    """zolderd's CPU (utime + stime + waited-for children) plus that of its live children:
    the content filter's scanner process lives as long as zolderd."""
    ticks = sum(int(x) for x in proc_fields(pid)[11:15])
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != pid:
            try:
                fields = proc_fields(int(entry))
            except OSError:
                continue
            if int(fields[1]) == pid:
                ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def run(filter_on, count, sessions):
    z = Zolderd(address=ADDRESS, port=PORT, users={"bench": "*", "admin": "*"},
                conf={"local_domains": "bench.test", "filter": "yes" if filter_on else "no",
                      "smtpd_client_connection_limit": "100"})
    try:
        z.start()
        pid = z.inst.proc.pid
        templates = messages()
        kinds = list(templates)
        jobs = [(kinds[i % len(kinds)], i) for i in range(count)]
        errors = []

        def worker(idx):
            try:
                with smtplib.SMTP(ADDRESS, z.port, timeout=60) as s:
                    for kind, n in jobs[idx::sessions]:
                        s.sendmail("sjoerd@zolder.thuis", ["bench@bench.test"],
                                   templates[kind].format(kind=kind, n=n).encode())
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        cpu0 = cpu_seconds(pid)
        t0 = time.monotonic()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(sessions)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        mbox = z.mbox_path("bench")
        deadline = time.monotonic() + 300
        delivered = 0
        while time.monotonic() < deadline:
            try:
                with open(mbox, "rb") as f:
                    delivered = f.read().count(b"\nSubject: ")
            except FileNotFoundError:
                delivered = 0
            if delivered >= count or errors:
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(pid) - cpu0
        log = z.log()
        return {
            "filter": filter_on, "messages": count, "delivered": delivered, "errors": errors,
            "elapsed_s": round(elapsed, 3), "messages_per_s": round(delivered / elapsed, 1),
            "zolderd_cpu_s": round(cpu, 3), "cpu_ms_per_message": round(1000 * cpu / max(delivered, 1), 3),
            "verdicts_clean": log.count("filter=clean"), "quarantined": log.count("filter=quarantined"),
            "bytes_per_message": {k: len(v) for k, v in templates.items()},
        }
    finally:
        z.cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=1500)
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    results = [run(True, args.messages, args.sessions), run(False, args.messages, args.sessions)]
    on, off = results
    for r in results:
        print(json.dumps(r))
    ok = all(r["delivered"] == args.messages and not r["errors"] for r in results) and \
        on["verdicts_clean"] == args.messages and on["quarantined"] == 0
    if not ok:
        print("bench/filter.py: FAILED (not every message delivered and scanned clean)", file=sys.stderr)
        return 1
    if args.no_record:
        return 0
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    raw = os.path.join("bench", "results", f"filter-{stamp}.json")
    with open(os.path.join(ROOT, raw), "w") as f:
        json.dump(results, f, indent=1)
    git = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    sizes = ", ".join(f"{k} {v:,} B" for k, v in on["bytes_per_message"].items())
    with results_md.section_writer(os.path.join(HERE, "RESULTS.md")) as f:
        f.write(f"\n## {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC: content filter, "
                f"{args.messages} messages over {args.sessions} sessions\n\n"
                f"Command: `python3 bench/filter.py --messages {args.messages} --sessions {args.sessions}`  \n"
                f"Mix: plain, multipart (PDF attachment) and zip attachment in equal parts ({sizes}); "
                f"zolder git {git}  \nRaw numbers: `{raw}`\n\n"
                "|  | filter = yes | filter = no | cost of the filter |\n|---|---|---|---|\n"
                f"| delivered | {on['delivered']}/{args.messages} | {off['delivered']}/{args.messages} |  |\n"
                f"| delivered messages/s | {on['messages_per_s']} | {off['messages_per_s']} | "
                f"{on['messages_per_s'] / off['messages_per_s']:.2f}x |\n"
                f"| zolderd CPU per message, scanner children included (ms) | {on['cpu_ms_per_message']} | {off['cpu_ms_per_message']} | "
                f"+{on['cpu_ms_per_message'] - off['cpu_ms_per_message']:.3f} ms |\n"
                f"| filter verdicts (clean / quarantined) | {on['verdicts_clean']} / {on['quarantined']} | - |  |\n")
    print(f"recorded in bench/RESULTS.md and {raw}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
