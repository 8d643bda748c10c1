"""The one way to start things in tests (ARCHITECTURE.md, "One way to start things in tests").

Standard library only. An Instance is a temp folder holding a config; start() runs the program
in the foreground, waits for its `ready` log line, and stop() ends it by the PID we started,
never by name. Integration tests and the scenario runner both use this module.
"""

import errno
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("ZOLDER_BUILD", "build")


def binary(name):
    """Path of a built program (build/bin/NAME, or ZOLDER_BUILD/bin/NAME)."""
    build = BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD)
    return os.path.join(build, "bin", name)


def address_free(host, port, proto=socket.SOCK_STREAM):
    """True when nothing listens on host:port (we never kill a listener we did not start)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, proto)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        return True
    except OSError as e:
        if e.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
            return False
        raise
    finally:
        s.close()


def wait_for_port(host, port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


class Instance:
    """A program run in its own folder: files written there, log captured, stopped by PID."""

    def __init__(self, name="zolder", keep=False, base=None):
        self.dir = tempfile.mkdtemp(prefix=f"{name}-", dir=base)
        self.keep = keep
        self.proc = None
        self.log_path = os.path.join(self.dir, f"{name}.log")
        self._log = None

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write(self, relpath, text, mode=None):
        p = self.path(relpath)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w", encoding="utf-8") as f:
            f.write(text)
        if mode is not None:
            os.chmod(p, mode)
        return p

    def start(self, argv, ready="ready", timeout=15.0, env=None, wrapper=None):
        """Starts argv (with optional wrapper such as valgrind/strace) and waits for `ready`."""
        if self._log:
            self._log.close()
        self._log = open(self.log_path, "ab")
        # A restart appends to the same log: look for `ready` only in what this run writes.
        start_at = self._log.tell()
        full = list(wrapper or []) + list(argv)
        self.proc = subprocess.Popen(full, cwd=self.dir, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited with {self.proc.returncode}:\n{self.log()}")
            if any(ready in line for line in self.log_since(start_at).splitlines()):
                return self.proc
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{argv[0]} not ready after {timeout}s:\n{self.log()}")

    def log_since(self, offset):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def _signal_group(self, sig):
        # The program runs in its own session (start_new_session), so its process group holds
        # exactly what we started: the program and, with a wrapper (strace, valgrind,
        # prlimit), the wrapper too. Signalling the group ends both, and nothing else.
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def kill9(self):
        """kill -9 what we started (the program and its wrapper, if any)."""
        if self.proc and self.proc.poll() is None:
            self._signal_group(signal.SIGKILL)
            self.proc.wait()

    def signal(self, sig):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self, timeout=10.0):
        """SIGTERM our PID, then SIGKILL if it lingers. Returns the exit status."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
