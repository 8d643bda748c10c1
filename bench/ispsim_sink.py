#!/usr/bin/env python3
"""bench/ispsim_sink.py: ispsim's smarthost as a mail sink against Postfix's smtp-sink, side by
side, both fed by Postfix's smtp-source (issue 3, section 8). Bounded and self-stopping: every
run has a timeout, and it stops only the processes it started, by PID.

    python3 bench/ispsim_sink.py [--messages 10000] [--sessions 8] [--size 1000] [--rounds 3]
                                 [--out bench/RESULTS.md]

ispsim runs a one-host world: a smarthost (relay handoff) for 127.0.0.0/8 whose recipients'
domain has no MX, so each message is taken, recorded (a no-route delivery) and dropped, with
-q (DATA lines summed up in one transcript record instead of one record each). smtp-sink
takes and drops too. Each round runs both, in alternating order; the report gives every run
and the medians in messages per second.
"""

import argparse
import datetime
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "simulator", "python"))
from ispsim_client import IspsimClient  # noqa: E402
import results_md  # noqa: E402  (bench/, beside this script)

ISPSIM_ADDR = "127.0.12.25"
SINK_ADDR = "127.0.12.26"
SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
WORLD = """world bench
zone bench.test
host sink.bench.test 127.0.12.25
smarthost sink.bench.test customers 127.0.0.0/8 relay handoff
"""


def port_free(addr, port=25):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def wait_port(addr, port=25, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((addr, port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def stop(proc):
    """Stops a process this script started, by its PID."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def cpu_seconds(pid):
    """User plus system CPU time a process has used so far, in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def source(addr, args, timeout, extra):
    """Runs smtp-source once; messages per second (None on failure)."""
    cmd = [SMTP_SOURCE, "-s", str(args.sessions), "-m", str(args.messages), "-l", str(args.size),
           "-f", "bench@zolder.thuis", "-t", "sink@nowhere.test", *extra, f"{addr}:25"]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    elapsed = time.monotonic() - t0
    if r.returncode != 0:
        print(f"smtp-source failed: {r.stderr.strip()}", file=sys.stderr)
        return None
    return args.messages / elapsed


def machine_notes():
    model = "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    postfix = subprocess.run(["postconf", "-d", "-h", "mail_version"], capture_output=True,
                             text=True).stdout.strip() if shutil.which("postconf") else "?"
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "simulator"],
                           capture_output=True, text=True).stdout.strip()
    commit += " with uncommitted changes" if dirty else ""
    return [f"CPU: {model}, {os.cpu_count()} logical CPUs (shared with other work: "
            f"load average {os.getloadavg()[0]:.2f} at the start)",
            f"Kernel: {platform.system()} {platform.release()}; Python {platform.python_version()}",
            f"Postfix {postfix} (smtp-sink, smtp-source); ispsim at {commit or '?'} "
            f"(build/bin/ispsim, -O2)"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timeout", type=int, default=120, help="seconds per run")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    args = ap.parse_args()
    for name, value, top in (("messages", args.messages, 200000), ("sessions", args.sessions, 64),
                             ("size", args.size, 1 << 20), ("rounds", args.rounds, 10)):
        if not 1 <= value <= top:
            ap.error(f"--{name} must be 1..{top}")
    ispsim = os.path.join(ROOT, "build", "bin", "ispsim")
    for prog in (ispsim, SMTP_SOURCE, SMTP_SINK):
        if not os.path.exists(prog):
            sys.exit(f"missing {prog} (make all; Debian's postfix)")
    for addr in (ISPSIM_ADDR, SINK_ADDR):
        if not port_free(addr):
            sys.exit(f"{addr}:25 is in use (not ours): not benchmarking")

    notes = machine_notes()
    workloads = [("one message per connection", []),
                 ("every session's messages over one connection (-d)", ["-d"])]
    runs = {w: {"ispsim": [], "smtp-sink": []} for w, _ in workloads}
    # Messages per CPU-second of the sink process: what one core could take if the sink had it
    # to itself. On a 2-core machine the client and the kernel's loopback path share the
    # CPUs with the sink, so the wall-clock rate mostly measures smtp-source.
    capacity = {w: {"ispsim": [], "smtp-sink": []} for w, _ in workloads}
    with tempfile.TemporaryDirectory(prefix="ispsim-bench-") as tmp:
        world = os.path.join(tmp, "bench.world")
        with open(world, "w", encoding="utf-8") as f:
            f.write(WORLD)
        sock = os.path.join(tmp, "ispsim.sock")
        log = open(os.path.join(tmp, "ispsim.log"), "w", encoding="utf-8")
        isp = subprocess.Popen([ispsim, "-w", world, "-s", sock, "-d", os.path.join(tmp, "data"),
                                "-q"], stdout=log, stderr=log)
        sink_argv = [SMTP_SINK] + (["-u", "nobody"] if os.geteuid() == 0 else []) + \
            [f"{SINK_ADDR}:25", "256"]
        sink = subprocess.Popen(sink_argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if not wait_port(ISPSIM_ADDR) or not wait_port(SINK_ADDR):
                sys.exit("a sink did not come up")
            violations = []
            with IspsimClient(sock) as client:
                for wname, extra in workloads:
                    for r in range(args.rounds):
                        order = [("ispsim", ISPSIM_ADDR), ("smtp-sink", SINK_ADDR)]
                        if r % 2:
                            order.reverse()
                        for name, addr in order:
                            client.reset()
                            pid = isp.pid if name == "ispsim" else sink.pid
                            cpu0 = cpu_seconds(pid)
                            rate = source(addr, args, args.timeout, extra)
                            if rate is None:
                                sys.exit(f"{name}: smtp-source failed")
                            cpu = max(cpu_seconds(pid) - cpu0, 1 / os.sysconf("SC_CLK_TCK"))
                            runs[wname][name].append(rate)
                            capacity[wname][name].append(args.messages / cpu)
                            print(f"{wname}, round {r + 1}, {name}: {rate:.0f} messages/s, "
                                  f"{args.messages / cpu:.0f} messages per CPU-second",
                                  flush=True)
                            if name == "ispsim":
                                violations += client.violations()
        finally:
            stop(isp)
            stop(sink)
            log.close()
    if violations:
        print(f"ispsim recorded violations by smtp-source: {violations[:5]}", file=sys.stderr)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"## ispsim smarthost as a sink vs smtp-sink ({stamp})", "",
             f"smtp-source -s {args.sessions} -m {args.messages} -l {args.size}; {args.rounds} "
             "rounds, the two sinks in alternating order; messages per second.", ""]
    for wname, _ in workloads:
        r = runs[wname]
        med = {k: statistics.median(v) for k, v in r.items()}
        lines += [f"### {wname}", "", "| round | ispsim -q | smtp-sink |", "|---|---|---|"]
        for i in range(args.rounds):
            lines.append(f"| {i + 1} | {r['ispsim'][i]:.0f} | {r['smtp-sink'][i]:.0f} |")
        cap = capacity[wname]
        cmed = {k: statistics.median(v) for k, v in cap.items()}
        lines += [f"| median | {med['ispsim']:.0f} | {med['smtp-sink']:.0f} |", "",
                  f"ispsim / smtp-sink: {med['ispsim'] / med['smtp-sink']:.2f} "
                  "(the aim: at least 1, better 2).", "",
                  "Capacity, messages per CPU-second of the sink process (median of the rounds): "
                  f"ispsim {cmed['ispsim']:.0f}, smtp-sink {cmed['smtp-sink']:.0f}, ratio "
                  f"{cmed['ispsim'] / cmed['smtp-sink']:.2f}.", ""]
    lines += [f"Violations recorded by ispsim (smtp-source's SMTP): {len(violations)}. "
              "smtp-source, the sink and the other users share the CPUs, so the rates are "
              "close to what the client can send as much as what a sink can take.", "",
              "Machine:", ""]
    lines += [f"- {n}" for n in notes] + [""]
    text = "\n".join(lines) + "\n"
    print(text)
    results_md.add_section(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
