"""Received headers -> hops (RFC 5321 4.4 trace fields, and the seed's odd forms: Exim's
`from [IP] (helo=X)`, the mailstore's `by mailstore for ADDR id N`, fetchmail's
`by localhost with POP3 (fetchmail-5.9.0) for USER (single-drop)`, `via NAME [IP]`, dates
without seconds or with a zone comment). Used by tools/route and the scenario runner."""

import email.utils
import re

CLAUSES = ("from", "by", "via", "with", "id", "for")


def headers_of(message):
    """The header block of a message (text), unfolded into (name, value) pairs in order. A
    leading mbox From_ line is skipped."""
    lines = message.replace("\r\n", "\n").split("\n")
    if lines and lines[0].startswith("From "):
        lines = lines[1:]
    out = []
    for line in lines:
        if line == "":
            break
        if line[:1] in (" ", "\t") and out:
            out[-1][1] += " " + line.strip()
        elif ":" in line:
            name, value = line.split(":", 1)
            out.append([name.strip(), value.strip()])
    return [(n, v) for n, v in out]


def _split_top(text):
    """Words of text, a parenthesised comment (nested) or [literal] staying one word."""
    words, cur, depth = [], "", 0
    for c in text:
        if c == "(":
            depth += 1
        elif c == ")" and depth:
            depth -= 1
        if c.isspace() and depth == 0:
            if cur:
                words.append(cur)
            cur = ""
        else:
            cur += c
    if cur:
        words.append(cur)
    return words


def parse_received(value):
    """One Received value -> dict with the clauses present (values with their comments),
    'date' (text after the last ';'), 'when' (datetime or None), 'raw'."""
    hop = {"raw": value}
    body, date = value, ""
    if ";" in value:
        body, date = value.rsplit(";", 1)
    hop["date"] = date.strip()
    when = None
    if date.strip():
        d = re.sub(r"\s*\([^)]*\)\s*$", "", date.strip())
        try:
            when = email.utils.parsedate_to_datetime(d)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is None:  # "16 Nov 2002 22:03 GMT": no seconds
            m = re.fullmatch(r"(?:\w{3}, )?(\d{1,2} \w{3} \d{4}) (\d\d:\d\d) (\S+)", d)
            if m:
                try:
                    when = email.utils.parsedate_to_datetime(f"{m.group(1)} {m.group(2)}:00 {m.group(3)}")
                except (TypeError, ValueError, IndexError):
                    when = None
    hop["when"] = when
    key = None
    for w in _split_top(body):
        if w.lower() in CLAUSES and (key is None or hop.get(key)):
            key = w.lower()
            hop.setdefault(key, "")
            if hop[key]:  # a clause twice: keep the first, append the rest
                hop[key] += " " + w
            continue
        if key is None:
            hop.setdefault("extra", "")
            hop["extra"] = (hop["extra"] + " " + w).strip()
        else:
            hop[key] = (hop[key] + " " + w).strip()
    return hop


def hops(message):
    """The hops of a message, oldest first (Received headers are prepended, so reversed)."""
    return [parse_received(v) for n, v in reversed(headers_of(message)) if n.lower() == "received"]


def canonical(hop):
    """A hop as one line for comparison: its clauses in a fixed order, without the date."""
    return " ".join(f"{k} {hop[k]}" for k in CLAUSES if hop.get(k))


def host_of(clause):
    """The first word of a clause (the name), without its comments."""
    return clause.split()[0] if clause else ""


def table(message):
    """The journey as (header row, rows), oldest hop first: n, from, by, with, id, time, delay."""
    rows = []
    prev = None
    for n, h in enumerate(hops(message), 1):
        when = h["when"]
        delay = ""
        if when is not None and prev is not None:
            secs = int((when - prev).total_seconds())
            delay = f"{secs}s" if abs(secs) < 120 else f"{secs // 60}m{abs(secs) % 60:02d}s"
        if when is not None:
            prev = when
        rows.append([str(n), h.get("from", ""), h.get("by", ""), h.get("with", ""), h.get("id", ""),
                     when.strftime("%Y-%m-%d %H:%M:%S %z") if when else h["date"] or "-", delay or "-"])
    return ["#", "from", "by", "with", "id", "time", "delay"], rows


def format_table(header, rows, width=200):
    cols = list(zip(*([header] + rows))) if rows else [[h] for h in header]
    widths = [min(max(len(c) for c in col), 48) for col in cols]

    def fit(s, w):
        return s if len(s) <= w else s[:w - 3] + "..."
    out = ["  ".join(fit(c, w).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header] + rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)
