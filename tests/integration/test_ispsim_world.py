"""ispsim -t checks world files; a running world says ready and answers ping."""

import os
import subprocess
import tempfile
import unittest

from ispsim_common import SEED_WORLD, IspsimCase, zolder_test


class TestWorldCheck(unittest.TestCase):
    def run_check(self, path):
        return subprocess.run([zolder_test.binary("ispsim"), "-w", path, "-t"],
                              capture_output=True, text=True, timeout=30)

    def setUp(self):
        if not os.path.exists(zolder_test.binary("ispsim")):
            self.skipTest("build/bin/ispsim not built")

    def test_seed_world_is_valid(self):
        r = self.run_check(SEED_WORLD)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("world=seed", r.stderr)

    def test_bad_world_gives_file_and_line(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "bad.world")
            with open(p, "w", encoding="utf-8") as f:
                f.write("zone a.test\n# fine\nhost h.a.test 127.0.2.1\nsmarthost h.a.test customers 10.0.0.0/99\n")
            r = self.run_check(p)
            self.assertEqual(r.returncode, 1)
            self.assertIn(f"{p}:4: bad network", r.stderr)

    def test_missing_world(self):
        r = self.run_check("/nonexistent/x.world")
        self.assertEqual(r.returncode, 1)

    def test_usage(self):
        r = subprocess.run([zolder_test.binary("ispsim")], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)


class TestRunning(IspsimCase):
    def test_ready_and_ping(self):
        self.assertIn("ready world=seed", self.inst.log())
        self.assertEqual(self.isp.ping()["world"], "seed")

    def test_records_files(self):
        self.isp.inject("paprika", "jan", "Subject: x\n\nbody\n")
        with open(self.inst.path("records", "records.jsonl"), encoding="utf-8") as f:
            self.assertIn('"kind":"delivery"', f.read())
        with open(self.inst.path("records", "records.txt"), encoding="utf-8") as f:
            self.assertIn("delivery via=control status=stored store=paprika user=jan", f.read())


if __name__ == "__main__":
    unittest.main()
