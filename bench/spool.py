#!/usr/bin/env python3
"""bench/spool.py: `make bench-spool`, the spool benchmark of issue 2 section 9.

N messages of SIZE bytes over S concurrent sessions into one local mbox, through zolderd and
through a private Postfix instance on the same machine, under the same load and with the same
durability (each side fsyncs its queue file before `250` and the mailbox before it forgets
the message). Measured per server:

- delivered messages/s and MB/s, from the first connect to the last mailbox write (the
  mailbox's mtime once it holds all N messages, counted by their From_ lines);
- accepted/s: when the client saw the last `250` (both servers queue before delivering);
- peak memory: the largest sum over the server's processes of VmHWM (and of VmRSS and PSS),
  sampled every half second from /proc;
- CPU time: utime+stime (+ reaped children) of the server's process tree, from /proc;
- fsync-family calls per message, from `strace -c -f` on a separate small run.

The load is Debian postfix's smtp-source when installed (`-s S -m N -l SIZE`, a new SMTP
connection per message as it does by default), else a Python generator of the same shape
(threads + smtplib). Everything is bounded (--deadline per run) and both servers are stopped
by PID on success, failure and Ctrl-C. Standard library only. See bench/README.md.
"""

import argparse
import datetime
import json
import os
import pwd
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "helper"))

import zolder_test  # noqa: E402
from zolderd_instance import Zolderd  # noqa: E402
import results_md  # noqa: E402  (bench/, beside this script)

ZOLDER_ADDR = ("127.0.1.50", 2525)
POSTFIX_ADDR = ("127.0.1.51", 2526)
SENDER = "loadgen@client.test"
DOMAIN = "bench.test"
USER = "bench"
RCPT = f"{USER}@{DOMAIN}"
SMTP_SOURCE = "/usr/sbin/smtp-source"
CLK_TCK = os.sysconf("SC_CLK_TCK")
FSYNC_CALLS = ("fsync", "fdatasync", "sync_file_range", "syncfs", "sync", "msync")


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------- /proc helpers

def proc_stat(pid):
    """(ppid, utime+stime+cutime+cstime in ticks, starttime) of a pid, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    # rest[0] is state (field 3); utime is field 14 -> rest[11]
    ppid = int(rest[1])
    cpu = int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])
    return ppid, cpu, int(rest[19])


def proc_comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def proc_mem(pid):
    """(VmHWM, VmRSS, Pss) in KiB; zeros for a process that is gone or a zombie."""
    hwm = rss = pss = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
                elif line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
    except OSError:
        return 0, 0, 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                    break
    except OSError:
        pass
    return hwm, rss, pss


def process_tree(root):
    """root and all its live descendants, from a scan of /proc."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st:
            children.setdefault(st[0], []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if proc_stat(pid) is None:
            continue
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def tree_cpu_seconds(root):
    """CPU seconds of a process tree: the live processes' utime+stime plus what they reaped."""
    total = 0
    for pid in process_tree(root):
        st = proc_stat(pid)
        if st:
            total += st[1]
    return total / CLK_TCK


def cpu_times():
    """(busy, total) jiffies of the whole machine, from the cpu line of /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
    total = sum(v[:8])  # guest time is already in user
    return total - idle, total


def machine_busy(interval=1.0):
    """Fraction of all cores busy over `interval` seconds."""
    b0, t0 = cpu_times()
    time.sleep(interval)
    b1, t1 = cpu_times()
    return (b1 - b0) / max(1, t1 - t0)


def wait_idle(limit_s, threshold=0.25):
    """Waits (at most limit_s) for a second in which the machine is less than `threshold` busy:
    the machine is shared, and other work on its 2 cores skews both servers. Returns the last
    busy fraction seen."""
    deadline = time.monotonic() + limit_s
    busy = machine_busy()
    said = False
    while busy >= threshold and time.monotonic() < deadline:
        if not said:
            log(f"   machine {busy:.0%} busy (other work); waiting up to {limit_s:.0f}s for it to calm down")
            said = True
        busy = machine_busy()
    return busy


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


# ---------------------------------------------------------------- mailbox counting

class MboxCounter:
    """Counts mbox entries (From_ lines) incrementally; both servers quote body "From "."""

    def __init__(self, path):
        self.path = path
        self.fd = None
        self.offset = 0
        self.count = 0
        self.carry = b"\n"

    def poll(self):
        if self.fd is None:
            try:
                self.fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                return self.count
        size = os.fstat(self.fd).st_size
        if size < self.offset:  # truncated back (a failed write): count again
            self.offset, self.count, self.carry = 0, 0, b"\n"
        while self.offset < size:
            chunk = os.pread(self.fd, min(size - self.offset, 1 << 20), self.offset)
            if not chunk:
                break
            data = self.carry + chunk
            self.count += data.count(b"\nFrom ")
            self.carry = data[-5:]
            self.offset += len(chunk)
        return self.count

    def mtime_ns(self):
        return os.fstat(self.fd).st_mtime_ns if self.fd is not None else None

    def size(self):
        return os.fstat(self.fd).st_size if self.fd is not None else 0

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# ---------------------------------------------------------------- load generators

class SmtpSourceLoad:
    """smtp-source -c: a counter on stdout, bumped after each completed DATA."""

    name = "smtp-source"

    def __init__(self, host, port, messages, sessions, size):
        self.argv = [SMTP_SOURCE, "-c", "-s", str(sessions), "-m", str(messages), "-l", str(size),
                     "-f", SENDER, "-t", RCPT, f"{host}:{port}"]
        self.accepted = 0
        self.proc = None
        self.errors = ""
        self.cpu = None
        self.done_at = None

    def command(self):
        return " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(self.argv))

    def start(self):
        self._ru0 = os.times()
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        buf = b""
        while True:
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            parts = buf.replace(b"\n", b"\r").split(b"\r")
            buf = parts.pop()
            for p in parts:
                if p.strip().isdigit():
                    self.accepted = int(p)
        self.proc.wait()
        self.done_at = time.time_ns()
        t = os.times()
        self.cpu = (t.children_user - self._ru0.children_user) + (t.children_system - self._ru0.children_system)

    def _read_err(self):
        data = self.proc.stderr.read()
        self.errors = data.decode("utf-8", "replace")

    def finished(self):
        return self.done_at is not None

    def failed(self):
        return self.finished() and self.proc.returncode != 0

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()


class PythonLoad:
    """The fallback: S threads, each sending one message per SMTP connection, as smtp-source."""

    name = "python-smtplib"

    def __init__(self, host, port, messages, sessions, size):
        self.host, self.port = host, port
        self.messages, self.sessions, self.size = messages, sessions, size
        self.accepted = 0
        self.next = 0
        self.lock = threading.Lock()
        self.errors = ""
        self.error_count = 0
        self.threads = []
        self.done_at = None
        self.cpu = None
        self.stopping = False
        lines, n = [], 0
        while n < size:  # smtp-source's payload shape: numbered 78-character lines
            line = (str(len(lines) % 10) + "X" * 77)[: max(0, min(78, size - n - 2))]
            lines.append(line)
            n += len(line) + 2
        self.body = "\r\n".join(lines)

    def command(self):
        return (f"python3 smtplib fallback: {self.sessions} threads, {self.messages} messages of "
                f"{self.size} bytes payload, one connection per message")

    def start(self):
        self.threads = [threading.Thread(target=self._worker, args=(i,), daemon=True)
                        for i in range(self.sessions)]
        for t in self.threads:
            t.start()
        threading.Thread(target=self._join, daemon=True).start()

    def _join(self):
        for t in self.threads:
            t.join()
        self.done_at = time.time_ns()

    def _worker(self, idx):
        while not self.stopping:
            with self.lock:
                if self.next >= self.messages:
                    return
                self.next += 1
                n = self.next
            msg = (f"From: <{SENDER}>\r\nTo: <{RCPT}>\r\nDate: "
                   f"{datetime.datetime.now(datetime.timezone.utc).strftime('%a, %d %b %Y %H:%M:%S +0000')}\r\n"
                   f"Message-Id: <{n}.{idx}.{os.getpid()}@client.test>\r\n\r\n{self.body}\r\n")
            try:
                with smtplib.SMTP(self.host, self.port, timeout=60) as s:
                    s.helo("client.test")
                    s.sendmail(SENDER, [RCPT], msg)
                with self.lock:
                    self.accepted += 1
            except (OSError, smtplib.SMTPException) as e:
                with self.lock:
                    self.error_count += 1
                    if self.error_count <= 5:
                        self.errors += f"message {n}: {e!r}\n"

    def finished(self):
        return self.done_at is not None

    def failed(self):
        return self.finished() and self.error_count > 0

    def stop(self):
        self.stopping = True


def make_load(kind, host, port, messages, sessions, size):
    if kind == "python" or (kind == "auto" and not os.access(SMTP_SOURCE, os.X_OK)):
        return PythonLoad(host, port, messages, sessions, size)
    return SmtpSourceLoad(host, port, messages, sessions, size)


# ---------------------------------------------------------------- servers

class ZolderServer:
    name = "zolder"
    label = "zolder"

    def __init__(self, keep):
        self.keep = keep
        self.z = None
        self.addr = ZOLDER_ADDR

    def setup(self):
        return (f"zolderd {self.addr[0]}:{self.addr[1]} (tests/helper Zolderd in a temp folder), "
                "one process, mailbox_format = mbox, log_level info, "
                "smtpd_client_connection_limit = 100")

    def durability(self):
        return ("group commit (docs/architecture.md): 250 after one syncfs covering every "
                "queue/tmp file of the round, their renames into queue/msg and one fsync of "
                "queue/msg/; mbox appends made durable by the next round's syncfs (or their own "
                "fsync) before the finished queue files are removed and queue/msg/ fsync'd")

    def start(self):
        if not zolder_test.address_free(*self.addr):
            raise RuntimeError(f"{self.addr[0]}:{self.addr[1]} is in use by something we did not start")
        self.z = Zolderd(address=self.addr[0], port=self.addr[1], users={USER: "*"}, keep=self.keep,
                         name="zolderd-bench",
                         conf={"local_domains": DOMAIN, "mailbox_format": "mbox",
                               "relay_from": "127.0.0.0/8",
                               "smtpd_client_connection_limit": "100",
                               "smtpd_connection_limit": "200"})
        self.z.start()
        self.dir = self.z.inst.dir

    def root_pid(self):
        return self.z.inst.proc.pid

    def mailbox(self):
        return self.z.mbox_path(USER)

    def queue_left(self):
        return len(self.z.queue_ids())

    def log_tail(self, n=30):
        return "\n".join(self.z.log().splitlines()[-n:])

    def log_problems(self):
        lines = self.z.log().splitlines()
        bad = [ln for ln in lines if ": warning:" in ln or ": error:" in ln or ": fatal:" in ln]
        return len(bad), bad[:10]

    def stop(self):
        if self.z is None:
            return
        try:
            self.z.stop()
        finally:
            if not self.keep:
                self.z.inst.cleanup()
            self.z = None


class PostfixServer:
    """A private Postfix instance in a temp folder, started and stopped with `postfix -c DIR`."""

    name = "postfix"
    label = "Postfix"

    virtual_concurrency = 1

    def __init__(self, keep):
        self.keep = keep
        self.addr = POSTFIX_ADDR
        self.dir = None
        self.master = None
        self.master_start = None
        self.seen = {}  # pid -> starttime, every process of this instance we saw

    def setup(self):
        return (f"private instance ({self.addr[0]}:{self.addr[1]}, postfix -c TMPDIR start/stop), "
                f"default main.cf but for: virtual(8) delivery to one mbox in the temp folder, "
                f"virtual_destination_concurrency_limit = {self.virtual_concurrency}, no chroot, "
                f"maillog_file in the temp folder")

    def durability(self):
        return ("250 after cleanup(8) fsyncs the queue file; virtual(8) fsyncs the mbox before "
                "qmgr(8) removes the queue file")

    @staticmethod
    def available():
        return os.geteuid() == 0 and shutil.which("postfix") and os.path.isdir("/usr/lib/postfix/sbin")

    def conf(self, *parts):
        return os.path.join(self.dir, "conf", *parts)

    def postfix(self, *args, check=True):
        r = subprocess.run(["postfix", "-c", self.conf(), *args], capture_output=True, text=True,
                           timeout=60)
        if check and r.returncode != 0:
            raise RuntimeError(f"postfix {' '.join(args)} failed ({r.returncode}): "
                               f"{r.stdout}{r.stderr}\n--- maillog ---\n{self.log_tail()}")
        return r

    def master_cf(self):
        """/etc/postfix/master.cf, adapted: one smtpd on our address, no chroot (the queue is in
        a temp folder without the files a chroot needs), no other inet listener, no pipe(8)
        services of other packages."""
        entries, cur = [], None
        with open("/etc/postfix/master.cf") as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                if line[0].isspace():
                    if cur is not None:
                        cur.append(line)
                    continue
                cur = [line]
                entries.append(cur)
        out = [f"{self.addr[0]}:{self.addr[1]} inet n - n - - smtpd\n"]
        for e in entries:
            f = e[0].split()
            if len(f) < 8 or f[1] not in ("unix", "unix-dgram", "fifo") or f[7] == "pipe":
                continue
            f[4] = "n"
            out.append(" ".join(f) + "\n" + "".join(e[1:]))
        return "".join(out)

    def main_cf(self, uid, gid):
        d = self.dir
        return f"""# bench/spool.py: a private Postfix instance (never the system one)
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
myhostname = postfix.{DOMAIN}
mydomain = {DOMAIN}
myorigin = $myhostname
# Postfix refuses inet_interfaces addresses that are not on an interface (127.0.1.51 is
# routed to lo but not assigned to it); the only inet listener is bound to
# {self.addr[0]}:{self.addr[1]} in master.cf, so this does not open 127.0.0.1 anywhere.
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# {DOMAIN} is a virtual mailbox domain; Postfix forbids listing it in mydestination too.
mydestination =
relay_domains =
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
virtual_mailbox_domains = {DOMAIN}
virtual_mailbox_base = {d}/mail
virtual_mailbox_maps = inline:{{ {RCPT}={USER} }}
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
# One mailbox: deliveries to it are serialized (as Postfix's own local(8) default of 2 per
# recipient intends); 20 parallel virtual(8) agents on one mbox would only sleep on its lock
# (deliver_lock_delay = 1s) and measure the lock, not Postfix.
virtual_destination_concurrency_limit = {self.virtual_concurrency}
"""

    def start(self):
        if not zolder_test.address_free(*self.addr):
            raise RuntimeError(f"{self.addr[0]}:{self.addr[1]} is in use by something we did not start")
        try:
            pw = pwd.getpwnam("zolder")
        except KeyError:
            pw = pwd.getpwnam("nobody")
        self.dir = tempfile.mkdtemp(prefix="postfix-bench-")
        os.chmod(self.dir, 0o755)
        os.makedirs(self.conf(), mode=0o755)
        os.makedirs(os.path.join(self.dir, "queue"), mode=0o755)
        os.makedirs(os.path.join(self.dir, "mail"), mode=0o755)
        os.chown(os.path.join(self.dir, "mail"), pw.pw_uid, pw.pw_gid)
        with open(self.conf("main.cf"), "w") as f:
            f.write(self.main_cf(pw.pw_uid, pw.pw_gid))
        with open(self.conf("master.cf"), "w") as f:
            f.write(self.master_cf())
        self.postfix("check")  # also creates the queue's subfolders with Postfix's owners
        self.postfix("start")
        pidfile = os.path.join(self.dir, "queue", "pid", "master.pid")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with open(pidfile) as f:
                    self.master = int(f.read().split()[0])
                if pid_alive(self.master):
                    break
            except (FileNotFoundError, ValueError, IndexError):
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError(f"postfix master did not write {pidfile}\n{self.log_tail()}")
        self.seen[self.master] = proc_stat(self.master)[2]
        if not zolder_test.wait_for_port(*self.addr, timeout=10):
            raise RuntimeError(f"postfix does not listen on {self.addr}\n{self.log_tail()}")
        self.note_pids()

    def note_pids(self):
        if self.master and pid_alive(self.master):
            for pid in process_tree(self.master):
                st = proc_stat(pid)
                if st:
                    self.seen[pid] = st[2]

    def root_pid(self):
        return self.master

    def mailbox(self):
        return os.path.join(self.dir, "mail", USER)

    def queue_left(self):
        n = 0
        for sub in ("incoming", "active", "deferred", "hold", "maildrop"):
            for _, _, files in os.walk(os.path.join(self.dir, "queue", sub)):
                n += len(files)
        return n

    def log_tail(self, n=30):
        try:
            with open(os.path.join(self.dir, "maillog"), errors="replace") as f:
                return "\n".join(f.read().splitlines()[-n:])
        except (OSError, TypeError):
            return ""

    def log_problems(self):
        try:
            with open(os.path.join(self.dir, "maillog"), errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return 0, []
        bad = [ln for ln in lines if "warning:" in ln or "error:" in ln or "fatal:" in ln
               or "panic:" in ln or "status=deferred" in ln or "status=bounced" in ln]
        return len(bad), bad[:10]

    def _ours(self, pid):
        st = proc_stat(pid)
        return st is not None and self.seen.get(pid) == st[2]

    def stop(self):
        if self.dir is None:
            return
        try:
            if self.master is None:  # start() failed after `postfix start`: read its pid file
                try:
                    with open(os.path.join(self.dir, "queue", "pid", "master.pid")) as f:
                        self.master = int(f.read().split()[0])
                    st = proc_stat(self.master)
                    if st:
                        self.seen[self.master] = st[2]
                except (OSError, ValueError, IndexError):
                    pass
            if self.master and self._ours(self.master):
                self.note_pids()
                self.postfix("stop", check=False)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and self._ours(self.master):
                    time.sleep(0.05)
                if self._ours(self.master):
                    self.postfix("abort", check=False)
                    time.sleep(1)
                if self._ours(self.master):
                    os.kill(self.master, signal.SIGKILL)
            # Children of this instance (and only those: same PID and start time as we saw
            # them under our master) that outlived it.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(self._ours(p) for p in self.seen):
                time.sleep(0.05)
            for pid in self.seen:
                if self._ours(pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        finally:
            if not self.keep:
                shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
            self.master = None


# ---------------------------------------------------------------- one run

def sample_memory(server, peaks, per_name):
    pids = process_tree(server.root_pid())
    if hasattr(server, "seen"):
        for pid in pids:
            st = proc_stat(pid)
            if st:
                server.seen[pid] = st[2]
    hwm = rss = pss = 0
    for pid in pids:
        h, r, p = proc_mem(pid)
        hwm += h
        rss += r
        pss += p
        comm = proc_comm(pid)
        per_name[comm] = max(per_name.get(comm, 0), h)
    peaks["hwm_kib"] = max(peaks.get("hwm_kib", 0), hwm)
    peaks["rss_kib"] = max(peaks.get("rss_kib", 0), rss)
    peaks["pss_kib"] = max(peaks.get("pss_kib", 0), pss)
    peaks["procs"] = max(peaks.get("procs", 0), len(pids))
    return hwm, len(pids)


def run_load(server, args, messages, deadline_s, quiet=False, strace=False):
    """Runs one load against a started server; returns the measurements."""
    mbox = MboxCounter(server.mailbox())
    res = {"server": server.name, "messages": messages, "sessions": args.sessions,
           "size": args.size, "status": "ok", "loadavg_before": os.getloadavg()[0],
        "busy_before": wait_idle(args.wait_idle) if args.wait_idle else machine_busy()}
    load = make_load(args.generator, *server.addr, messages, args.sessions, args.size)
    res["generator"] = load.name
    res["generator_command"] = load.command()
    tracer = None
    if strace:
        tracer = start_strace(server, res)
    cpu0 = tree_cpu_seconds(server.root_pid())
    mb0 = cpu_times()
    peaks, per_name, samples = {}, {}, []
    t0 = time.time_ns()
    m0 = time.monotonic()
    load.start()
    next_print = m0 + 1.0
    next_mem = next_sample = m0
    last_progress, last_count = m0, 0
    delivered = 0
    try:
        while True:
            now = time.monotonic()
            delivered = mbox.poll()
            if delivered != last_count:
                last_progress, last_count = now, delivered
            if now >= next_sample:
                samples.append((round(now - m0, 3), load.accepted, delivered))
                next_sample = now + 0.1
            if now >= next_mem:
                sample_memory(server, peaks, per_name)
                next_mem = now + 0.5
            if not quiet and now >= next_print:
                rate = delivered / (now - m0)
                log(f"  {server.label:8s} {now - m0:6.1f}s  accepted {load.accepted:6d}  "
                    f"delivered {delivered:6d}/{messages}  {rate:7.1f} msg/s  "
                    f"mem {peaks.get('hwm_kib', 0) / 1024:6.1f} MiB ({peaks.get('procs', 0)} procs)")
                next_print = now + 1.0
            if delivered >= messages:
                break
            if now - m0 > deadline_s:
                res["status"] = f"deadline: {delivered}/{messages} delivered after {deadline_s}s"
                break
            if load.failed() and now - last_progress > 10:
                res["status"] = f"generator failed, {delivered}/{messages} delivered"
                break
            time.sleep(0.02)
        end_ns = mbox.mtime_ns() if delivered >= messages else time.time_ns()
        cpu1 = tree_cpu_seconds(server.root_pid())
        mb1 = cpu_times()
        sample_memory(server, peaks, per_name)
        samples.append((round(time.monotonic() - m0, 3), load.accepted, delivered))
        # Let the generator finish (it normally has: 250 comes before delivery).
        wait_until = time.monotonic() + 30
        while not load.finished() and time.monotonic() < wait_until:
            time.sleep(0.05)
        time.sleep(0.5)
        res["delivered_final"] = mbox.poll()  # more than N would be duplicates
    finally:
        load.stop()
        mbox_bytes = mbox.size()
        mbox.close()
        if tracer:
            stop_strace(tracer, res, messages)
    elapsed = (end_ns - t0) / 1e9
    res.update({
        "delivered": delivered,
        "elapsed_s": round(elapsed, 3),
        "msgs_per_s": round(delivered / elapsed, 1) if elapsed > 0 else None,
        "mb_per_s": round(delivered * args.size / elapsed / 1e6, 2) if elapsed > 0 else None,
        "mbox_bytes": mbox_bytes,
        "accepted": load.accepted,
        "accept_elapsed_s": round((load.done_at - t0) / 1e9, 3) if load.done_at else None,
        "generator_cpu_s": round(load.cpu, 2) if load.cpu is not None else None,
        "generator_rc": getattr(load.proc, "returncode", None) if hasattr(load, "proc") else None,
        "generator_errors": load.errors.strip()[-2000:],
        "cpu_s": round(cpu1 - cpu0, 2),
        "peak_hwm_kib": peaks.get("hwm_kib"),
        "peak_rss_kib": peaks.get("rss_kib"),
        "peak_pss_kib": peaks.get("pss_kib"),
        "max_procs": peaks.get("procs"),
        "hwm_kib_by_name": per_name,
        "samples": samples,
        "queue_left": server.queue_left(),
    })
    if res["accept_elapsed_s"]:
        res["accepted_per_s"] = round(load.accepted / res["accept_elapsed_s"], 1)
    # The whole machine's CPU during the run, in CPU-seconds; what is neither the server nor
    # the load generator is other work on the shared machine (and this harness's polling).
    machine_s = (mb1[0] - mb0[0]) / CLK_TCK  # /proc/stat counts in USER_HZ
    res["machine_cpu_s"] = round(machine_s, 2)
    other = machine_s - res["cpu_s"] - (res["generator_cpu_s"] or 0)
    res["other_cpu_s"] = round(max(0.0, other), 2)
    res["cpu_ms_per_msg"] = round(res["cpu_s"] * 1000 / delivered, 3) if delivered else None
    nbad, bad = server.log_problems()
    res["log_problems"] = nbad
    res["log_problem_examples"] = bad
    return res


def start_strace(server, res):
    pids = process_tree(server.root_pid())
    out = os.path.join(tempfile.gettempdir(), f"spool-strace-{server.name}-{os.getpid()}.txt")
    argv = ["strace", "-f", "-c", "-o", out, "-e", "trace=" + ",".join(FSYNC_CALLS)]
    for p in pids:
        argv += ["-p", str(p)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    # strace reports each attach on stderr; wait for all of them (bounded).
    attached, deadline, err = 0, time.monotonic() + 10, b""
    os.set_blocking(proc.stderr.fileno(), False)
    while attached < len(pids) and time.monotonic() < deadline:
        try:
            chunk = proc.stderr.read()
        except BlockingIOError:
            chunk = None
        if chunk:
            err += chunk
            attached = err.count(b"attached")
        if proc.poll() is not None:
            raise RuntimeError(f"strace exited: {err.decode(errors='replace')}")
        time.sleep(0.05)
    res["strace_pids"] = len(pids)
    return proc, out


def stop_strace(tracer, res, messages):
    proc, out = tracer
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    calls = {}
    try:
        with open(out) as f:
            for line in f:
                parts = line.split()
                if parts and parts[-1] in FSYNC_CALLS:
                    # % time, seconds, usecs/call, calls, [errors,] syscall
                    calls[parts[-1]] = int(parts[3])
        os.unlink(out)
    except (OSError, ValueError, IndexError):
        pass
    res["fsync_calls"] = calls
    total = sum(calls.values())
    res["fsync_per_msg"] = round(total / messages, 2) if messages else None


# ---------------------------------------------------------------- machine notes

def machine_notes():
    notes = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    notes["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    notes["cores"] = os.cpu_count()
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
        notes["ram"] = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError):
        pass
    notes["kernel"] = os.uname().release
    r = subprocess.run(["findmnt", "-n", "-o", "SOURCE,FSTYPE,OPTIONS", "-T", tempfile.gettempdir()],
                       capture_output=True, text=True)
    notes["tmp_fs"] = " ".join(r.stdout.split())
    dev = r.stdout.split()[0] if r.stdout.split() else ""
    rot = f"/sys/block/{os.path.basename(dev)}/queue/rotational"
    if os.path.exists(rot):
        with open(rot) as f:
            notes["tmp_disk_rotational"] = f.read().strip()
    r = subprocess.run(["postconf", "-d", "-h", "mail_version"], capture_output=True, text=True)
    notes["postfix_version"] = r.stdout.strip() or None
    version = "?"
    try:
        with open(os.path.join(ROOT, "Makefile")) as f:
            for line in f:
                if line.startswith("VERSION"):
                    version = line.split("=", 1)[1].strip()
    except OSError:
        pass
    r = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no", "reference"],
                           capture_output=True, text=True).stdout.strip()
    notes["zolder_version"] = f"{version} (git {r.stdout.strip()}{', reference/ modified' if dirty else ''})"
    notes["smtp_source"] = os.access(SMTP_SOURCE, os.X_OK)
    notes["fsync_probe"] = fsync_probe()
    return notes


def fsync_probe(n=200):
    """The disk's rate of the durable-queue step: write 4 KiB, fsync, rename, fsync the folder."""
    d = tempfile.mkdtemp(prefix="spool-fsync-")
    try:
        dfd = os.open(d, os.O_RDONLY)
        data = b"x" * 4096
        t = time.monotonic()
        for i in range(n):
            tmp = os.path.join(d, f"t{i}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
            os.rename(tmp, os.path.join(d, f"m{i}"))
            os.fsync(dfd)
        dt = time.monotonic() - t
        os.close(dfd)
        return round(n / dt, 1)
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- reporting

def fmt(v, unit="", nd=1):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.{nd}f}{unit}"
    return f"{v:,}{unit}"


def ratio(a, b):
    if a is None or b in (None, 0):
        return "n/a"
    return f"{a / b:.2f}x"


ROWS = [
    ("delivered", lambda r: f"{r['delivered']}/{r['messages']}", None),
    ("status", lambda r: r["status"], None),
    ("elapsed, first connect to last mbox write (s)", lambda r: fmt(r["elapsed_s"], nd=2), None),
    ("delivered messages/s", lambda r: fmt(r["msgs_per_s"]), "msgs_per_s"),
    ("delivered MB/s (messages x size)", lambda r: fmt(r["mb_per_s"], nd=2), "mb_per_s"),
    ("accepted messages/s (client saw 250)", lambda r: fmt(r.get("accepted_per_s")), "accepted_per_s"),
    ("peak memory, sum of VmHWM (MiB)", lambda r: fmt(r["peak_hwm_kib"] / 1024 if r["peak_hwm_kib"] else None),
     "peak_hwm_kib"),
    ("peak memory, sum of PSS (MiB)", lambda r: fmt(r["peak_pss_kib"] / 1024 if r["peak_pss_kib"] else None),
     "peak_pss_kib"),
    ("server processes (max)", lambda r: fmt(r["max_procs"]), None),
    ("server CPU, user+sys (s)", lambda r: fmt(r["cpu_s"], nd=2), "cpu_s"),
    ("server CPU per message (ms)", lambda r: fmt(r["cpu_ms_per_msg"], nd=3), "cpu_ms_per_msg"),
    ("fsync-family calls per message (strace run)", lambda r: fmt(r.get("fsync_per_msg"), nd=2), "fsync_per_msg"),
    ("mailbox size (bytes)", lambda r: fmt(r["mbox_bytes"]), None),
    ("queue files left", lambda r: fmt(r["queue_left"]), None),
    ("log warnings/errors", lambda r: fmt(r["log_problems"]), None),
    ("load generator CPU (s)", lambda r: fmt(r.get("generator_cpu_s"), nd=2), None),
    ("machine CPU during the run, all processes (s)", lambda r: fmt(r.get("machine_cpu_s"), nd=2), None),
    ("  of which neither server nor generator (s)", lambda r: fmt(r.get("other_cpu_s"), nd=2), None),
    ("machine busy just before the run", lambda r: f"{r['busy_before']:.0%}", None),
]


def table(results, markdown):
    names = [r["label"] for r in results]
    header = ["", *names] + (["zolder/Postfix"] if len(results) == 2 else [])
    rows = []
    for title, f, key in ROWS:
        row = [title] + [f(r) for r in results]
        if len(results) == 2:
            row.append(ratio(results[0].get(key), results[1].get(key)) if key else "")
        rows.append(row)
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out)
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)  # noqa: E731
                               for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(header), "-" * (sum(widths) + 2 * (len(widths) - 1))] + [line(r) for r in rows])


def write_results(report, results_md_path, json_path):
    notes = report["machine"]
    lines = [
        f"## {report['date']}: spool, {report['messages']} x {report['size']} B over "
        f"{report['sessions']} sessions",
        "",
        f"Command: `{report['command']}`  ",
        f"Load: `{report['load_command']}` (a new SMTP connection per message)  ",
        f"Machine: {notes.get('cpu')}, {notes.get('cores')} cores (shared), {notes.get('ram')} RAM, "
        f"kernel {notes.get('kernel')}; /tmp on {notes.get('tmp_fs')} "
        f"(rotational={notes.get('tmp_disk_rotational', '?')}); write+fsync+rename+fsync(dir) "
        f"probe: {notes.get('fsync_probe')}/s  ",
        f"Versions: zolder {notes.get('zolder_version')}, Postfix {notes.get('postfix_version')}  ",
        f"Raw numbers: `{os.path.relpath(json_path, ROOT)}`",
        "",
        table(report["results"], markdown=True),
        "",
        "Setup:",
        "",
    ]
    for r in report["results"]:
        lines.append(f"- {r['label']}: {r['setup']}")
    lines += ["", "Durability:", ""]
    for r in report["results"]:
        lines.append(f"- {r['label']}: {r['durability']}")
    for r in report["results"]:
        if r.get("fsync_calls"):
            lines.append(f"- {r['label']} fsync-family calls in the strace run of "
                         f"{r.get('strace_messages')} messages: "
                         + ", ".join(f"{k} {v}" for k, v in sorted(r["fsync_calls"].items())))
    for r in report["results"]:
        if r.get("log_problem_examples"):
            lines.append(f"- {r['label']} log: {r['log_problems']} warnings/errors, e.g. "
                         f"`{r['log_problem_examples'][0]}`")
    if report.get("notes"):
        lines += ["", "Notes:", ""] + [f"- {n}" for n in report["notes"]]
    lines.append("")
    section = "\n".join(lines)
    results_md.add_section(results_md_path, section)


def plot(report, png):
    if not shutil.which("gnuplot"):
        return None
    d = tempfile.mkdtemp(prefix="spool-plot-")
    try:
        series = []
        for r in report["results"]:
            dat = os.path.join(d, f"{r['server']}.dat")
            with open(dat, "w") as f:
                for t, acc, dlv in r["samples"]:
                    f.write(f"{t} {acc} {dlv}\n")
            series.append((r["label"], dat))
        plots = []
        colors = {"zolder": "#1f77b4", "Postfix": "#d62728"}
        for label, dat in series:
            c = colors.get(label, "black")
            plots.append(f"'{dat}' using 1:3 with lines lw 2 lc rgb '{c}' title '{label} delivered (mbox)'")
            plots.append(f"'{dat}' using 1:2 with lines lw 1 dt 2 lc rgb '{c}' title '{label} accepted (250 seen)'")
        script = f"""set terminal pngcairo size 960,540 noenhanced
set output '{png}'
set title 'bench-spool {report['date']}: {report['messages']} x {report['size']} B, {report['sessions']} sessions'
set xlabel 'seconds since first connect'
set ylabel 'messages'
set key left top
set grid
plot {', '.join(plots)}
"""
        os.makedirs(os.path.dirname(png), exist_ok=True)
        r = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            log(f"gnuplot failed: {r.stderr.strip()}")
            return None
        return png
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- main

def bench_server(cls, args, report):
    results = {}
    server = cls(args.keep)
    log(f"\n== {server.label}: {args.messages} messages of {args.size} B over {args.sessions} sessions")
    try:
        server.start()
        log(f"   started in {server.dir}; listening on {server.addr[0]}:{server.addr[1]}")
        time.sleep(1)  # let it settle (Postfix starts qmgr/pickup lazily)
        res = run_load(server, args, args.messages, args.deadline)
        if res["status"] != "ok":
            log(f"   {res['status']}\n--- {server.label} log (tail) ---\n{server.log_tail()}")
        if res["generator_errors"]:
            log(f"   generator said: {res['generator_errors'][-500:]}")
        results = res
    except BaseException:
        if server.dir:
            log(f"--- {server.label} log (tail) ---\n{server.log_tail()}")
        raise
    finally:
        server.stop()
    if args.strace_messages and shutil.which("strace"):
        server = cls(args.keep)
        log(f"   fsync count: a separate run of {args.strace_messages} messages under strace -c -f")
        try:
            server.start()
            time.sleep(1)
            sres = run_load(server, args, args.strace_messages, args.deadline, quiet=True, strace=True)
            results["fsync_calls"] = sres.get("fsync_calls")
            results["fsync_per_msg"] = sres.get("fsync_per_msg")
            results["strace_messages"] = args.strace_messages
            results["strace_status"] = sres["status"]
            log(f"   fsync-family calls: {sres.get('fsync_calls')} ({sres.get('fsync_per_msg')} per message)")
        finally:
            server.stop()
    results["label"] = cls.label
    results["durability"] = server.durability()
    results["setup"] = server.setup()
    report["results"].append(results)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--size", type=int, default=4096, help="payload bytes per message (smtp-source -l)")
    ap.add_argument("--only", choices=("zolder", "postfix"))
    ap.add_argument("--keep", action="store_true", help="keep the servers' temp folders")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 500 messages, nothing written to bench/ (unless --record)")
    ap.add_argument("--record", action="store_true", help="write RESULTS.md/JSON/plot even with --quick")
    ap.add_argument("--no-record", action="store_true", help="write nothing to bench/")
    ap.add_argument("--deadline", type=float, default=300, help="seconds per run (default 300)")
    ap.add_argument("--strace-messages", type=int, default=200,
                    help="messages in the separate strace run counting fsyncs; 0 skips it")
    ap.add_argument("--postfix-virtual-concurrency", type=int, default=1,
                    help="virtual_destination_concurrency_limit of the Postfix instance (default 1)")
    ap.add_argument("--wait-idle", type=float, default=60,
                    help="before each run, wait at most this many seconds for the (shared) machine "
                         "to be under 25%% busy; 0: do not wait (default 60)")
    ap.add_argument("--generator", choices=("auto", "smtp-source", "python"), default="auto")
    args = ap.parse_args()
    PostfixServer.virtual_concurrency = args.postfix_virtual_concurrency
    if args.quick:
        args.messages = min(args.messages, 500)
    record = (args.record or not args.quick) and not args.no_record
    if args.messages < 1 or args.sessions < 1 or args.size < 1:
        ap.error("--messages, --sessions and --size must be positive")
    if args.generator == "smtp-source" and not os.access(SMTP_SOURCE, os.X_OK):
        ap.error(f"{SMTP_SOURCE} is not installed")
    if not os.path.exists(zolder_test.binary("zolderd")):
        ap.error("build/bin/zolderd missing: run `make all` (or `make bench-spool`)")

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    # SIGINT too: a shell without job control starts background jobs with SIGINT ignored.
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    now = datetime.datetime.now(datetime.timezone.utc)
    report = {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python3 bench/spool.py " + " ".join(sys.argv[1:]) if sys.argv[1:] else
                   "make bench-spool (python3 bench/spool.py)",
        "messages": args.messages, "sessions": args.sessions, "size": args.size,
        "results": [], "notes": [],
    }
    log("machine notes ...")
    report["machine"] = machine_notes()
    for k, v in report["machine"].items():
        log(f"   {k}: {v}")
    servers = []
    if args.only in (None, "zolder"):
        servers.append(ZolderServer)
    if args.only in (None, "postfix"):
        if PostfixServer.available():
            servers.append(PostfixServer)
        else:
            log("postfix: skipped (needs root and Debian's postfix package)")
            report["notes"].append("Postfix skipped: needs root and Debian's postfix package")
    try:
        for cls in servers:
            try:
                bench_server(cls, args, report)
            except Exception as e:  # the other server is still measured; the exit status says it
                log(f"\n{cls.label}: FAILED: {e}")
                report["notes"].append(f"{cls.label} failed: {str(e).splitlines()[0]}")
                report["failed"] = True
    except KeyboardInterrupt as e:
        log(f"\ninterrupted ({e}); servers stopped")
        return 130
    if not report["results"]:
        return 1
    report["load_command"] = report["results"][0]["generator_command"]
    log("\n" + table(report["results"], markdown=False))
    for r in report["results"]:
        log(f"{r['label']} durability: {r['durability']}")
        if r["log_problem_examples"]:
            log(f"{r['label']} log problems ({r['log_problems']}), first ones:\n   "
                + "\n   ".join(r["log_problem_examples"]))
    if record:
        stamp = now.strftime("%Y%m%d-%H%M%S")
        json_path = os.path.join(HERE, "results", f"spool-{stamp}.json")
        os.makedirs(os.path.dirname(json_path), exist_ok=True)
        with open(json_path, "w") as f:
            json.dump(report, f, indent=1)
        write_results(report, os.path.join(HERE, "RESULTS.md"), json_path)
        png = plot(report, os.path.join(HERE, "plots", "spool.png"))
        log(f"\nwrote {os.path.relpath(json_path, ROOT)}, bench/RESULTS.md"
            + (f", {os.path.relpath(png, ROOT)}" if png else " (no gnuplot: no plot)"))
    ok = not report.get("failed") and all(r["status"] == "ok" and r["delivered_final"] == r["messages"] for r in report["results"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
