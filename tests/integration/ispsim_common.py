"""Shared by the ispsim integration tests: run a world with the shared helper, by PID."""

import os
import shlex
import socket
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "helper"))
sys.path.insert(0, os.path.join(ROOT, "simulator", "python"))

import zolder_test  # noqa: E402
from ispsim_client import IspsimClient, IspsimError  # noqa: E402,F401

SEED_WORLD = os.path.join(ROOT, "fixtures", "worlds", "seed.world")
CERTS = os.path.join(ROOT, "fixtures", "certs")
CA = os.path.join(CERTS, "ca.pem")
CUSTOMER = "127.0.3.10"       # the seed's 62.251.70.10, where the link comes out
OUTSIDER = "127.0.1.20"       # zolder itself, not a customer of the smarthost
NS = "127.0.2.53"
SMARTHOST = "127.0.2.25"
DEMON_MX = "127.0.4.14"
PAPRIKA_MX = "127.0.6.25"
DEMON_POP3 = "127.0.4.110"
LINK_SMARTHOST = "127.9.2.25"  # smtp.hccnet.nl through the modem (what DNS answers)
LINK_PAPRIKA_MX = "127.9.6.25"
LINK_DEMON_POP3 = "127.9.4.110"
PROVIDER1_IMAP = "127.0.5.143"
LINK_PROVIDER1_IMAP = "127.9.5.143"


def world_ports(path):
    """(address, port, proto) of every listener a world file asks for (the links' too)."""
    import ipaddress
    hosts, links, via, ports, wanted = {}, {}, {}, {}, []
    with open(path, encoding="utf-8") as f:
        for line in f:
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            opts = dict(zip(words[2::2], words[3::2])) if len(words) > 2 else {}
            if words[0] == "link":
                links[words[1]] = ipaddress.ip_network(opts["listen"])
            elif words[0] == "host":
                name = words[1].lower().rstrip(".")
                hosts[name] = words[2]
                if "via" in words[3:]:
                    via[name] = words[words.index("via", 3) + 1]
            elif words[0] == "nameserver":
                addr = hosts[words[1].lower().rstrip(".")]
                wanted += [(addr, 53, socket.SOCK_DGRAM), (addr, 53, socket.SOCK_STREAM)]
                via.pop(words[1].lower().rstrip("."), None)
            elif words[0] in ("smarthost", "mx", "pop3", "imap"):
                name = words[1].lower().rstrip(".")
                port, tls_port = {"pop3": (110, 995), "imap": (143, 993)}.get(words[0], (25, 465))
                got = [port]
                if "implicit" in opts.get("tls", "").split(","):
                    got.append(tls_port)
                ports.setdefault(name, []).extend(got)
                wanted += [(hosts[name], p, socket.SOCK_STREAM) for p in got]
    for name, link in via.items():
        net = links[link]
        low = int(ipaddress.ip_address(hosts[name])) & int(net.hostmask)
        addr = str(ipaddress.ip_address(int(net.network_address) | low))
        wanted += [(addr, p, socket.SOCK_STREAM) for p in ports.get(name, [])]
    return wanted


class IspsimCase(unittest.TestCase):
    """Starts ispsim on a world for the class; stops it by PID at the end."""

    world = SEED_WORLD

    @classmethod
    def setUpClass(cls):
        binary = zolder_test.binary("ispsim")
        if not os.path.exists(binary):
            raise unittest.SkipTest("build/bin/ispsim not built (make all)")
        if not os.path.exists(os.path.join(CERTS, "smtp.hccnet.nl.pem")):
            # the seed world's TLS hosts need the test CA's certificates (make certs)
            import subprocess
            subprocess.run([os.path.join(ROOT, "tools", "gen-certs"), CERTS], check=True,
                           timeout=120)
        busy = [f"{a}:{p}" for a, p, proto in world_ports(cls.world)
                if not zolder_test.address_free(a, p, proto)]
        if busy:
            raise unittest.SkipTest("addresses in use, not ours: " + ", ".join(busy))
        cls.inst = zolder_test.Instance(name="ispsim")
        cls.sock = cls.inst.path("ispsim.sock")
        try:
            # ISPSIM_WRAPPER="valgrind --error-exitcode=99 --leak-check=full" runs it under memcheck.
            wrapper = shlex.split(os.environ.get("ISPSIM_WRAPPER", ""))
            cls.inst.start([binary, "-w", cls.world, "-s", cls.sock, "-d", cls.inst.path("data"),
                            "-r", cls.inst.path("records")], wrapper=wrapper, timeout=60)
        except Exception:
            cls.inst.cleanup()
            raise
        cls.isp = IspsimClient(cls.sock)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.isp.close()
        except OSError:
            pass  # ispsim died; its status and log tell why
        status = cls.inst.stop()
        log = cls.inst.log()
        cls.inst.cleanup()
        if status != 0:
            raise AssertionError(f"ispsim exited with {status}:\n{log}")

    def setUp(self):
        # a relay still in flight from the last test would be cut by the reset, and its MX
        # would record a no-quit in this test
        self.isp.wait_relayed(timeout=5)
        self.isp.reset()
