"""The scenario runner's POP3 and IMAP clients: log in, send each `C:` line, collect the whole
response to it (POP3 multi-line bodies, IMAP untagged lines and literals up to the tagged
status), so `S:` lines can be checked against it. Standard library only; bounded by the
scenario's timeout and by a response size limit."""

import re
import socket

RESPONSE_MAX = 16 * 1024 * 1024
# POP3 commands whose +OK answer is followed by a dot-terminated body (RFC 1939, RFC 2449).
POP3_MULTILINE = {"RETR", "TOP", "CAPA"}
POP3_MULTILINE_WITHOUT_ARGS = {"LIST", "UIDL"}
IMAP_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")


class ProtocolError(Exception):
    pass


class LineReader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.total = 0

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ProtocolError("the server closed the connection")
        self.total += len(data)
        if self.total > RESPONSE_MAX:
            raise ProtocolError(f"response larger than {RESPONSE_MAX} bytes")
        self.buf += data

    def line(self):
        """One line with its CRLF."""
        while b"\r\n" not in self.buf:
            self._fill()
        i = self.buf.index(b"\r\n") + 2
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def _text(raw):
    return raw.decode("utf-8", errors="replace")


class Pop3:
    def __init__(self, host, port, source, timeout):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0))
        self.rd = LineReader(self.sock)
        greeting = _text(self.rd.line())
        if not greeting.startswith("+OK"):
            raise ProtocolError(f"greeting: {greeting.strip()}")

    def command(self, cmd):
        """Sends cmd; returns the response lines (status line first, body dot-unstuffed)."""
        self.sock.sendall(cmd.encode("utf-8") + b"\r\n")
        status = _text(self.rd.line()).rstrip("\r\n")
        lines = [status]
        words = cmd.split()
        verb = words[0].upper() if words else ""
        multi = verb in POP3_MULTILINE or (verb in POP3_MULTILINE_WITHOUT_ARGS and len(words) == 1)
        if status.startswith("+OK") and multi:
            while True:
                ln = _text(self.rd.line()).rstrip("\r\n")
                if ln == ".":
                    break
                lines.append(ln[1:] if ln.startswith("..") else ln)
        return lines

    def login(self, user, password):
        for cmd in (f"USER {user}", f"PASS {password}"):
            r = self.command(cmd)
            if not r[0].startswith("+OK"):
                raise ProtocolError(f"{cmd.split()[0]}: {r[0]}")

    def close(self):
        try:
            self.command("QUIT")
        except (OSError, ProtocolError):
            pass
        self.sock.close()


class Imap:
    def __init__(self, host, port, source, timeout):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0))
        self.rd = LineReader(self.sock)
        greeting = _text(self.rd.line())
        if not greeting.startswith("* OK"):
            raise ProtocolError(f"greeting: {greeting.strip()}")
        self.n = 0

    def command(self, cmd):
        """Sends cmd (its own tag first, or one is added); returns every line of the response
        up to and including the tagged status, literals split into their lines."""
        words = cmd.split(None, 1)
        if not words:
            raise ProtocolError("empty IMAP command")
        tag = words[0]
        self.sock.sendall(cmd.encode("utf-8") + b"\r\n")
        lines = []
        while True:
            text = self.rd.line()
            m = IMAP_LITERAL.search(text)
            while m:
                literal = self.rd.exactly(int(m.group(1)))
                rest = self.rd.line()
                text = text[:m.start()] + b"\r\n" + literal + rest
                m = IMAP_LITERAL.search(text)
            for ln in _text(text).split("\r\n"):
                lines.append(ln)
            if lines and lines[-1] == "":
                lines.pop()
            if text.startswith(tag.encode() + b" "):
                return lines
            if text.startswith(b"+"):
                return lines  # a continuation request: the next C: line continues

    def login(self, user, password):
        r = self.command(f'z0 LOGIN "{user}" "{password}"')
        if not r[-1].startswith("z0 OK"):
            raise ProtocolError(f"LOGIN: {r[-1]}")

    def close(self):
        try:
            self.command("z9 LOGOUT")
        except (OSError, ProtocolError):
            pass
        self.sock.close()
