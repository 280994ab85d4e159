#!/usr/bin/env python3
"""Blocks meeting other failures on the same domain (a regression): the
MX refuses IP 1 at greeting with a blocklist text and IP 2 with a plain
421. The first pair is blocked, the second rests; the recipients wait
(deferred, never failed, never re-queued in a loop), the engine stays
responsive and the log does not run away."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from sluicetest import Harness, check  # noqa: E402


def main():
    with Harness("blockpaths") as h:
        p = h.smtp_port
        h.start_sim(
            "[provider mixed]\ndomains = mixed.test\nmx = 127.0.0.23:%d\n" % p +
            'block = 127.0.0.11 at=greeting text="554 5.7.1 Service unavailable; Client host [127.0.0.11] blocked using zen.spamhaus.org"\n'
            'block = 127.0.0.12 at=greeting text="421 4.3.2 Service not available, closing channel"\n')
        h.write_config()
        h.start_serve()
        h.cli("stream", "add", "duo", "--ip", "127.0.0.11", "--ip", "127.0.0.12")
        h.cli("route", "set", "mixed.test", "127.0.0.23:%d" % p)
        h.cli("list", "create", "l", "--from", "l@sluice.test", "--stream", "duo")
        csv = os.path.join(h.dir, "m.csv")
        with open(csv, "w") as f:
            f.write("\n".join("m%d@mixed.test" % i for i in range(5)) + "\n")
        h.cli("member", "import", "l", csv)
        msg = os.path.join(h.dir, "m.eml")
        with open(msg, "w") as f:
            f.write("From: l@sluice.test\nSubject: x\n\nbody\n")
        mid = h.cli("mailing", "send", "l", msg, json_out=True)["id"]
        time.sleep(6)
        t0 = time.time()
        c = h.mailing(mid)["counts"]
        took = time.time() - t0
        print("counts:", c, "answer in %.2f s" % took)
        check(took < 5, "the daemon still answers")
        check(c["failed"] == 0 and c["sent"] == 0 and c["deferred"] + c["pending"] + c["inflight"] == 5,
              "mixed.test: recipients wait, none failed")
        blocks = h.cli("blocks", "--domain", "mixed.test", json_out=True)["blocks"]
        check([b["source_ip"] for b in blocks] == ["127.0.0.11"], "only the pair refused with a block text is blocked")
        log = h.serve_log()
        rerouted = log.count("outcome=rerouted")
        print("rerouted lines:", rerouted, "log bytes:", len(log))
        check(rerouted < 50 and len(log) < 2000000, "no runaway loop")
        h.cli("mailing", "cancel", str(mid))
        check(h.stop(h.serve_proc) == 0, "serve exits 0")


if __name__ == "__main__":
    main()
