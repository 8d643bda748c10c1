"""Outbound delivery to a smarthost with STARTTLS and AUTH: a second zolderd plays the
provider's submission server (certificate for smtp.hccnet.nl from the test CA, AUTH over
TLS only). No DNS: the smarthost's name comes from the hosts file (dns = nodns)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "helper"))
import zolder_test  # noqa: E402
from zolderd_instance import CERTS, Zolderd, crypt_hash, ensure_certs  # noqa: E402

SENDER = "127.0.1.43"     # our zolderd
PROVIDER = "127.0.1.44"   # the provider's server (another zolderd)
LAN_HOST = "127.0.1.5"


class SmarthostTlsTest(unittest.TestCase):
    def setUp(self):
        for addr, port in ((SENDER, 2525), (PROVIDER, 2587)):
            if not zolder_test.address_free(addr, port):
                self.skipTest(f"{addr}:{port} in use, not ours")
        ensure_certs()
        self.provider = Zolderd(address=PROVIDER, port=2587, name="provider",
                                users={"sjoerd": crypt_hash("geheim")},
                                conf={"hostname": "smtp.hccnet.nl", "local_domains": "hccnet.nl",
                                      "relay_from": "", "tls_cert": os.path.join(CERTS, "smtp.hccnet.nl.pem"),
                                      "tls_key": os.path.join(CERTS, "smtp.hccnet.nl.key")})
        self.addCleanup(self.provider.cleanup)
        self.provider.start()

    def sender(self, auth_mode=0o600, **conf):
        lines = {"smarthost": "smtp.hccnet.nl:2587", "smarthost_auth": "auth",
                 "smarthost_tls": "verify", "tls_ca_file": os.path.join(CERTS, "ca.pem"),
                 "smtp_bind_address": SENDER}
        lines.update(conf)
        z = Zolderd(address=SENDER, port=2525, name="sender", conf=lines,
                    files={"hosts": f"{PROVIDER} smtp.hccnet.nl\n"})
        z.inst.write("auth", "sjoerd:geheim\n", mode=auth_mode)
        self.addCleanup(z.cleanup)
        return z

    def queue_one(self, z):
        import smtplib
        with smtplib.SMTP(SENDER, 2525, source_address=(LAN_HOST, 0), timeout=10) as s:
            s.sendmail("sjoerd@zolder.thuis", ["jan@paprika"], "Subject: via tls\r\n\r\nx\r\n")

    def test_starttls_verify_and_auth(self):
        z = self.sender()
        z.start()
        self.queue_one(z)
        z.wait_log("to=<jan@paprika>, relay=smtp.hccnet.nl[127.0.1.44]:2587")
        z.wait_for(lambda: not z.queue_ids(), what="an empty queue")
        self.assertIn("status=sent (250 2.0.0 Ok: queued as", z.log())
        self.assertRegex(z.log(), r"smtp\.hccnet\.nl\[127\.0\.1\.44\]:2587: TLS TLSv1\.[23] ")
        self.provider.wait_log("authenticated as sjoerd")
        self.provider.wait_for(lambda: len(self.provider.queue_ids()) == 1, what="relayed message queued")
        self.assertNotIn("geheim", z.log())

    def test_auth_file_must_be_private(self):
        z = self.sender(auth_mode=0o644)
        with self.assertRaises(Exception):
            z.start(timeout=5)
        self.assertIn("mode 0600", z.log())

    def test_no_auth_without_tls(self):
        # The provider without a certificate offers no STARTTLS: nothing may be sent.
        self.provider.cleanup()
        self.provider = Zolderd(address=PROVIDER, port=2587, name="provider2",
                                users={"sjoerd": crypt_hash("geheim")},
                                conf={"hostname": "smtp.hccnet.nl", "relay_from": ""})
        self.addCleanup(self.provider.cleanup)
        self.provider.start()
        z = self.sender(smarthost_tls="may")
        z.start()
        self.queue_one(z)
        z.wait_log("status=deferred (TLS is required (smarthost_tls = may, credentials set) but the "
                   "server does not offer STARTTLS)")
        self.assertEqual(len(z.queue_ids()), 1)
        self.assertNotIn("AUTH", self.provider.log())
        self.assertNotIn("MAIL FROM", self.provider.log())


if __name__ == "__main__":
    unittest.main()
