#!/usr/bin/env python3
"""Mail stream blocks (DESIGN 5.2, issue 3), with the simulator and dnsmasq:

  one.test   MX 127.0.0.21 (10) and 127.0.0.22 (20); blocks stream IP 2
             (127.0.0.12) at its first MX: everything is still delivered
             exactly once over the other pairs, the block holds the reply
             text, and nothing is sent from IP 2 to that MX.
  all.test   blocks every stream IP at greeting until t=20 s: its
             recipients stay pending, no session goes there but probes,
             other domains complete; its blocks are made permanent (never
             probed), survive a restart, and an operator release lets the
             domain complete.
  lift.test  blocks every IP at RCPT until t=8 s: the hourly probe (2 s
             here) releases the blocks and the domain completes by itself.
  full.test / unknown users / dead.test: mailbox-full and user-unknown
             replies, and connection refused, never create a block."""
import collections
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from sluicetest import Harness, check, free_port  # noqa: E402

IPS = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]


def blocks(h, *args):
    return h.cli("blocks", *args, json_out=True)["blocks"]


def wait_for(what, pred, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.3)
    raise AssertionError("timed out waiting for " + what)


def main():
    with Harness("blocks") as h:
        p = h.smtp_port
        dead_port = free_port("127.0.0.29")
        h.start_dns(
            [("one.test", "mx1.one.test", 10), ("one.test", "mx2.one.test", 20),
             ("all.test", "mx.all.test", 10), ("lift.test", "mx.lift.test", 10),
             ("full.test", "mx.full.test", 10), ("ok.test", "mx.ok.test", 10)],
            [("mx1.one.test", "127.0.0.21"), ("mx2.one.test", "127.0.0.22"),
             ("mx.all.test", "127.0.0.23"), ("mx.lift.test", "127.0.0.24"),
             ("mx.full.test", "127.0.0.25"), ("mx.ok.test", "127.0.0.26")])
        blk = 'text="554 5.7.1 Service unavailable; Client host [{ip}] blocked using zen.spamhaus.org"'
        h.start_sim(
            "[provider one]\ndomains = one.test\nmx = 127.0.0.21:%d, 127.0.0.22:%d\n"
            "block = 127.0.0.12 at=rcpt mx=127.0.0.21 %s\n\n" % (p, p, blk) +
            "[provider all]\ndomains = all.test\nmx = 127.0.0.23:%d\n" % p +
            "".join("block = %s at=greeting unblock_after=20 text=\"554 5.7.1 %s: Client host rejected: Access denied\"\n" % (ip, ip) for ip in IPS) +
            "\n[provider lift]\ndomains = lift.test\nmx = 127.0.0.24:%d\n" % p +
            "".join("block = %s at=rcpt unblock_after=8 %s\n" % (ip, blk) for ip in IPS) +
            "\n[provider full]\ndomains = full.test\nmx = 127.0.0.25:%d\n" % p +
            "".join("block = %s at=rcpt text=\"452 4.2.2 The email account that you tried to reach is over quota.\"\n" % ip for ip in IPS) +
            "\n[provider ok]\ndomains = ok.test\nmx = 127.0.0.26:%d\nunknown_users = ^nobody\n" % p)
        t_sim = time.time()
        h.write_config("[blocks]\nprobe_interval = 2s\n")
        h.start_serve()
        h.cli("stream", "add", "trio", *sum((["--ip", ip] for ip in IPS), []))
        h.cli("route", "set", "dead.test", "127.0.0.29:%d" % dead_port)
        h.cli("list", "create", "l", "--from", "l@sluice.test", "--stream", "trio")
        members = collections.defaultdict(list)
        for d, n in (("one.test", 60), ("all.test", 12), ("lift.test", 12),
                     ("full.test", 3), ("ok.test", 30), ("dead.test", 2)):
            for i in range(n):
                members[d].append("m%d@%s" % (i, d))
        members["ok.test"] += ["nobody1@ok.test", "nobody2@ok.test"]
        csv = os.path.join(h.dir, "m.csv")
        with open(csv, "w") as f:
            for d in members:
                f.write("\n".join(members[d]) + "\n")
        h.cli("member", "import", "l", csv)
        msg = os.path.join(h.dir, "m.eml")
        with open(msg, "w") as f:
            f.write("From: l@sluice.test\nSubject: blocks\n\nbody\n")
        mid = h.cli("mailing", "send", "l", msg, json_out=True)["id"]

        # one.test: delivered on the other pairs; the block holds the text.
        def one_done():
            got = [r for r in h.received() if r["rcpt"].endswith("@one.test")]
            return got if len(got) >= 60 else None
        got = wait_for("one.test delivered", one_done)
        per = collections.Counter(r["rcpt"] for r in got)
        check(len(per) == 60 and max(per.values()) == 1, "one.test: every recipient delivered exactly once")
        check(not [r for r in got if r["client_ip"] == "127.0.0.12" and r["mx"].startswith("127.0.0.21:")],
              "one.test: nothing sent from IP 2 to the blocking MX")
        b1 = [b for b in blocks(h, "--domain", "one.test")]
        check(len(b1) == 1 and b1[0]["source_ip"] == "127.0.0.12" and b1[0]["mx_ip"] == "127.0.0.21",
              "one.test: one block of (127.0.0.12, 127.0.0.21)")
        check("zen.spamhaus.org" in b1[0]["reason"], "the block's reason is the reply text")
        check(any(b["id"] == b1[0]["id"] for b in blocks(h, "--ip", "127.0.0.12")) and
              any(b["id"] == b1[0]["id"] for b in blocks(h, "--stream", "trio")),
              "the block shows by domain, by IP and by stream")

        # all.test: fully blocked, its recipients pending, others complete.
        def all_full():
            b = blocks(h, "--domain", "all.test")
            return b if len(b) == 3 else None
        ball = wait_for("three blocks for all.test", all_full)
        dom = wait_for("all.test fully blocked", lambda: [
            d for d in h.cli("report", "domains", json_out=True)["domains"]
            if d["domain"] == "all.test" and d["status"] == "fully_blocked"])
        check(dom[0]["pairs"] == 3 and dom[0]["pairs_blocked"] == 3, "report domains: all.test 3 of 3 pairs blocked")
        for b in ball:
            h.cli("block", "permanent", str(b["id"]))
        probes_then = {b["id"]: b["probes"] for b in blocks(h, "--domain", "all.test")}
        rows = dict(h.query("SELECT r.state, COUNT(*) FROM recipient r WHERE r.mailing_id = ? AND r.domain = 'all.test' GROUP BY 1", (mid,)))
        check(set(rows) <= {"pending", "deferred"} and sum(rows.values()) == 12,
              "all.test: recipients wait in the store (%s)" % rows)
        ex = h.cli("explain", "m0@all.test", "--mailing", str(mid)).stdout
        check("fully blocked" in ex and "3 of 3 pairs" in ex, "explain says the domain is fully blocked")

        # lift.test: probes release it without an operator.
        wait_for("lift.test delivered", lambda: len([r for r in h.received() if r["rcpt"].endswith("@lift.test")]) >= 12, 90)
        released = blocks(h, "--domain", "lift.test", "--released")
        check(released and all(b.get("released_by") == "probe" for b in released),
              "lift.test: the probe released its blocks")
        check(not blocks(h, "--domain", "lift.test"), "lift.test: no block stands")

        # other domains complete; no block from user unknown, mailbox full, refused.
        def others_settled():
            c = dict(h.query("SELECT r.domain || ':' || r.state, COUNT(*) FROM recipient r WHERE mailing_id = ? GROUP BY 1", (mid,)))
            return c.get("ok.test:sent") == 30 and c.get("ok.test:failed") == 2 and c
        wait_for("ok.test settled", others_settled)
        for d in ("ok.test", "full.test", "dead.test"):
            check(not blocks(h, "--domain", d, "--released"), "%s: no block created" % d)
        cats = set(r[0] for r in h.query("SELECT category FROM attempt WHERE mailing_id = ? AND domain = 'full.test'", (mid,)))
        check("mailbox_full" in cats, "full.test: mailbox full classified (%s)" % cats)

        # permanent blocks are not probed.
        time.sleep(5)
        probes_now = {b["id"]: b["probes"] for b in blocks(h, "--domain", "all.test")}
        check(probes_now == probes_then, "permanent blocks were not probed (%s)" % probes_now)
        conns_after = [r for r in h.records("connect") if r["mx"].startswith("127.0.0.23:")]

        # survive a restart.
        check(h.stop(h.serve_proc) == 0, "serve stops cleanly")
        h.start_serve()
        check(len(blocks(h, "--domain", "all.test")) == 3, "blocks survive a restart")
        wait_for("all.test fully blocked after restart", lambda: [
            d for d in h.cli("report", "domains", json_out=True)["domains"]
            if d["domain"] == "all.test" and d["status"] == "fully_blocked"])
        check(h.mailing(mid)["state"] == "sending", "the mailing is neither done nor failed")
        new_conns = [r for r in h.records("connect") if r["mx"].startswith("127.0.0.23:")]
        check(len(new_conns) == len(conns_after), "no session to the fully blocked domain")

        eng = h.mailing(mid)["engine"]
        check(eng["blocked_domains"] == ["all.test"] and not eng["waiting_on_blocks"],
              "a mailing with other recipients waiting on retries is not 'waiting on blocks'")
        h.cli("segment", "add", "l", "onlyall", "--domain", "all.test")
        mid2 = h.cli("mailing", "send", "l", msg, "--segment", "onlyall", json_out=True)["id"]
        eng = wait_for("mailing 2 waiting on blocks",
                       lambda: h.mailing(mid2)["engine"]["waiting_on_blocks"] and h.mailing(mid2)["engine"])
        check(eng["blocked_domains"] == ["all.test"], "a mailing left with a fully blocked domain is 'waiting on blocks'")
        check("waiting on blocks" in h.cli("mailing", "show", str(mid2)).stdout, "mailing show says so")

        # operator release after the provider stopped blocking.
        time.sleep(max(0, 21 - (time.time() - t_sim)))
        h.cli("block", "release", "--domain", "all.test")
        wait_for("all.test delivered", lambda: len([r for r in h.received() if r["rcpt"].endswith("@all.test")]) >= 24, 60)
        check(h.wait_done(mid2, 60)["counts"]["sent"] == 12, "the second mailing completes after the release")
        check(not blocks(h, "--domain", "all.test"), "the operator released every all.test block")
        hist = h.cli("block", "show", str(ball[0]["id"]), json_out=True)
        kinds = [e["kind"] for e in hist["history"]]
        check("created" in kinds and "released" in kinds, "the block's history has created and released (%s)" % kinds)
        h.cli("mailing", "cancel", str(mid))  # full.test and dead.test would wait for max_age
        check(h.stop(h.serve_proc) == 0, "serve exits 0")


if __name__ == "__main__":
    main()
