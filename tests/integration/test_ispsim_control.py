"""The control protocol: one JSON request per line, one reply per line."""

import json
import socket
import unittest

from ispsim_common import IspsimCase, IspsimError


class TestControl(IspsimCase):
    def raw(self, data):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(self.sock)
        f = s.makefile("rwb")
        f.write(data)
        f.flush()
        replies = [json.loads(f.readline()) for _ in range(data.count(b"\n"))]
        f.close()
        s.close()
        return replies

    def test_inject_list_read(self):
        uid = self.isp.inject("mailstore", "sjoerd", "Subject: one\n\nfirst\n")
        self.assertEqual(uid, 1)
        self.assertEqual(self.isp.inject("mailstore", "sjoerd", "Subject: two\r\n\r\nsecond"), 2)
        msgs = self.isp.messages("mailstore", "sjoerd")
        self.assertEqual([m["uid"] for m in msgs], [1, 2])
        self.assertEqual(self.isp.read("mailstore", "sjoerd", 1), "Subject: one\r\n\r\nfirst\r\n")
        self.assertEqual(self.isp.read("mailstore", "sjoerd", 2), "Subject: two\r\n\r\nsecond\r\n")
        self.assertEqual(self.isp.mailboxes("paprika"),
                         [{"user": "jan", "messages": 0, "bytes": 0, "quota": 0},
                          {"user": "piet", "messages": 0, "bytes": 0, "quota": 0}])
        self.isp.reset()
        self.assertEqual(self.isp.messages("mailstore", "sjoerd"), [])
        self.assertEqual(self.isp.records(), [])

    def test_records_paging(self):
        for i in range(5):
            self.isp.inject("appel", "mac", f"Subject: {i}\n\n")
        first = self.isp.call("records.read", kind="delivery", limit=2)
        self.assertEqual(len(first["records"]), 2)
        rest = self.isp.call("records.read", kind="delivery", since=first["next"])
        self.assertEqual([r["uid"] for r in rest["records"]], [3, 4, 5])

    def test_errors(self):
        for verb, kw in (("nosuch", {}), ("mailstore.read", {"store": "x", "user": "y", "uid": 1}),
                         ("mailstore.read", {"store": "appel", "user": "mac", "uid": 9}),
                         ("mailstore.inject", {"store": "appel", "user": "mac"}),
                         ("records.read", {"limit": -1})):
            with self.subTest(verb=verb), self.assertRaises(IspsimError):
                self.isp.call(verb, **kw)
        replies = self.raw(b'not json\n{"verb":"ping"}\n{"verb":{"nested":1}}\n\n')
        self.assertEqual([r["ok"] for r in replies], [False, True, False, False])
        self.assertIn("bad JSON", replies[0]["error"])


if __name__ == "__main__":
    unittest.main()
