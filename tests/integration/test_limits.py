#!/usr/bin/env python3
"""Domain connection limits, macros, greylist and rate-limit reactions
(DESIGN 5.3, issue 4), measured at the simulator (sessions per client IP and
per MX, message and connection times), with MX records from dnsmasq.

Phase 1, simultaneous limits (one mailing, enough work everywhere):
  big.test (+ sub.big.test)  limit -> big.test simultaneous 4 (one budget for
                             the domain and its subdomain, across all IPs),
                             and 127.0.0.11 -> big.test simultaneous 1
                             (the most restrictive wins for that IP)
  a.test, b.test             limit -> $ab simultaneous 3 (a domain set: one
                             budget across both domains and their two MX)
  y1.test, y2.test           limit -> mx:*.yahoodns.test simultaneous 2
  c.test                     limit stream:trio -> c.test simultaneous 2
  d.test                     no limit: the default, 10 per (IP, MX) pair
Phase 2, rates: e.test messages per connection 5; f.test 7200 messages per
  hour (one every 0.5 s); g.test 3600 connections per hour (one a second).
Phase 3, greylisting: grey.test greylists for 10 s; limit greylist 3 s
  double, max 5 s: retries 3 s, 5 s, 5 s later, from the same IP.
Phase 4, rate-limit replies lower the pair's concurrency; it recovers.
Phase 5, a limit changed through the API applies at once."""
import collections
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from sluicetest import Harness, check  # noqa: E402

IPS = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]


def peaks(events, key):
    """Peak concurrent sessions per key(event) from connect/close records."""
    live, peak = collections.Counter(), collections.Counter()
    for ev in sorted(events, key=lambda r: (r["ts"], r["type"] == "connect")):
        k = key(ev)
        if k is None:
            continue
        live[k] += 1 if ev["type"] == "connect" else -1
        peak[k] = max(peak[k], live[k])
    return peak


def main():
    with Harness("limits") as h:
        p = h.smtp_port
        mx = [("big.test", "mx.big.test", 10), ("sub.big.test", "mx.big.test", 10),
              ("a.test", "mx.a.test", 10), ("b.test", "mx.b.test", 10),
              ("y1.test", "mta1.yahoodns.test", 10), ("y2.test", "mta2.yahoodns.test", 10),
              ("c.test", "mx.c.test", 10), ("d.test", "mx.d.test", 10),
              ("e.test", "mx.e.test", 10), ("f.test", "mx.f.test", 10),
              ("g.test", "mx.g.test", 10), ("grey.test", "mx.grey.test", 10),
              ("rl.test", "mx.rl.test", 10), ("h.test", "mx.h.test", 10)]
        hosts = [("mx.big.test", "127.0.0.21"), ("mx.a.test", "127.0.0.22"),
                 ("mx.b.test", "127.0.0.23"), ("mta1.yahoodns.test", "127.0.0.24"),
                 ("mta2.yahoodns.test", "127.0.0.25"), ("mx.c.test", "127.0.0.26"),
                 ("mx.d.test", "127.0.0.27"), ("mx.e.test", "127.0.0.28"),
                 ("mx.f.test", "127.0.0.29"), ("mx.g.test", "127.0.0.30"),
                 ("mx.grey.test", "127.0.0.31"), ("mx.rl.test", "127.0.0.32"),
                 ("mx.h.test", "127.0.0.33")]
        h.start_dns(mx, hosts)
        prov = ""
        for name, doms, ip, extra in (
                ("big", "big.test, sub.big.test", "127.0.0.21", "latency_ms = 20\n"),
                ("a", "a.test", "127.0.0.22", "latency_ms = 20\n"),
                ("b", "b.test", "127.0.0.23", "latency_ms = 20\n"),
                ("y1", "y1.test", "127.0.0.24", "latency_ms = 20\n"),
                ("y2", "y2.test", "127.0.0.25", "latency_ms = 20\n"),
                ("c", "c.test", "127.0.0.26", "latency_ms = 20\n"),
                ("d", "d.test", "127.0.0.27", "latency_ms = 20\n"),
                ("e", "e.test", "127.0.0.28", ""),
                ("f", "f.test", "127.0.0.29", ""),
                ("g", "g.test", "127.0.0.30", ""),
                ("grey", "grey.test", "127.0.0.31", "greylist = 10\n"),
                ("rl", "rl.test", "127.0.0.32", "rate_limit = 15/3\nlatency_ms = 10\n"),
                ("h", "h.test", "127.0.0.33", "latency_ms = 20\n")):
            prov += "[provider %s]\ndomains = %s\nmx = %s:%d\n%s\n" % (name, doms, ip, p, extra)
        h.start_sim(prov)
        h.write_config()
        h.start_serve()
        h.cli("stream", "add", "trio", *sum((["--ip", ip] for ip in IPS), []))
        h.cli("list", "create", "l", "--from", "l@sluice.test", "--stream", "trio")
        h.cli("macro", "set", "ab", "a.test", "b.test")
        h.cli("limit", "add", "--target", "big.test", "--simultaneous", "4")
        h.cli("limit", "add", "--source", "127.0.0.11", "--target", "big.test", "--simultaneous", "1")
        h.cli("limit", "add", "--target", "$ab", "--simultaneous", "3")
        h.cli("limit", "add", "--target", "mx:*.yahoodns.test", "--simultaneous", "2")
        h.cli("limit", "add", "--source", "stream:trio", "--target", "c.test", "--simultaneous", "2")
        h.cli("limit", "add", "--target", "e.test", "--messages-per-connection", "5")
        h.cli("limit", "add", "--target", "f.test", "--messages-per-hour", "7200")
        h.cli("limit", "add", "--target", "g.test", "--connections-per-hour", "3600",
              "--messages-per-connection", "1")
        h.cli("limit", "add", "--target", "grey.test", "--greylist-interval", "3",
              "--greylist-function", "double", "--greylist-max", "5")
        msg = os.path.join(h.dir, "m.eml")
        with open(msg, "w") as f:
            f.write("From: l@sluice.test\nSubject: limits\n\nbody\n")

        def send(counts, name, during=None):
            csv = os.path.join(h.dir, name + ".csv")
            with open(csv, "w") as f:
                for d, n in counts.items():
                    for i in range(n):
                        f.write("%s%d@%s\n" % (name, i, d))
            seg = name
            h.cli("member", "import", "l", csv)
            h.cli("segment", "add", "l", seg, *sum((["--domain", d] for d in counts), []))
            mid = h.cli("mailing", "send", "l", msg, "--segment", seg, json_out=True)["id"]
            if during:
                during(mid)
            return h.wait_done(mid, 300)

        def explain_until(mid, email, words, timeout=20):
            """explain ADDR until its reason has every one of words."""
            deadline = time.time() + timeout
            last = ""
            while time.time() < deadline:
                r = h.cli("explain", email, "--mailing", str(mid), json_out=True, check=False)
                last = r.get("reason", "") if isinstance(r, dict) else ""
                if all(w in last for w in words):
                    return last
                time.sleep(0.2)
            raise AssertionError("explain %s never said %s (last: %r)" % (email, words, last))

        # Phase 1 ------------------------------------------------------------
        m = send({"big.test": 150, "sub.big.test": 50, "a.test": 80, "b.test": 80,
                  "y1.test": 60, "y2.test": 60, "c.test": 80, "d.test": 600}, "p1")
        check(m["counts"]["sent"] == m["counts"]["total"], "phase 1: everything delivered")
        ev = h.records("connect") + h.records("close")
        mxip = lambda r: r["mx"].split(":")[0]
        per_mx = peaks(ev, mxip)
        per_pair = peaks(ev, lambda r: (r["client_ip"], mxip(r)))
        set_ab = peaks(ev, lambda r: "ab" if mxip(r) in ("127.0.0.22", "127.0.0.23") else None)
        yh = peaks(ev, lambda r: "y" if mxip(r) in ("127.0.0.24", "127.0.0.25") else None)
        print("peaks per MX:", dict(per_mx))
        check(per_mx["127.0.0.21"] == 4, "big.test (+subdomain): simultaneous 4 held and reached")
        check(per_pair[("127.0.0.11", "127.0.0.21")] == 1, "the most restrictive limit wins for 127.0.0.11")
        check(set_ab["ab"] == 3, "$ab: one budget of 3 across both domains and MX hosts")
        check(yh["y"] == 2, "mx:*.yahoodns.test: one budget of 2 across both MX")
        check(per_mx["127.0.0.26"] == 2, "stream:trio -> c.test: 2 across the stream's IPs")
        dpairs = [per_pair[(ip, "127.0.0.27")] for ip in IPS]
        check(max(dpairs) == 10 and per_mx["127.0.0.27"] <= 30, "d.test: the default 10 per pair (%s)" % dpairs)

        # Phase 2 ------------------------------------------------------------
        t0 = time.time()
        seen = {}

        def explain_f(mid):
            seen["f"] = explain_until(mid, "p27@f.test", ["limit", "messages per hour", "next slot"])
        m = send({"e.test": 40, "f.test": 8, "g.test": 5}, "p2", explain_f)
        print("explain:", seen["f"])
        check("limit" in seen.get("f", ""), "explain names the limit holding a waiting recipient and the next slot")
        check(m["counts"]["sent"] == 53, "phase 2: everything delivered")
        closes = [r for r in h.records("close") if r["mx"].startswith("127.0.0.28:")]
        msgs_per_conn = [r.get("messages", 0) for r in closes]
        print("e.test messages per connection:", msgs_per_conn)
        check(closes and max(msgs_per_conn) <= 5 and sum(msgs_per_conn) == 40,
              "e.test: no connection carried more than 5 messages")
        ft = sorted(r["ts"] for r in h.received() if r["rcpt"].endswith("@f.test"))
        gaps = [b - a for a, b in zip(ft, ft[1:])]
        print("f.test gaps (ms):", gaps)
        check(min(gaps) >= 450 and (ft[-1] - ft[0]) >= 7 * 500 - 100,
              "f.test: 7200 messages per hour = one every 0.5 s, no burst")
        gt = sorted(r["ts"] for r in h.records("connect") if r["mx"].startswith("127.0.0.30:"))
        ggaps = [b - a for a, b in zip(gt, gt[1:])]
        print("g.test connection gaps (ms):", ggaps)
        check(len(gt) == 5 and min(ggaps) >= 950, "g.test: 3600 connections per hour = one a second")

        # Phase 3 ------------------------------------------------------------
        m = send({"grey.test": 3}, "p3")
        check(m["counts"]["sent"] == 3, "greylisted recipients all delivered")
        rej = collections.defaultdict(list)
        for r in h.records("reject"):
            if r.get("reason") == "greylist":
                rej[r["rcpt"]].append((r["ts"], r["client_ip"]))
        acc = {r["rcpt"]: (r["ts"], r["client_ip"]) for r in h.received() if r["rcpt"].endswith("@grey.test")}
        for rcpt, tries in rej.items():
            times = [t for t, _ in tries] + [acc[rcpt][0]]
            gaps = [round((b - a) / 1000.0, 1) for a, b in zip(times, times[1:])]
            print(rcpt, "greylist retry gaps (s):", gaps)
            # 3 s, then 6 s capped to 5 s, then 12 s capped to 5 s. A retry
            # never comes early; the upper margin absorbs a loaded machine
            # (uncapped, the third wait would be 12 s).
            want = (3, 5, 5)
            check(len(gaps) == 3 and all(w - 0.2 <= g <= w + 1.4 for g, w in zip(gaps, want)),
                  "%s: retries after 3 s, then 6 s capped to 5 s, then 5 s" % rcpt)
            check(len({ip for _, ip in tries} | {acc[rcpt][1]}) == 1, "%s: every retry from the same IP" % rcpt)

        # Phase 4 ------------------------------------------------------------
        def report_rl(mid):
            deadline = time.time() + 30
            while time.time() < deadline:
                doms = h.cli("report", "domains", json_out=True)["domains"]
                hit = [d for d in doms if d["domain"] == "rl.test" and d.get("limit")
                       and "rate limited" in d["limit"]["why"]]
                if hit:
                    seen["rl"] = hit[0]["limit"]["why"]
                    return
                time.sleep(0.2)
        m = send({"rl.test": 120}, "p4", report_rl)
        print("report domains:", seen.get("rl"))
        check("rl" in seen, "report domains shows the rate-limit reaction holding rl.test")
        check(m["counts"]["sent"] == 120, "rate-limited recipients all delivered in the end")
        log = h.serve_log()
        lowered = re.findall(r"event=rate_limited src=(\S+) mx=127.0.0.32 sessions=(\d+) allowed_before=(\d+) allowed=(\d+)", log)
        check(lowered and all(int(a) < int(b) or int(b) == 1 for _, _, b, a in lowered),
              "rate-limit replies lowered the pair's concurrency (%d times)" % len(lowered))
        grew = [l for l in log.splitlines() if "mx=127.0.0.32" in l and
                ("event=rate_limit_window" in l or "event=rate_limit_recovered" in l)]
        last_rl = max(i for i, l in enumerate(log.splitlines()) if "event=rate_limited" in l and "mx=127.0.0.32" in l)
        later = [l for i, l in enumerate(log.splitlines()) if i > last_rl and "mx=127.0.0.32" in l and
                 ("event=rate_limit_window" in l or "event=rate_limit_recovered" in l)]
        print("window growth events:", len(grew), "after the last rate-limit reply:", len(later))
        check(grew and later, "concurrency grew back as deliveries succeeded")

        # Phase 5 ------------------------------------------------------------
        lid = h.cli("limit", "add", "--target", "h.test", "--simultaneous", "1", json_out=True)["id"]
        before = len(h.records("connect"))
        m = send({"h.test": 60}, "p5a")
        ev = (h.records("connect") + h.records("close"))
        hp = peaks([r for r in ev if r["mx"].startswith("127.0.0.33:")], lambda r: "h")
        check(hp["h"] == 1, "a limit added through the API applies without restart")
        h.cli("limit", "edit", str(lid), "--simultaneous", "3")
        time.sleep(3)  # sessions of the first mailing close when idle (2 s)
        mark = time.time() * 1000
        m = send({"h.test": 150}, "p5b")
        ev = [r for r in h.records("connect") + h.records("close")
              if r["mx"].startswith("127.0.0.33:") and r["ts"] >= mark]
        hp = peaks(ev, lambda r: "h")
        check(hp["h"] == 3, "an edited limit applies at once (peak %d)" % hp["h"])
        del before, t0
        check(h.stop(h.serve_proc) == 0, "serve exits 0")


if __name__ == "__main__":
    main()
