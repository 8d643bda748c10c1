#!/usr/bin/env python3
"""bench/imap.py: zolder's LAN IMAP and POP3 service against Debian's Dovecot, side by side on the
same mailbox (issue 7, section 6). Bounded and self-stopping; it stops only what it started, by PID.

    python3 bench/imap.py [--messages 10000] [--clients 10] [--seconds 20] [--idle 100]
                          [--big 100000] [--only zolder|dovecot-mbox|dovecot-mdbox] [--no-record]

For each server (zolder with its mbox spool; Dovecot with the same mbox as INBOX; Dovecot with
the mailbox imported into mdbox, its fastest format) on its own loopback address:

1. load: --clients concurrent IMAP clients for --seconds, each repeating imaptest's default
   cycle: LOGIN, SELECT INBOX, FETCH 1:* (FLAGS UID RFC822.SIZE), FETCH BODY.PEEK[] and
   ENVELOPE of a random message, UID SEARCH UNSEEN, STORE +FLAGS (\\Seen) (half the cycles),
   STORE +FLAGS (\\Deleted) of a random message and EXPUNGE, APPEND of a new message, LOGOUT.
   Each command is one op; the mailbox stays at about --messages messages. The clients are
   build/bench/imapload (bench/imapload.c: C, one process, epoll), which reports its own CPU
   time, so the client's cost stays small and visible next to the server's.
2. idle: --idle clients logged in with INBOX selected, doing nothing: the server's memory
   (PSS of its processes) per connection, over the same server without them (measured first,
   on the fresh server after one SELECT of INBOX has warmed its per-mailbox cache).
3. pop3: one POP3 client retrieves every message (RETR 1..N): messages/s and MB/s.
4. first SELECT of a --big message mbox that the server has never seen (no index): seconds.

Both servers verify the same SHA-512 crypt hash at LOGIN (zolderd's users file; Dovecot's
passwd-file with the {CRYPT} scheme). The Python client below only does parts 2 to 4.

Writes bench/results/imap-DATE.json, a section at the top of bench/RESULTS.md and
bench/plots/imap.png (gnuplot), unless --no-record.
"""

import argparse
import asyncio
import datetime
import json
import os
import platform
import functools
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "helper"))

import zolder_test  # noqa: E402
import zolderd_instance  # noqa: E402
import results_md  # noqa: E402  (bench/, beside this script)

PASSWORD = "geheim"
USER = "bench"
CLIENT_ADDR = "127.0.0.1"   # plain-text logins are allowed from loopback on both servers
ZOLDER_ADDR = "127.0.13.20"
DOVECOT_ADDR = "127.0.13.30"
IMAP_PORT = 1143
POP3_PORT = 1110
LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")
IMAPLOAD_GRACE = 120   # seconds imapload may run past --seconds to finish its cycles


@functools.lru_cache(maxsize=None)
def password_hash():
    """The SHA-512 crypt hash ($6$) both servers verify at LOGIN."""
    return zolderd_instance.crypt_hash(PASSWORD)


def imapload_path():
    build = zolder_test.BUILD if os.path.isabs(zolder_test.BUILD) else os.path.join(ROOT, zolder_test.BUILD)
    return os.path.join(build, "bench", "imapload")


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------- mailboxes

def message(i, size, rng):
    """One message of about size bytes, mbox-safe (no line starts with 'From ')."""
    # bench/imapload.c makes its APPENDed messages in the same shape (keep the two alike)
    head = (f"From: Sender {i % 97} <sender{i % 97}@example.net>\n"
            f"To: {USER}@zolder.thuis\n"
            f"Subject: bench message {i}\n"
            f"Date: Sat, 28 Nov 2026 07:{i % 60:02d}:00 +0000\n"
            f"Message-ID: <bench.{i}@example.net>\n"
            f"MIME-Version: 1.0\n"
            f"Content-Type: text/plain; charset=us-ascii\n\n")
    words = ("mail", "zolder", "imap", "dovecot", "mbox", "bench", "over", "the", "line", "post")
    body, n = [], len(head)
    while n < size:
        line = " ".join(rng.choice(words) for _ in range(12))
        body.append(line)
        n += len(line) + 1
    return head + "\n".join(body) + "\n"


def write_mbox(path, count, size, seed=1):
    rng = random.Random(seed)
    with open(path, "w", encoding="ascii") as f:
        for i in range(1, count + 1):
            f.write(f"From sender{i % 97}@example.net Sat Nov 28 07:00:00 2026\n")
            f.write(message(i, size, rng))
            f.write("\n")
    return os.path.getsize(path)


# ---------------------------------------------------------------- process memory

def children_of(pid):
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", encoding="ascii") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            kids.append(int(d))
    return kids


def process_tree(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children_of(p)
    return out


def pss_kib(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup", encoding="ascii") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_seconds(pids):
    """CPU time of the live processes, plus what the first (the server's root) collected from
    children that ended (Dovecot's per-connection processes)."""
    total = 0
    for i, p in enumerate(pids):
        try:
            with open(f"/proc/{p}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
            if i == 0:
                total += int(fields[13]) + int(fields[14])
        except (OSError, ValueError, IndexError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- servers

class Server:
    label = "?"
    addr = "127.0.0.1"

    def __init__(self, workdir):
        self.dir = workdir
        self.proc = None

    def pids(self):
        return process_tree(self.pid()) if self.pid() else []

    def pid(self):
        return self.proc.pid if self.proc else None


class Zolder(Server):
    label = "zolder"
    addr = ZOLDER_ADDR

    @staticmethod
    def unsupported():
        """Why zolderd cannot be measured here, or None."""
        z = zolderd_instance.Zolderd(address=ZOLDER_ADDR, port=2525,
                                     conf={"imap": f"{ZOLDER_ADDR}:{IMAP_PORT}"})
        try:
            r = z.run_tool("zolderd", "-c", z.config, "-t")
            if r.returncode != 0:
                return "zolderd has no IMAP service yet: " + r.stderr.decode(errors="replace").strip()
            return None
        finally:
            z.inst.keep = False
            z.inst.cleanup()

    def start(self, mbox):
        conf = {"imap": f"{ZOLDER_ADDR}:{IMAP_PORT}", "pop3": f"{ZOLDER_ADDR}:{POP3_PORT}",
                "imap_connection_limit": "1000", "pop3_connection_limit": "1000",
                "local_domains": "zolder.thuis", "auth_failure_delay": "0"}
        self.z = zolderd_instance.Zolderd(address=ZOLDER_ADDR, port=2525, conf=conf,
                                          users={USER: password_hash()},
                                          name="bench-imap-zolder")
        spool = self.z.inst.path("var", "spool", "mail")
        os.makedirs(spool, exist_ok=True)
        target = os.path.join(spool, USER)
        if mbox:
            shutil.copyfile(mbox, target)
        else:
            open(target, "w").close()
        if os.geteuid() == 0:
            for d, _, files in os.walk(self.z.inst.path("var")):
                shutil.chown(d, "zolder", "zolder")
                for f in files:
                    shutil.chown(os.path.join(d, f), "zolder", "zolder")
        self.z.start()
        self.dir = self.z.inst.dir

    def pid(self):
        return self.z.inst.proc.pid if getattr(self, "z", None) and self.z.inst.proc else None

    def stop(self):
        self.z.stop()
        self.z.inst.keep = False
        self.z.inst.cleanup()

    def describe(self):
        return (f"zolderd, INBOX = the mbox spool file (STATE_DIR/spool/mail/{USER}) with its UID "
                "index, one process for all connections, plain IMAP, LOGIN against a SHA-512 "
                "crypt hash in its users file")


DOVECOT_CONF = """base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap pop3
listen = {addr}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
passdb {{
  driver = passwd-file
  args = scheme=CRYPT username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%u
}}
mail_location = {location}
first_valid_uid = 1
default_login_user = dovenull
default_internal_user = dovecot
default_process_limit = 2000
default_client_limit = 4000
service imap-login {{
  inet_listener imap {{
    address = {addr}
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {addr}
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
protocol imap {{
  mail_max_userip_connections = 2000
}}
protocol pop3 {{
  mail_max_userip_connections = 2000
}}
"""


class Dovecot(Server):
    addr = DOVECOT_ADDR

    def __init__(self, workdir, fmt):
        super().__init__(workdir)
        self.fmt = fmt
        self.label = f"Dovecot {fmt}"

    @staticmethod
    def unsupported():
        if not shutil.which("dovecot") or not shutil.which("doveadm"):
            return "Debian's dovecot-imapd is not installed"
        if os.geteuid() != 0:
            return "a private Dovecot instance needs root here"
        return None

    def start(self, mbox):
        d = self.dir
        for sub in ("run", "state", "home", "spool"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        os.chmod(os.path.join(d, "spool"), 0o1777)
        import pwd
        pw = pwd.getpwnam("zolder")
        location = (f"mbox:~/mail:INBOX={d}/spool/%u" if self.fmt == "mbox" else "mdbox:~/mdbox")
        self.conf = os.path.join(d, "dovecot.conf")
        with open(self.conf, "w", encoding="ascii") as f:
            f.write(DOVECOT_CONF.format(d=d, addr=DOVECOT_ADDR, uid=pw.pw_uid, gid=pw.pw_gid,
                                        location=location, imap=IMAP_PORT, pop3=POP3_PORT))
        with open(os.path.join(d, "passwd"), "w", encoding="ascii") as f:
            # the hash zolderd gets: crypt(3) (libxcrypt) checks it for both
            f.write(f"{USER}:{{CRYPT}}{password_hash()}\n")
        home = os.path.join(d, "home", USER)
        os.makedirs(home, exist_ok=True)
        inbox = os.path.join(d, "spool", USER)
        if self.fmt == "mbox":
            if mbox:
                shutil.copyfile(mbox, inbox)
            else:
                open(inbox, "w").close()
        for p in (home, os.path.join(d, "spool")):
            for dd, _, files in os.walk(p):
                os.chown(dd, pw.pw_uid, pw.pw_gid)
                for f in files:
                    os.chown(os.path.join(dd, f), pw.pw_uid, pw.pw_gid)
        self.log = open(os.path.join(d, "stdout.log"), "w")
        self.proc = subprocess.Popen(["dovecot", "-c", self.conf, "-F"], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection((DOVECOT_ADDR, IMAP_PORT), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"dovecot exited: {self.tail()}")
                time.sleep(0.05)
        else:
            raise RuntimeError(f"dovecot did not listen: {self.tail()}")
        if self.fmt == "mdbox" and mbox:
            # the same messages, in Dovecot's own fastest format
            src = os.path.join(d, "import")
            os.makedirs(src, exist_ok=True)
            shutil.copyfile(mbox, os.path.join(src, "inbox"))
            for dd, _, files in os.walk(src):
                os.chown(dd, pw.pw_uid, pw.pw_gid)
                for f in files:
                    os.chown(os.path.join(dd, f), pw.pw_uid, pw.pw_gid)
            r = subprocess.run(["doveadm", "-c", self.conf, "import", "-u", USER,
                                f"mbox:{src}:INBOX={src}/inbox", "", "all"],
                               capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                raise RuntimeError(f"doveadm import failed: {r.stderr.strip()}")

    def tail(self):
        try:
            with open(os.path.join(self.dir, "dovecot.log"), encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-10:])
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()

    def describe(self):
        v = subprocess.run(["dovecot", "--version"], capture_output=True, text=True).stdout.strip()
        where = (f"INBOX = the same mbox file" if self.fmt == "mbox"
                 else "INBOX imported into mdbox (doveadm import)")
        return (f"Dovecot {v}, {where}, a process per connection, ssl off, LOGIN against the same "
                "SHA-512 crypt hash as zolderd's (passwd-file, {CRYPT} scheme), Debian defaults "
                "otherwise")


# ---------------------------------------------------------------- IMAP client

class Imap:
    def __init__(self, reader, writer):
        self.r, self.w = reader, writer
        self.n = 0

    @classmethod
    async def connect(cls, host, port):
        r, w = await asyncio.open_connection(host, port, local_addr=(CLIENT_ADDR, 0),
                                             limit=1 << 20)
        c = cls(r, w)
        greeting = await r.readline()
        if not greeting.startswith(b"* OK"):
            raise RuntimeError(f"greeting: {greeting!r}")
        return c

    async def response(self, tag):
        """Lines up to the tagged one; literals read whole. Returns (status, untagged lines)."""
        lines = []
        while True:
            line = await self.r.readline()
            if not line:
                raise ConnectionError("server closed the connection")
            m = LITERAL.search(line)
            while m:
                data = await self.r.readexactly(int(m.group(1)))
                rest = await self.r.readline()
                line = line[:m.start()] + b"{%d}" % len(data) + rest  # the bytes are not needed
                m = LITERAL.search(rest)
            if line.startswith(tag + b" "):
                return line[len(tag) + 1:].split(b" ", 1)[0], lines
            lines.append(line)

    async def cmd(self, text):
        self.n += 1
        tag = b"b%d" % self.n
        self.w.write(tag + b" " + text + b"\r\n")
        return await self.response(tag)

    async def close(self):
        try:
            self.w.close()
            await self.w.wait_closed()
        except (OSError, ConnectionError):
            pass


def exists_of(lines):
    for line in lines:
        m = re.match(rb"\* (\d+) EXISTS", line)
        if m:
            return int(m.group(1))
    return 0


def run_load(server, clients, seconds, size):
    """The load phase: build/bench/imapload runs imaptest's cycle with --clients clients for
    --seconds (see bench/imapload.c); it prints the op counts, latencies, errors and its own
    CPU seconds as JSON. The server's CPU is read from /proc around it."""
    cmd = [imapload_path(), "--host", server.addr, "--port", str(IMAP_PORT), "--bind", CLIENT_ADDR,
           "--user", USER, "--password", PASSWORD, "--clients", str(clients),
           "--seconds", str(seconds), "--size", str(size), "--seed", "1000",
           "--grace", str(IMAPLOAD_GRACE)]
    cpu0 = cpu_seconds(server.pids())
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + IMAPLOAD_GRACE + 30)
    if r.returncode != 0:
        raise RuntimeError(f"imapload exited {r.returncode}: {r.stderr.strip()}")
    stats = json.loads(r.stdout)
    stats["server_cpu_s"] = cpu_seconds(server.pids()) - cpu0
    return stats


async def idle_memory(server, n):
    # Measured on a fresh server before the load (memory the load left in the allocator
    # would otherwise hide what connections cost), after one connection has selected INBOX
    # and left: the per-mailbox cache is then in "before", not divided over the connections.
    c = await Imap.connect(server.addr, IMAP_PORT)
    await c.cmd(f'LOGIN {USER} {PASSWORD}'.encode())
    await c.cmd(b"SELECT INBOX")
    await c.cmd(b"LOGOUT")
    await c.close()
    await asyncio.sleep(0.5)
    before = pss_kib(server.pids())
    conns = []
    try:
        for _ in range(n):
            c = await Imap.connect(server.addr, IMAP_PORT)
            conns.append(c)
            await c.cmd(f'LOGIN {USER} {PASSWORD}'.encode())
            await c.cmd(b"SELECT INBOX")
        await asyncio.sleep(1)
        after = pss_kib(server.pids())
    finally:
        for c in conns:
            await c.close()
    return {"connections": n, "pss_before_kib": before, "pss_after_kib": after,
            "kib_per_connection": (after - before) / n}


def pop3_retrieve(server):
    import poplib
    p = poplib.POP3(server.addr, POP3_PORT, timeout=120)
    try:
        p.user(USER)
        p.pass_(PASSWORD)
        count, _ = p.stat()
        t0 = time.monotonic()
        octets = 0
        for i in range(1, count + 1):
            _, lines, n = p.retr(i)
            octets += n
        elapsed = time.monotonic() - t0
        p.quit()
    finally:
        p.close()
    return {"messages": count, "seconds": elapsed, "messages_per_s": count / elapsed,
            "mb_per_s": octets / elapsed / 1e6}


async def first_select(server):
    c = await Imap.connect(server.addr, IMAP_PORT)
    try:
        await c.cmd(f'LOGIN {USER} {PASSWORD}'.encode())
        t0 = time.monotonic()
        status, lines = await c.cmd(b"SELECT INBOX")
        elapsed = time.monotonic() - t0
        await c.cmd(b"LOGOUT")
    finally:
        await c.close()
    return {"seconds": elapsed, "status": status.decode(), "exists": exists_of(lines)}


# ---------------------------------------------------------------- report

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
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    return {"cpu": model, "cores": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(), "load_average": os.getloadavg()[0],
            "commit": commit}


def fmt(v, nd=0):
    return "-" if v is None else f"{v:,.{nd}f}"


def report_section(report):
    rs = report["results"]
    names = [r["label"] for r in rs]
    lines = [f"## {report['date']}: IMAP and POP3, {report['messages']} messages of about "
             f"{report['size']} B", "",
             f"Command: `{report['command']}`  ",
             f"Load: {report['clients']} clients for {report['seconds']} s each, imaptest's cycle "
             "(LOGIN, SELECT, FETCH 1:* (FLAGS UID RFC822.SIZE), FETCH BODY.PEEK[] and ENVELOPE, "
             "UID SEARCH UNSEEN, STORE \\Seen (half), STORE \\Deleted + EXPUNGE, APPEND, LOGOUT); "
             "one op per command. Client: imapload (bench/imapload.c), a C program, one process "
             "with non-blocking sockets on epoll, on the same machine; its own CPU per op is in "
             "the table.", "",
             "| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]

    def row(title, get, nd=0):
        lines.append(f"| {title} | " + " | ".join(fmt(get(r), nd) for r in rs) + " |")

    row("IMAP ops/s", lambda r: r.get("load", {}).get("ops_per_s"))
    row("server CPU ms per op", lambda r: (1000 * r["load"]["server_cpu_s"] / r["load"]["ops_total"])
        if r.get("load", {}).get("ops_total") else None, 2)
    row("client (imapload) CPU ms per op", lambda r: (1000 * r["load"]["client_cpu_s"] / r["load"]["ops_total"])
        if r.get("load", {}).get("ops_total") and "client_cpu_s" in r["load"] else None, 3)
    for op in ("SELECT", "FETCH 1:*", "FETCH BODY", "EXPUNGE", "APPEND"):
        row(f"{op} mean ms", lambda r, op=op: r.get("load", {}).get("latency_ms", {}).get(op), 1)
    row("errors (NO/BAD/connection)", lambda r: sum(r.get("load", {}).get("errors", {}).values())
        if r.get("load") else None)
    row("KiB PSS per idle connection", lambda r: r.get("idle", {}).get("kib_per_connection"))
    row("POP3 RETR messages/s", lambda r: r.get("pop3", {}).get("messages_per_s"))
    row("POP3 MB/s", lambda r: r.get("pop3", {}).get("mb_per_s"), 1)
    row(f"first SELECT of {report['big']} messages, s", lambda r: r.get("big", {}).get("seconds"), 2)
    z = next((r for r in rs if r["label"] == "zolder" and r.get("load")), None)
    ratios = []
    for r in rs:
        if z and r is not z and r.get("load"):
            ratios.append(f"zolder / {r['label']}: {z['load']['ops_per_s'] / r['load']['ops_per_s']:.2f}x "
                          f"ops/s")
    lines += [""] + ([", ".join(ratios) + " (aims: 10x Dovecot mbox, 3x Dovecot mdbox).", ""]
                     if ratios else [])
    for r in rs:
        lines.append(f"- {r['label']}: {r['setup']}")
    for s in report.get("skipped", []):
        lines.append(f"- not measured: {s}")
    m = report["machine"]
    lines += ["", f"Machine: {m['cpu']}, {m['cores']} logical CPUs, shared (load average "
                  f"{m['load_average']:.2f} at the start); kernel {m['kernel']}; Python {m['python']}; "
                  f"zolder at {m['commit']}. Raw numbers: `{report['json']}`", ""]
    return "\n".join(lines)


def plot(report, png):
    if not shutil.which("gnuplot"):
        return None
    rs = [r for r in report["results"] if r.get("load")]
    if not rs:
        return None
    with tempfile.TemporaryDirectory(prefix="imap-plot-") as d:
        dat = os.path.join(d, "ops.dat")
        with open(dat, "w") as f:
            for r in rs:
                f.write(f"\"{r['label']}\" {r['load']['ops_per_s']:.1f} "
                        f"{r.get('idle', {}).get('kib_per_connection', 0):.1f}\n")
        script = f"""set terminal pngcairo size 960,480 noenhanced
set output '{png}'
set multiplot layout 1,2 title 'bench/imap {report['date']}: {report['messages']} messages, {report['clients']} clients'
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set grid ytics
set yrange [0:*]
set title 'IMAP ops/s (imaptest cycle)'
plot '{dat}' using 2:xtic(1) notitle lc rgb '#1f77b4'
set title 'KiB PSS per idle connection'
plot '{dat}' using 3:xtic(1) notitle lc rgb '#d62728'
unset multiplot
"""
        os.makedirs(os.path.dirname(png), exist_ok=True)
        r = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            log(f"gnuplot failed: {r.stderr.strip()}")
            return None
    return png


def record(report):
    stamp = report["stamp"]
    json_path = os.path.join(ROOT, "bench", "results", f"imap-{stamp}.json")
    report["json"] = os.path.relpath(json_path, ROOT)
    os.makedirs(os.path.dirname(json_path), exist_ok=True)
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    png = plot(report, os.path.join(ROOT, "bench", "plots", "imap.png"))
    section = report_section(report)
    if png:
        section += f"\n![IMAP ops/s and memory per connection]({os.path.relpath(png, os.path.join(ROOT, 'bench'))})\n"
    out = os.path.join(ROOT, "bench", "RESULTS.md")
    results_md.add_section(out, section)
    return section


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--idle", type=int, default=100)
    ap.add_argument("--big", type=int, default=100000, help="messages in the first-SELECT mbox (0: skip)")
    ap.add_argument("--big-size", type=int, default=1024)
    ap.add_argument("--only", action="append", choices=["zolder", "dovecot-mbox", "dovecot-mdbox"])
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    for name, v, top in (("messages", args.messages, 1000000), ("clients", args.clients, 200),
                         ("seconds", args.seconds, 600), ("idle", args.idle, 1000),
                         ("big", args.big, 1000000), ("size", args.size, 1 << 20)):
        if not 0 <= v <= top or (name != "big" and v == 0):
            ap.error(f"--{name} out of range")
    wanted = args.only or ["zolder", "dovecot-mbox", "dovecot-mdbox"]
    if not os.access(imapload_path(), os.X_OK):
        ap.error(f"{imapload_path()} is missing: run make all")
    now = datetime.datetime.now(datetime.timezone.utc)
    report = {"date": now.strftime("%Y-%m-%d %H:%M UTC"), "stamp": now.strftime("%Y%m%d-%H%M%S"),
              "command": "python3 bench/imap.py " + " ".join(sys.argv[1:]),
              "messages": args.messages, "size": args.size, "clients": args.clients,
              "seconds": args.seconds, "big": args.big, "machine": machine_notes(),
              "results": [], "skipped": []}
    with tempfile.TemporaryDirectory(prefix="bench-imap-") as tmp:
        os.chmod(tmp, 0o755)  # Dovecot's auth and mail processes run as other users
        mbox = os.path.join(tmp, "inbox.mbox")
        log(f"writing a {args.messages}-message mbox ...")
        write_mbox(mbox, args.messages, args.size)
        big = None
        if args.big:
            big = os.path.join(tmp, "big.mbox")
            log(f"writing a {args.big}-message mbox for the first SELECT ...")
            write_mbox(big, args.big, args.big_size, seed=2)
        servers = []
        for w in wanted:
            if w == "zolder":
                why = Zolder.unsupported()
                servers.append((w, None if why else (lambda d: Zolder(d)), why))
            else:
                fmt_ = w.split("-")[1]
                why = Dovecot.unsupported()
                servers.append((w, None if why else (lambda d, f=fmt_: Dovecot(d, f)), why))
        for name, make, why in servers:
            if why:
                log(f"== {name}: not measured: {why}")
                report["skipped"].append(f"{name}: {why}")
                continue
            res = {}
            d = tempfile.mkdtemp(prefix=f"{name}-", dir=tmp)
            os.chmod(d, 0o755)
            s = make(d)
            res["label"] = s.label
            log(f"== {s.label}")
            try:
                s.start(mbox)
                res["setup"] = s.describe()
                res["idle"] = asyncio.run(idle_memory(s, args.idle))
                log(f"   idle: {res['idle']['kib_per_connection']:.0f} KiB per connection")
                log(f"   load: {args.clients} clients for {args.seconds} s ...")
                res["load"] = run_load(s, args.clients, args.seconds, args.size)
                load = res["load"]
                log(f"   {load['ops_per_s']:.0f} ops/s, server CPU "
                    f"{1000 * load['server_cpu_s'] / max(load['ops_total'], 1):.2f} ms/op, client CPU "
                    f"{1000 * load['client_cpu_s'] / max(load['ops_total'], 1):.3f} ms/op, "
                    f"errors {load['errors']}"
                    + "".join(f" ({k}: {load[k]})" for k in ("last_error", "last_refusal")
                              if load.get(k)))
                res["pop3"] = pop3_retrieve(s)
                log(f"   pop3: {res['pop3']['messages_per_s']:.0f} messages/s")
            finally:
                s.stop()
            if big and name != "dovecot-mdbox":
                d = tempfile.mkdtemp(prefix=f"{name}-big-", dir=tmp)
                os.chmod(d, 0o755)
                s = make(d)
                try:
                    s.start(big)
                    res["big"] = asyncio.run(first_select(s))
                    log(f"   first SELECT of {res['big']['exists']} messages: {res['big']['seconds']:.2f} s")
                finally:
                    s.stop()
            report["results"].append(res)
    if args.no_record:
        print(json.dumps(report, indent=1))
        return
    print(record(report))


if __name__ == "__main__":
    main()
