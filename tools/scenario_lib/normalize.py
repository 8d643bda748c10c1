"""Normalisation declared as data (scenarios/normalize.rules): `NAME: REGEX => REPLACEMENT`,
applied per line in file order; a replacement ending in '#' numbers matches in order of
appearance (QID1, QID2, ...) for the life of one Normalizer (one scenario)."""

import re


class RulesError(Exception):
    pass


def load_rules(path):
    rules = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            s = line.rstrip("\n")
            if not s.strip() or s.lstrip().startswith("#"):
                continue
            m = re.fullmatch(r"([a-z0-9-]+):\s*(.*?)\s+=>\s+(.*?)\s*", s)
            if not m:
                raise RulesError(f"{path}:{n}: NAME: REGEX => REPLACEMENT")
            try:
                rx = re.compile(m.group(2))
            except re.error as e:
                raise RulesError(f"{path}:{n}: bad regex: {e}")
            rules.append((m.group(1), rx, m.group(3)))
    return rules


class Normalizer:
    def __init__(self, rules):
        self.rules = rules
        self.numbers = {}  # rule name -> {matched text: n}

    def line(self, text, expected=False):
        """Normalises one line. Expected values skip the numbering rules: they are written
        already numbered (QID1), and numbering them again would shift the count."""
        for name, rx, repl in self.rules:
            if repl.endswith("#") and expected:
                continue
            if repl.endswith("#"):
                prefix = repl[:-1]
                seen = self.numbers.setdefault(name, {})

                def number(m, prefix=prefix, seen=seen):
                    key = m.group(0)
                    if key not in seen:
                        seen[key] = len(seen) + 1
                    return f"{m.expand(prefix)}{seen[key]}"
                text = rx.sub(number, text)
            else:
                text = rx.sub(repl.replace("\\t", "\t"), text)
        return text

    def text(self, text, expected=False):
        return "\n".join(self.line(t, expected) for t in text.split("\n"))
