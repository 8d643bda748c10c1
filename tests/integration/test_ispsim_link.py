"""ispsim's dial-up link: forwarding, states, dials, cuts, stalls and DNS behind the line.

Timing is checked loosely (lower bounds with wide margins) and not at all under a wrapper
such as Valgrind (ISPSIM_WRAPPER), which slows everything down.
"""

import os
import shutil
import smtplib
import socket
import subprocess
import time
import unittest

from ispsim_common import (LINK_DEMON_POP3, LINK_PAPRIKA_MX, LINK_SMARTHOST, NS, OUTSIDER,
                           IspsimCase, IspsimError)

MSG = "From: sjoerd@zolder.thuis\r\nTo: jan@paprika\r\nSubject: modem\r\n\r\nPiep krrr.\r\n"
TIMING = not os.environ.get("ISPSIM_WRAPPER")


def dig(*args):
    r = subprocess.run(["dig", f"@{NS}", "+time=1", "+tries=1", *args], capture_output=True,
                       text=True, timeout=20)
    return r.stdout


class Raw:
    def __init__(self, host, port=25, timeout=5.0):
        self.s = socket.create_connection((host, port), timeout=timeout,
                                          source_address=(OUTSIDER, 0))

    def recv_all(self):
        chunks = []
        while True:
            try:
                b = self.s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)

    def close(self):
        self.s.close()


class TestLink(IspsimCase):
    def wait(self, pred, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return True
            time.sleep(0.02)
        return pred()

    def send(self, host=LINK_SMARTHOST, rcpts=("jan@paprika",)):
        with smtplib.SMTP(host, 25, source_address=(OUTSIDER, 0), timeout=10) as s:
            s.ehlo("zolder.thuis")
            return s.sendmail("sjoerd@zolder.thuis", list(rcpts), MSG)

    def test_forwarding_shows_the_customer(self):
        # zolder (127.0.1.20) is no customer, but through the link it arrives from 127.0.3.10.
        self.assertEqual(self.send(), {})
        self.isp.wait_relayed()
        text = self.isp.read("paprika", "jan", 1)
        self.assertIn("Received: from [62.251.70.10] (helo=zolder.thuis)\r\n\tby smtp.hccnet.nl",
                      text)
        peers = {r["peer"].split(":")[0] for r in self.isp.records("smtp")
                 if r["host"] == "smtp.hccnet.nl"}
        self.assertEqual(peers, {"127.0.3.10"})
        st = self.isp.link_stats()
        self.assertEqual(st["mode"], "up")
        self.assertTrue(st["online"])
        self.assertEqual(st["connections"], 1)
        self.assertEqual(st["open"], 0)
        smtp_bytes = [r for r in self.isp.records("link") if r["event"] == "close"][0]
        self.assertEqual(smtp_bytes["bytes_up"], st["bytes_up"])
        self.assertEqual(smtp_bytes["bytes_down"], st["bytes_down"])
        self.assertGreater(st["bytes_up"], len(MSG))
        self.assertEqual(self.isp.violations(), [])

    def test_pop3_through_the_link(self):
        import poplib
        self.isp.inject("mailstore", "sjoerd", "Subject: x\n\nbody\n")
        p = poplib.POP3(LINK_DEMON_POP3, 110, timeout=5)
        p.user("sjoerd")
        p.pass_("geheim")
        self.assertEqual(p.stat()[0], 1)
        p.quit()
        self.assertEqual(self.isp.link_stats()["connections"], 1)

    def test_down_refuses_and_dns_stays_silent(self):
        self.isp.link_down()
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection((LINK_SMARTHOST, 25), timeout=2, source_address=(OUTSIDER, 0))
        if shutil.which("dig"):
            self.assertIn("timed out", dig("mx.paprika", "A"))
            dns = self.isp.records("dns")
            self.assertEqual(dns[-1]["rcode"], "DROPPED")
            self.assertEqual(dns[-1]["fault"], "link-down")
            self.assertEqual(self.isp.link_stats()["dns_dropped"], 1)
        st = self.isp.link_up()
        self.assertEqual(st["mode"], "up")
        self.assertEqual(self.send(), {})
        # reset brings back the world's mode (up)
        self.isp.link_down()
        self.isp.reset()
        self.assertEqual(self.isp.link_stats()["mode"], "up")
        self.assertEqual(self.send(), {})

    def test_dial_on_demand_counts_dials_and_hangs_up_when_idle(self):
        self.isp.link_down()
        self.isp.link_profile(dial_delay=300, idle=1)
        st = self.isp.link_dial()
        self.assertEqual(st["mode"], "demand")
        self.assertFalse(st["online"])
        dials = st["dials"]
        t0 = time.monotonic()
        self.assertEqual(self.send(), {})
        if TIMING:
            self.assertGreater(time.monotonic() - t0, 0.25)
        st = self.isp.link_stats()
        self.assertEqual(st["dials"], dials + 1)
        self.assertTrue(st["online"])
        # a second message while online needs no dial
        self.assertEqual(self.send(), {})
        self.assertEqual(self.isp.link_stats()["dials"], dials + 1)
        self.assertTrue(self.wait(lambda: not self.isp.link_stats()["online"], timeout=5))
        events = [r["event"] for r in self.isp.records("link")]
        self.assertIn("hangup", events)
        hang = [r for r in self.isp.records("link") if r["event"] == "hangup"][-1]
        self.assertEqual(hang["reason"], "idle")
        st = self.isp.link_stats()
        self.assertGreaterEqual(st["ticks"], 2)
        self.assertGreater(st["connected_ms"], 0)
        self.assertGreaterEqual(hang["connected_ms"], 250)
        self.assertGreaterEqual(hang["ticks"], 1)
        # the next connection dials again; link.hangup ends the call without waiting
        self.assertEqual(self.send(), {})
        self.assertEqual(self.isp.link_stats()["dials"], dials + 2)
        self.isp.wait_relayed()
        st = self.isp.link_hangup()
        self.assertFalse(st["online"])
        self.assertEqual(st["mode"], "demand")
        self.assertEqual(self.isp.records("link")[-1]["reason"], "control")
        self.assertEqual(self.send(), {})
        self.assertEqual(self.isp.link_stats()["dials"], dials + 3)

    def test_while_dialling(self):
        self.isp.link_down()
        self.isp.link_profile(dial_delay=400)
        self.isp.link_dial()
        # a client that gives up while the modem dials leaves nothing open
        c = Raw(LINK_PAPRIKA_MX)
        c.close()
        self.assertTrue(self.wait(lambda: self.isp.link_stats()["open"] == 0))
        # what a client sends while it dials waits and then goes through
        c = Raw(LINK_PAPRIKA_MX)
        c.s.sendall(b"QUIT\r\n")
        self.assertEqual(c.recv_all(), b"220 mx.paprika ESMTP ispsim\r\n221 2.0.0 Bye\r\n")
        c.close()
        self.assertEqual(self.isp.violations(), [])

    @unittest.skipUnless(shutil.which("dig"), "dig (dnsutils) not installed")
    def test_dns_query_dials_and_waits(self):
        self.isp.link_down()
        self.isp.link_profile(dial_delay=400, latency=50)
        self.isp.link_dial()
        t0 = time.monotonic()
        out = dig("+short", "mx.paprika", "A")
        elapsed = time.monotonic() - t0
        self.assertEqual(out.split(), ["127.9.6.25"])
        if TIMING:
            self.assertGreater(elapsed, 0.4)
        st = self.isp.link_stats()
        self.assertEqual(st["dials"], 2)  # the link.up at start (reset) and this one
        self.assertEqual(st["dns_queries"], 1)
        self.assertEqual(self.isp.records("dns")[-1]["delay_ms"] >= 500, True)

    def test_cut_after_n_bytes(self):
        self.isp.link_profile(cut_after=100)
        c = Raw(LINK_PAPRIKA_MX)
        c.s.sendall(b"EHLO zolder.thuis\r\n")
        got = c.recv_all()
        c.close()
        # the host's greeting and reply flow down; 100 bytes in all, counting the 19 up
        self.assertEqual(len(got), 100 - len(b"EHLO zolder.thuis\r\n"))
        self.assertTrue(got.startswith(b"220 mx.paprika ESMTP"))
        self.assertTrue(self.wait(lambda: self.isp.link_stats()["open"] == 0))
        st = self.isp.link_stats()
        self.assertEqual(st["cuts"], 1)
        self.assertEqual(st["bytes_up"] + st["bytes_down"], 100)
        close = [r for r in self.isp.records("link") if r["event"] == "close"][-1]
        self.assertEqual(close["reason"], "cut-after")

    def test_cut_at_dot_takes_the_message_but_loses_the_reply(self):
        self.isp.link_profile(cut_at="dot", cut_times=1)
        with self.assertRaises(smtplib.SMTPServerDisconnected):
            self.send(host=LINK_PAPRIKA_MX)
        # RFC 1047: the host got the whole message; the client never heard the 250
        self.assertTrue(self.wait(lambda: len(self.isp.messages("paprika", "jan")) == 1))
        self.assertEqual(self.isp.link_stats()["cuts"], 1)
        # cut_times=1: the retry goes through
        self.assertEqual(self.send(host=LINK_PAPRIKA_MX), {})
        self.assertEqual(len(self.isp.messages("paprika", "jan")), 2)
        self.assertNotIn("eof-in-data", self.isp.violations())

    def test_stall_keeps_the_connection_but_moves_nothing(self):
        self.isp.link_profile(stall_after=10)
        c = Raw(LINK_PAPRIKA_MX, timeout=0.5)
        time.sleep(0.2)
        got = c.recv_all()
        self.assertEqual(got, b"220 mx.pap")
        c.close()
        self.assertTrue(self.wait(lambda: self.isp.link_stats()["open"] == 0))
        self.assertEqual(self.isp.link_stats()["stalls"], 1)

    def test_random_cuts_are_seeded(self):
        def run():
            self.isp.reset()
            self.isp.link_profile(random_cut=500, random_cut_max=60, seed=42)
            outcome = []
            for _ in range(8):
                # one side at a time, so the bytes pass in the same order every run
                c = Raw(LINK_PAPRIKA_MX, timeout=2)
                got = b""
                while not got.endswith(b"\n"):
                    b = c.s.recv(100)
                    if not b:
                        break
                    got += b
                try:
                    c.s.sendall(b"QUIT\r\n")
                    got += c.recv_all()
                except OSError:
                    pass
                outcome.append(len(got))
                c.close()
            return outcome
        first = run()
        self.assertEqual(run(), first)
        full = len(b"220 mx.paprika ESMTP ispsim\r\n")
        self.assertTrue(any(n < full for n in first), first)   # some were cut
        self.assertTrue(any(n > full for n in first), first)   # some got the 221 too

    @unittest.skipUnless(TIMING, "timing is not checked under a wrapper")
    def test_latency_and_bandwidth(self):
        self.isp.link_profile(latency=100)
        t0 = time.monotonic()
        c = Raw(LINK_PAPRIKA_MX)
        c.s.recv(100)  # the greeting: one trip down
        self.assertGreater(time.monotonic() - t0, 0.08)
        c.close()
        self.isp.link_profile(clear=True, bandwidth=56000)
        body = "x" * 70 + "\r\n"
        big = MSG + body * 100  # about 7.4 kB: over a second at 56 kbit/s
        t0 = time.monotonic()
        with smtplib.SMTP(LINK_PAPRIKA_MX, 25, source_address=(OUTSIDER, 0), timeout=20) as s:
            s.sendmail("a@zolder.thuis", ["jan@paprika"], big)
        self.assertGreater(time.monotonic() - t0, 0.9)

    def test_slow_close(self):
        self.isp.link_profile(slow_close=300)
        c = Raw(LINK_PAPRIKA_MX)
        c.s.recv(100)
        c.s.sendall(b"QUIT\r\n")
        t0 = time.monotonic()
        got = c.recv_all()
        self.assertIn(b"221", got)
        if TIMING:
            self.assertGreater(time.monotonic() - t0, 0.25)
        c.close()

    def test_bad_link_requests(self):
        for kw in ({"latency": "fast"}, {"colour": 1}, {"cut_at": "rcpt"}, {"latency": -1}):
            with self.subTest(kw=kw), self.assertRaises(IspsimError):
                self.isp.link_profile(**kw)
        with self.assertRaises(IspsimError):
            self.isp.link_up(link="isdn")


if __name__ == "__main__":
    unittest.main()
