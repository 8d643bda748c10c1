"""ispsim's nameserver, asked by a real client: dig (UDP, TCP, and the TC fallback), and faults."""

import shutil
import subprocess
import time
import unittest

from ispsim_common import NS, IspsimCase


def dig(*args, timeout=20):
    r = subprocess.run(["dig", f"@{NS}", "+time=2", "+tries=1", *args], capture_output=True,
                       text=True, timeout=timeout)
    return r.stdout


def short(*args):
    return dig("+short", *args).split()


@unittest.skipUnless(shutil.which("dig"), "dig (dnsutils) not installed")
class TestDns(IspsimCase):
    def test_records_of_the_seed(self):
        # Hosts behind the modem are answered with their link addresses (127.9.x.y).
        self.assertEqual(short("smtp.hccnet.nl", "A"), ["127.9.2.25"])
        self.assertEqual(short("ns.hccnet.nl", "A"), ["127.0.2.53"])
        self.assertEqual(short("-x", "127.9.2.25"), ["smtp.hccnet.nl."])
        self.assertEqual(short("paprika", "MX"), ["10", "mx.paprika."])
        self.assertEqual(short("sjoerd-visser.spam.demon.nl", "MX"),
                         ["10", "relay-14.mail.nl.demon.net."])
        self.assertEqual(short("-x", "127.0.4.14"), ["relay-14.mail.nl.demon.net."])
        self.assertEqual(short("pop.demon.nl", "A"), ["pop3.demon.nl.", "127.9.4.110"])
        self.assertEqual(short("smtp.hccnet.nl", "AAAA"), ["::1"])
        self.assertEqual(short("hccnet.nl", "TXT"), ['"v=spf1', "ip4:213.51.144.25", '-all"'])

    def test_negative_answers(self):
        out = dig("nobody.paprika", "A")
        self.assertIn("status: NXDOMAIN", out)
        self.assertIn("flags: qr aa rd", out)
        self.assertIn("status: NOERROR", dig("mx.paprika", "AAAA"))
        self.assertIn("status: REFUSED", dig("example.com", "A"))

    def test_tcp(self):
        self.assertIn("mx.paprika.", dig("+tcp", "paprika", "MX"))
        log = self.isp.records("dns")
        self.assertEqual(log[-1]["proto"], "tcp")
        self.assertEqual(log[-1]["name"], "paprika")
        self.assertEqual(log[-1]["type"], "MX")
        self.assertEqual(log[-1]["rcode"], "NOERROR")
        self.assertEqual(log[-1]["answers"], "MX 10 mx.paprika.")
        self.assertTrue(log[-1]["client"].startswith("127.0.0.1:"))

    def test_truncation_makes_dig_retry_over_tcp(self):
        self.isp.dns_fault("paprika", "truncate")
        out = dig("paprika", "MX")
        self.assertIn("Truncated, retrying in TCP mode", out)
        self.assertIn("mx.paprika.", out)
        log = [(r["proto"], r["tc"]) for r in self.isp.records("dns")]
        self.assertEqual(log, [("udp", True), ("tcp", False)])

    def test_servfail_nxdomain_for_one_name(self):
        self.isp.dns_fault("mx.paprika", "servfail")
        self.isp.dns_fault("mx.appel", "nxdomain")
        self.assertIn("status: SERVFAIL", dig("mx.paprika", "A"))
        self.assertIn("status: NXDOMAIN", dig("mx.appel", "A"))
        self.assertEqual(short("mx.komkommer", "A"), ["127.9.7.25"])
        self.isp.clear_faults("dns")
        self.assertEqual(short("mx.paprika", "A"), ["127.9.6.25"])

    def test_drop_and_delay_for_all(self):
        self.isp.dns_fault("*", "drop")
        self.assertIn("timed out", dig("mx.paprika", "A"))
        self.isp.dns_fault("*", "delay", delay_ms=600)
        t0 = time.monotonic()
        self.assertEqual(short("mx.paprika", "A"), ["127.9.6.25"])
        self.assertGreater(time.monotonic() - t0, 0.4)
        self.assertEqual(self.isp.records("dns")[-1]["fault"], "delay")

    def test_bad_fault(self):
        from ispsim_common import IspsimError
        with self.assertRaises(IspsimError):
            self.isp.dns_fault("x", "explode")


if __name__ == "__main__":
    unittest.main()
