"""ispsim's TLS (STARTTLS, implicit 465/995, the test CA's certificates) and smarthost AUTH,
against smtplib, poplib and curl."""

import base64
import poplib
import shutil
import smtplib
import ssl
import subprocess
import unittest

from ispsim_common import (CA, CUSTOMER, DEMON_POP3, LINK_SMARTHOST, OUTSIDER, PAPRIKA_MX,
                           SMARTHOST, IspsimCase, IspsimError)

MSG = "From: sjoerd@zolder.thuis\r\nTo: jan@paprika\r\nSubject: tls\r\n\r\nGeheim.\r\n"


def ca_context(check_hostname=True):
    ctx = ssl.create_default_context(cafile=CA)
    ctx.check_hostname = check_hostname
    return ctx


class NamedSMTP(smtplib.SMTP):
    """STARTTLS checks the certificate against a name while connecting to an address."""

    def __init__(self, addr, name, source=OUTSIDER, port=25):
        self.tls_name = name
        super().__init__(addr, port, source_address=(source, 0), timeout=10)

    def starttls(self, context=None):
        self._host = self.tls_name
        return super().starttls(context=context)


class TestTls(IspsimCase):
    def test_starttls_then_auth_lets_anyone_relay(self):
        with NamedSMTP(LINK_SMARTHOST, "smtp.hccnet.nl") as s:
            s.ehlo("zolder.thuis")
            self.assertTrue(s.has_extn("starttls"))
            self.assertFalse(s.has_extn("auth"))  # never offered in the clear
            s.starttls(context=ca_context())
            s.ehlo("zolder.thuis")
            self.assertEqual(s.esmtp_features["auth"].split(), ["PLAIN", "LOGIN"])
            self.assertFalse(s.has_extn("starttls"))
            s.login("sjoerd", "geheim")
            self.assertEqual(s.sendmail("sjoerd@zolder.thuis", ["jan@paprika"], MSG), {})
        self.isp.wait_relayed()
        text = self.isp.read("paprika", "jan", 1)
        self.assertIn("by smtp.hccnet.nl with esmtpsa (ispsim)", text)
        tls = self.isp.records("tls")
        self.assertEqual(len(tls), 1)
        self.assertTrue(tls[0]["tls"].startswith("TLSv1."), tls)
        lines = [r["line"] for r in self.isp.records("smtp") if r["dir"] == "c"]
        self.assertIn("AUTH PLAIN", lines)
        self.assertFalse(any("geheim" in l or base64.b64encode(b"\0sjoerd\0geheim").decode() in l
                             for l in lines))
        self.assertEqual(self.isp.violations(), [])

    def test_auth_login_and_wrong_password(self):
        with NamedSMTP(SMARTHOST, "smtp.hccnet.nl") as s:
            s.starttls(context=ca_context())
            s.ehlo("zolder.thuis")
            s.user, s.password = "sjoerd", "fout"
            with self.assertRaises(smtplib.SMTPAuthenticationError) as e:
                s.auth("LOGIN", s.auth_login)
            self.assertEqual(e.exception.smtp_code, 535)
            s.user, s.password = "sjoerd", "geheim"
            code, _ = s.auth("LOGIN", s.auth_login)
            self.assertEqual(code, 235)
            # authenticated: a non-customer may relay
            s.mail("sjoerd@zolder.thuis")
            self.assertEqual(s.rcpt("jan@paprika")[0], 250)

    def test_without_tls_auth_is_refused_and_outsiders_cannot_relay(self):
        with smtplib.SMTP(SMARTHOST, 25, source_address=(OUTSIDER, 0), timeout=10) as s:
            s.ehlo("zolder.thuis")
            code, text = s.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0sjoerd\0geheim").decode())
            self.assertEqual(code, 538)
            s.mail("x@zolder.thuis")
            self.assertEqual(s.rcpt("jan@paprika")[0], 554)

    def test_implicit_tls_on_465(self):
        ctx = ca_context(check_hostname=False)
        with smtplib.SMTP_SSL(SMARTHOST, 465, source_address=(CUSTOMER, 0), timeout=10,
                              context=ctx) as s:
            cert = s.sock.getpeercert()
            self.assertIn(("DNS", "smtp.hccnet.nl"), cert["subjectAltName"])
            s.ehlo("zolder.thuis")
            self.assertFalse(s.has_extn("starttls"))
            self.assertTrue(s.has_extn("auth"))
            self.assertEqual(s.sendmail("sjoerd@zolder.thuis", ["jan@paprika"], MSG), {})
        self.isp.wait_relayed()
        self.assertIn("with esmtps (ispsim)", self.isp.read("paprika", "jan", 1))
        # and through the modem
        with smtplib.SMTP_SSL(LINK_SMARTHOST, 465, source_address=(OUTSIDER, 0), timeout=10,
                              context=ctx) as s:
            s.ehlo("zolder.thuis")
            s.login("sjoerd", "geheim")

    def test_starttls_per_host_and_switchable(self):
        with smtplib.SMTP(PAPRIKA_MX, 25, source_address=(CUSTOMER, 0), timeout=10) as s:
            s.ehlo("zolder.thuis")
            self.assertTrue(s.has_extn("starttls"))
        with smtplib.SMTP("127.0.7.25", 25, source_address=(CUSTOMER, 0), timeout=10) as s:
            s.ehlo("zolder.thuis")
            self.assertFalse(s.has_extn("starttls"))  # mx.komkommer: no TLS in the world
            self.assertEqual(s.docmd("STARTTLS")[0], 502)
        self.assertEqual(self.isp.call("tls.set", host="mx.paprika", starttls=False)["starttls"],
                         False)
        with smtplib.SMTP(PAPRIKA_MX, 25, source_address=(CUSTOMER, 0), timeout=10) as s:
            s.ehlo("zolder.thuis")
            self.assertFalse(s.has_extn("starttls"))
            self.assertEqual(s.docmd("STARTTLS")[0], 502)
        self.isp.reset()
        with smtplib.SMTP(PAPRIKA_MX, 25, source_address=(CUSTOMER, 0), timeout=10) as s:
            s.ehlo("zolder.thuis")
            self.assertTrue(s.has_extn("starttls"))
        with self.assertRaises(IspsimError):
            self.isp.call("tls.set", host="mx.komkommer", starttls=True)
        with self.assertRaises(IspsimError):
            self.isp.call("tls.set", host="nosuch.host", starttls=False)

    def test_pop3_stls_and_995(self):
        self.isp.inject("mailstore", "sjoerd", "Subject: x\n\nbody\n")
        p = poplib.POP3(DEMON_POP3, 110, timeout=10)
        self.assertIn("STLS", p.capa())
        p.host = "pop3.demon.nl"  # for the certificate check
        p.stls(context=ca_context())
        self.assertNotIn("STLS", p.capa())
        p.user("sjoerd")
        p.pass_("geheim")
        self.assertEqual(p.stat()[0], 1)
        p.quit()
        p = poplib.POP3_SSL(DEMON_POP3, 995, timeout=10, context=ca_context(check_hostname=False))
        p.user("sjoerd")
        p.pass_("geheim")
        self.assertIn(b"Subject: x", b"\n".join(p.retr(1)[1]))
        p.quit()
        self.assertEqual(len(self.isp.records("tls")), 2)
        self.assertEqual(self.isp.violations(), [])

    @unittest.skipUnless(shutil.which("curl"), "curl not installed")
    def test_curl_smtp_starttls_auth_and_pop3s_through_the_link(self):
        r = subprocess.run(["curl", "-sS", "--ssl-reqd", "--cacert", CA, "--interface", OUTSIDER,
                            "--resolve", f"smtp.hccnet.nl:25:{LINK_SMARTHOST}",
                            "--user", "sjoerd:geheim", "smtp://smtp.hccnet.nl:25",
                            "--mail-from", "sjoerd@zolder.thuis", "--mail-rcpt", "truus@komkommer",
                            "-T", "-"], input=MSG.encode(), capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.isp.wait_relayed()
        self.assertEqual(len(self.isp.messages("komkommer", "truus")), 1)
        self.isp.inject("mailstore", "sjoerd", "Subject: via curl\n\nhallo\n")
        r = subprocess.run(["curl", "-sS", "--cacert", CA, "--interface", OUTSIDER,
                            "--resolve", "pop3.demon.nl:995:127.9.4.110",
                            "--user", "sjoerd:geheim", "pop3s://pop3.demon.nl:995/1"],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"Subject: via curl", r.stdout)
        self.assertEqual(self.isp.violations(), [])


if __name__ == "__main__":
    unittest.main()
