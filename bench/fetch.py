#!/usr/bin/env python3
"""bench/fetch.py: messages per second from an ISP mailbox into zolder's mboxes (issue 6,
section 7): N messages of about SIZE bytes are put in one ispsim mailbox, then fetched over
POP3 and, separately, over IMAP by zolder-fetch into a zolderd, end to end (poll start to the
last message in the fsync'd mbox); Debian's fetchmail (when installed) pulls the same mailbox
into the same zolderd side by side. Bounded: every run has a deadline; only processes it
started are stopped, by PID.

    python3 bench/fetch.py [--messages 2000] [--size 4096] [--deadline 600] [--no-fetchmail]
                           [--only pop3|imap] [--record | --no-record]

Besides msg/s it prints the CPU time per message of zolderd (with its scanner processes), of
the poller and of ispsim: figures that hold on a busy machine, where wall-clock rates swing.

Run it under the integration lock (it binds 127.0.13.x and 127.0.13.20:2725):
    flock /tmp/zolder-itest.lock python3 bench/fetch.py --record
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(ROOT, "bench")
sys.path.insert(0, os.path.join(ROOT, "simulator", "python"))
sys.path.insert(0, os.path.join(ROOT, "tests", "helper"))
from ispsim_client import IspsimClient  # noqa: E402
import zolder_test  # noqa: E402
from zolderd_instance import Zolderd  # noqa: E402
import results_md  # noqa: E402  (bench/, beside this script)

POP3 = "127.0.13.110"
IMAP = "127.0.13.143"
ZOLDER = "127.0.13.20"
PORT = 2725
WORLD = f"""world fetchbench
zone bench.test
host pop3.bench.test {POP3}
host imap.bench.test {IMAP}
store s
mailbox s bench password bench
pop3 pop3.bench.test store s
imap imap.bench.test store s
"""


def log(text):
    print(text, flush=True)


def message(i, size):
    head = (f"From: load{i}@client.test\nTo: bench@bench.test\nSubject: bench {i}\n"
            f"Message-ID: <bench{i}@client.test>\n\n")
    line = "0123456789abcdefghijklmnopqrstuvwxyz" * 2 + "\n"
    body = line * max(1, (size - len(head)) // len(line))
    return head + body


def count_messages(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return 0
    return data.count(b"\nSubject: bench ")


def tree_cpu_s(root):
    """CPU seconds (user + system) of root and its live descendants, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    children, cpu = {}, {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(name))
        cpu[int(name)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo += children.get(pid, [])
    return total


def run_one(isp, z, tool, proto, user, n, size, deadline, home, ispsim_pid):
    """Fills the mailbox, runs one poller, returns the measurement."""
    isp.reset()
    t0 = time.monotonic()
    for i in range(n):
        isp.inject("s", "bench", message(i, size))
    inject_s = time.monotonic() - t0
    host = POP3 if proto == "pop3" else IMAP
    rc_path = os.path.join(home, f"rc-{tool}-{proto}")
    smtp = f"smtphost {ZOLDER}/{z.port} smtpaddress localhost" if tool == "fetchmail" else ""
    with open(rc_path, "w") as f:
        f.write(f"set no bouncemail\npoll {host} proto {proto} timeout 60 "
                f"user bench pass bench is {user} {smtp} sslproto '' fetchall\n")
    os.chmod(rc_path, 0o600)
    mbox = z.mbox_path(user)
    before = count_messages(mbox)
    if tool == "zolder-fetch":
        cmd = [zolder_test.binary("zolder-fetch"), "-f", rc_path, "-c", z.config]
    else:
        cmd = ["fetchmail", "-f", rc_path, "--nodetach", "--nosyslog", "--idfile",
               os.path.join(home, f"ids-{proto}"), "--pidfile", os.path.join(home, "pid")]
    z_cpu0, isp_cpu0 = tree_cpu_s(z.inst.proc.pid), tree_cpu_s(ispsim_pid)
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    poller_cpu0 = ru.ru_utime + ru.ru_stime
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "HOME": home})
    try:
        out, _ = proc.communicate(timeout=deadline)
        status = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        status = "timeout"
    poll_s = time.monotonic() - t0
    # end to end: until the last message is in the mbox (zolderd delivers after its commit)
    while (status == 0 and count_messages(mbox) - before < n and
           time.monotonic() - t0 < deadline):
        time.sleep(0.01)
    elapsed = time.monotonic() - t0
    z_cpu, isp_cpu = tree_cpu_s(z.inst.proc.pid) - z_cpu0, tree_cpu_s(ispsim_pid) - isp_cpu0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)  # the poller is the child reaped since
    poller_cpu = ru.ru_utime + ru.ru_stime - poller_cpu0
    got = count_messages(mbox) - before
    left = len(isp.messages("s", "bench"))
    r = {"tool": tool, "proto": proto, "messages": n, "size": size, "delivered": got,
         "left_on_server": left, "exit": status, "poll_s": round(poll_s, 3),
         "elapsed_s": round(elapsed, 3), "msgs_per_s": round(got / elapsed, 1) if elapsed else 0,
         "inject_s": round(inject_s, 2),
         "cpu_ms_per_msg": {"zolderd": round(1000 * z_cpu / n, 3), "poller": round(1000 * poller_cpu / n, 3),
                            "ispsim": round(1000 * isp_cpu / n, 3)}}
    if status not in (0, "timeout") or got != n:
        r["output_tail"] = out.decode("utf-8", "replace")[-1500:]
    log(f"  {tool:12} {proto:4}: {got}/{n} in {elapsed:.2f} s = {r['msgs_per_s']} msg/s "
        f"(exit {status}, {left} left on the server); CPU ms/msg: zolderd {r['cpu_ms_per_msg']['zolderd']}, "
        f"poller {r['cpu_ms_per_msg']['poller']}, ispsim {r['cpu_ms_per_msg']['ispsim']}")
    return r


def write_results(results, args, json_path):
    now = datetime.datetime.now(datetime.timezone.utc)
    by = {(r["tool"], r["proto"]): r for r in results}
    lines = [f"\n## {now:%Y-%m-%d %H:%M} UTC: fetch, {args.messages} x {args.size} B from one "
             f"ispsim mailbox into zolder\n",
             f"Command: `python3 bench/fetch.py --messages {args.messages} --size {args.size}`  ",
             "Path: ispsim POP3/IMAP (plain, loopback) -> poller -> SMTP to zolderd -> mbox "
             "(end to end: poll start to the last message in the mbox)  ",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared)  ",
             f"Raw numbers: `{os.path.relpath(json_path, ROOT)}`\n",
             "| | zolder-fetch | Debian fetchmail | zolder-fetch/fetchmail |",
             "|---|---|---|---|"]
    for proto in ("pop3", "imap"):
        z = by.get(("zolder-fetch", proto))
        f = by.get(("fetchmail", proto))
        zs = f"{z['msgs_per_s']} msg/s ({z['delivered']}/{z['messages']}, {z['elapsed_s']} s)" if z else "-"
        fs = f"{f['msgs_per_s']} msg/s ({f['delivered']}/{f['messages']}, {f['elapsed_s']} s)" if f else "not run"
        ratio = f"{z['msgs_per_s'] / f['msgs_per_s']:.1f}x" if z and f and f["msgs_per_s"] else ""
        lines.append(f"| {proto.upper()} | {zs} | {fs} | {ratio} |")
    lines.append("")
    lines.append("ispsim's POP3 offers PIPELINING (RFC 2449), so zolder-fetch keeps up to 16 RETR "
                 "commands in flight there; IMAP has up to 16 UID FETCH commands in flight. Both "
                 "hand mail to zolderd over fetch_smtp_sessions (default 8) pipelined SMTP sessions.")
    results_md.add_section(os.path.join(HERE, "RESULTS.md"), "\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--deadline", type=float, default=600)
    ap.add_argument("--no-fetchmail", action="store_true")
    ap.add_argument("--only", choices=("pop3", "imap"), help="one protocol only")
    ap.add_argument("--record", action="store_true", help="add a section at the top of bench/RESULTS.md")
    ap.add_argument("--no-record", dest="record", action="store_false", help="print only (the default)")
    args = ap.parse_args()
    for b in ("ispsim", "zolderd", "zolder-fetch"):
        if not os.path.exists(zolder_test.binary(b)):
            sys.exit(f"build/bin/{b} missing: make all")
    inst = zolder_test.Instance(name="fetchbench-ispsim")
    inst.write("bench.world", WORLD)
    sock = inst.path("ispsim.sock")
    inst.start([zolder_test.binary("ispsim"), "-w", inst.path("bench.world"), "-s", sock,
                "-d", inst.path("data"), "-q"], timeout=30)
    z = Zolderd(address=ZOLDER, port=PORT, name="fetchbench-zolderd",
                users={"zf": "*", "fm": "*"}, conf={"smtpd_client_connection_limit": "50"})
    z.start()
    results = []
    try:
        isp = IspsimClient(sock, timeout=60)
        home = z.inst.path("home")
        os.makedirs(home, exist_ok=True)
        tools = ["zolder-fetch"]
        if not args.no_fetchmail and shutil.which("fetchmail"):
            tools.append("fetchmail")
        for proto in (args.only,) if args.only else ("pop3", "imap"):
            for tool in tools:
                user = "zf" if tool == "zolder-fetch" else "fm"
                results.append(run_one(isp, z, tool, proto, user, args.messages, args.size,
                                       args.deadline, home, inst.proc.pid))
        isp.close()
    finally:
        z.cleanup()
        inst.stop()
        inst.cleanup()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    json_path = os.path.join(HERE, "results", f"fetch-{stamp}.json")
    if args.record:
        with open(json_path, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=1)
        write_results(results, args, json_path)
        log(f"wrote {os.path.relpath(json_path, ROOT)}, bench/RESULTS.md")
    else:
        log(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
