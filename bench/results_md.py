"""bench/RESULTS.md: every benchmark adds its section at the top (newest first), below the
file's header, through this one function."""

import contextlib
import io
import os

HEADER = ("# Benchmarks\n\nWritten by the scripts under bench/; newest first. Numbers are from "
          "a shared 2-core machine: compare the servers within one section, not across sections.\n\n")


def add_section(path, section):
    """Puts section (markdown starting with '## ') at the top of the results file."""
    old = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            old = f.read()
        first = old.find("\n## ")
        old = old[first + 1:] if first >= 0 else ("" if old.startswith("# ") else old)
    section = section.strip("\n") + "\n"
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(HEADER + section + ("\n" + old if old else ""))
    os.replace(tmp, path)


@contextlib.contextmanager
def section_writer(path):
    """`with section_writer(path) as f: f.write(...)`: the text goes to the top on exit."""
    buf = io.StringIO()
    yield buf
    add_section(path, buf.getvalue())
