#!/usr/bin/env python3
"""The pump's window is shared fairly (DESIGN 4, 5.3): a domain held back by
its limit (one message a second here) keeps only its share of the window in
memory, so it cannot fill the window and starve the other domains. With a
window of 100 recipients, 200 recipients of a slow domain and 400 of a fast
one, the fast domain completes while the slow one is still sending, and the
process holds no more than the window."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from sluicetest import Harness, check  # noqa: E402


def main():
    with Harness("window") as h:
        p = h.smtp_port
        h.start_sim("[provider all]\ndomains = slow.test, fast.test\nmx = 127.0.0.21:%d\n" % p)
        h.write_config()
        with open(h.conf) as f:
            conf = f.read().replace("[delivery]\n", "[delivery]\npump_window = 100\n")
        with open(h.conf, "w") as f:
            f.write(conf)
        h.start_serve()
        h.cli("stream", "add", "s", "--ip", "127.0.0.11", "--ip", "127.0.0.12")
        for d in ("slow.test", "fast.test"):
            h.cli("route", "set", d, "127.0.0.21:%d" % p)
        h.cli("limit", "add", "--target", "slow.test", "--messages-per-hour", "3600")
        h.cli("list", "create", "l", "--from", "l@sluice.test", "--stream", "s")
        csv = os.path.join(h.dir, "m.csv")
        with open(csv, "w") as f:
            # interleaved, one slow for every two fast, as a real list mixes domains
            for i in range(200):
                f.write("s%d@slow.test\nf%d@fast.test\nf%d-b@fast.test\n" % (i, i, i))
        h.cli("member", "import", "l", csv)
        msg = os.path.join(h.dir, "m.eml")
        with open(msg, "w") as f:
            f.write("From: l@sluice.test\nSubject: window\n\nbody\n")
        mid = h.cli("mailing", "send", "l", msg, json_out=True)["id"]
        t0 = time.time()
        deadline = t0 + 60
        fast = slow = 0
        peak_mem = 0
        while time.time() < deadline:
            got = h.received()
            fast = sum(1 for r in got if r["rcpt"].endswith("@fast.test"))
            slow = sum(1 for r in got if r["rcpt"].endswith("@slow.test"))
            peak_mem = max(peak_mem, h.mailing(mid)["engine"]["in_memory"])
            if fast == 400:
                break
            time.sleep(0.5)
        took = time.time() - t0
        print("fast.test: %d of 400 after %.1f s; slow.test: %d of 200; peak in memory %d"
              % (fast, took, slow, peak_mem))
        check(fast == 400, "the fast domain completed while the slow one was held by its limit")
        check(slow < 200, "the slow domain was still sending (its limit held)")
        check(peak_mem <= 100, "no more recipients in memory than the window")
        h.cli("mailing", "cancel", str(mid))
        check(h.stop(h.serve_proc) == 0, "serve exits 0")


if __name__ == "__main__":
    main()
