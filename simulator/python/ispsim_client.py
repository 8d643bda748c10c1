"""Client for ispsim's control socket (docs/ispsim.md, "Control"). Standard library only.

One request per line, one reply per line, both JSON objects. Every reply has "ok"; a false
"ok" comes with "error" and raises IspsimError here.

    with IspsimClient("/tmp/x/ispsim.sock") as isp:
        isp.reset()
        isp.dns_fault("paprika", "servfail")
        isp.smtp_fault("dot", host="smtp.hccnet.nl", message=2, reply="451 4.3.0 try later")
        print(isp.records("violation"))
"""

import json
import socket


class IspsimError(Exception):
    """ispsim answered {"ok": false, "error": ...}."""


class IspsimClient:
    def __init__(self, path, timeout=10.0):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.file = self.sock.makefile("rwb")

    def close(self):
        self.file.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, verb, **fields):
        """Sends one request; returns the reply object (raises IspsimError when not ok)."""
        req = {"verb": verb}
        req.update({k: v for k, v in fields.items() if v is not None})
        self.file.write(json.dumps(req).encode("utf-8") + b"\n")
        self.file.flush()
        line = self.file.readline()
        if not line:
            raise IspsimError("ispsim closed the control connection")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise IspsimError(reply.get("error", "unknown error"))
        return reply

    # --- verbs ---------------------------------------------------------------------------
    def ping(self):
        return self.call("ping")

    def reset(self):
        return self.call("reset")

    def dns_fault(self, name="*", fault="servfail", delay_ms=None):
        """fault: none, servfail, nxdomain, drop, delay, truncate."""
        return self.call("faults.set", service="dns", name=name, fault=fault, delay_ms=delay_ms)

    def smtp_fault(self, stage, host=None, message=None, rcpt=None, reply=None, delay_ms=None,
                   hangup=None):
        """stage: greeting, helo, mail, rcpt, data, dot."""
        return self.call("faults.set", service="smtp", stage=stage, host=host, message=message,
                         rcpt=rcpt, reply=reply, delay_ms=delay_ms, hangup=hangup)

    def clear_faults(self, service=None):
        return self.call("faults.clear", service=service)

    def records(self, kind=None, since=0, limit=None):
        """The records (dicts) of a kind (smtp, violation, delivery, dns), all when None."""
        return self.call("records.read", kind=kind, since=since, limit=limit)["records"]

    def violations(self):
        return [r["violation"] for r in self.records("violation")]

    def mailboxes(self, store):
        return self.call("mailstore.list", store=store)["mailboxes"]

    def messages(self, store, user):
        return self.call("mailstore.list", store=store, user=user)["messages"]

    def read(self, store, user, uid):
        return self.call("mailstore.read", store=store, user=user, uid=uid)["message"]

    def inject(self, store, user, message):
        return self.call("mailstore.inject", store=store, user=user, message=message)["uid"]

    # --- the smarthost's queue ------------------------------------------------------------
    def queue(self):
        return self.call("queue.list")["queue"]

    def flush(self):
        """Retries every deferred message now."""
        return self.call("queue.flush")["flushed"]

    def wait_relayed(self, timeout=10.0):
        """Waits until the smarthost's queue holds nothing but deferred messages (every message
        was tried at least once and is relayed, bounced or deferred); returns the queue."""
        import time
        deadline = time.monotonic() + timeout
        while True:
            q = self.queue()
            if all(not j["active"] and j["attempts"] > 0 for j in q) or time.monotonic() > deadline:
                return q
            time.sleep(0.01)

    # --- the dial-up link (link: its name; None: the world's first) -------------------------
    def link_up(self, link=None):
        return self.call("link.up", link=link)

    def link_down(self, link=None):
        return self.call("link.down", link=link)

    def link_dial(self, link=None, now=None):
        """Dial-on-demand (now=True: dial at once as well)."""
        return self.call("link.dial", link=link, now=now)

    def link_profile(self, link=None, clear=None, **settings):
        """settings: latency, jitter, bandwidth, cut_after, cut_at ("dot"/"none"), cut_times,
        stall_after, slow_close, random_cut, random_cut_max, seed, dial_delay, idle, tick."""
        return self.call("link.profile", link=link, clear=clear, **settings)

    def link_hangup(self, link=None):
        """Ends the call now (closing what goes through the link)."""
        return self.call("link.hangup", link=link)

    def link_stats(self, link=None):
        return self.call("link.stats", link=link)
