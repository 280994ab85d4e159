#!/usr/bin/env python3
"""End to end: 10,000 members over 20 domains, a three-IP stream, MX records
from a real DNS server (dnsmasq), simulated providers on loopback.

Checks: every deliverable member receives exactly one message, from one of
the stream's IPs, with all three IPs used and personalised; unknown users
fail with the provider's reply; the counts of `mailing show` add up; the
attempt log has source IP, MX IP and reply text for every attempt; no
(source IP, MX IP) pair ever had more than 10 simultaneous sessions."""
import collections
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from sluicetest import Harness, check  # noqa: E402

MEMBERS = int(os.environ.get("SLUICE_TEST_MEMBERS", "10000"))
DOMAINS = ["d%02d.test" % i for i in range(20)]
IPS = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]


def main():
    with Harness("delivery") as h:
        mx, hosts = [], [("mx1.alpha.test", "127.0.0.21"), ("mx2.alpha.test", "127.0.0.22"),
                         ("mx.beta.test", "127.0.0.23")]
        # aonly.test has no MX, only an A record (implicit MX); nullmx.test
        # publishes a null MX (RFC 7505); nx.test does not exist.
        hosts.append(("aonly.test", "127.0.0.23"))
        mx.append(("nullmx.test", ".", 0))
        for i, d in enumerate(DOMAINS):
            if i < 10:
                mx += [(d, "mx1.alpha.test", 10), (d, "mx2.alpha.test", 10)]
            else:
                mx.append((d, "mx.beta.test", 5))
        h.start_dns(mx, hosts)
        p = h.smtp_port
        h.start_sim(
            "[provider alpha]\ndomains = %s\nmx = 127.0.0.21:%d, 127.0.0.22:%d\n\n"
            "[provider beta]\ndomains = %s, aonly.test\nmx = 127.0.0.23:%d\nunknown_users = ^nouser\n"
            % (", ".join(DOMAINS[:10]), p, p, ", ".join(DOMAINS[10:]), p))
        h.write_config()
        h.start_serve()

        h.cli("stream", "add", "trio", "--ip", IPS[0], "--ip", IPS[1] + "=mta2.sluice.test",
              "--ip", IPS[2])
        h.cli("list", "create", "big", "--from", "list@sluice.test", "--stream", "trio")
        csv = os.path.join(h.dir, "members.csv")
        unknown = set()
        with open(csv, "w") as f:
            f.write("email,name\n")
            for i in range(MEMBERS):
                d = DOMAINS[i % len(DOMAINS)]
                local = "user%d" % i
                if i % len(DOMAINS) >= 10 and i % 97 == 0:
                    local = "nouser%d" % i
                    unknown.add("%s@%s" % (local, d))
                f.write("%s@%s,Member %d\n" % (local, d, i))
            f.write("implicit@aonly.test,Implicit\nnobody@nullmx.test,Null\nghost@nx.test,Ghost\n")
        extra = 3
        dnsfail = {"nobody@nullmx.test", "ghost@nx.test"}
        r = h.cli("member", "import", "big", csv, json_out=True)
        check(r["added"] == MEMBERS + extra, "imported %d members" % (MEMBERS + extra))
        r = h.cli("member", "import", "big", csv, json_out=True)
        check(r["added"] == 0 and r["existing"] == MEMBERS + extra, "a second import adds nothing")

        msg = os.path.join(h.dir, "msg.eml")
        with open(msg, "w") as f:
            f.write("From: List <list@sluice.test>\nTo: {{name}} <{{email}}>\n"
                    "Subject: Hello {{name}}\n\nHi {{name}}, this is for {{email}}.\n")
        r = h.cli("mailing", "send", "big", msg, json_out=True)
        mid = r["id"]
        m = h.wait_done(mid, timeout=600)
        c = m["counts"]
        print("counts:", c)
        total = sum(c[k] for k in ("pending", "inflight", "sent", "deferred", "failed",
                                   "expired", "skipped", "suppressed"))
        all_members = MEMBERS + extra
        deliverable = all_members - len(unknown) - len(dnsfail)
        check(c["total"] == all_members and total == all_members, "mailing counts add up to the total")
        check(c["sent"] == deliverable, "every deliverable member sent (%d)" % c["sent"])
        check(c["failed"] == len(unknown) + len(dnsfail), "unknown users and dead domains failed (%d)" % c["failed"])
        rows = h.query("SELECT email, stage, code, category FROM attempt WHERE mailing_id = ? AND stage = 'dns'", (mid,))
        print("dns failures:", rows)
        check({r[0] for r in rows} == dnsfail and all(r[3] == "invalid_domain" for r in rows),
              "NXDOMAIN and null MX fail as invalid_domain at stage dns")
        check(("nobody@nullmx.test", "dns", 556, "invalid_domain") in rows, "null MX answers 556 (RFC 7505)")

        got = h.received()
        per_rcpt = collections.Counter(r["rcpt"] for r in got)
        dups = [a for a, n in per_rcpt.items() if n > 1]
        check(not dups, "no member received two copies (dups: %s)" % dups[:5])
        check(len(per_rcpt) == deliverable, "the simulator accepted one message per deliverable member")
        check(per_rcpt.get("implicit@aonly.test") == 1, "a domain without MX is delivered to its A record")
        check(not (set(per_rcpt) & unknown), "no message accepted for unknown users")
        ips = collections.Counter(r["client_ip"] for r in got)
        print("messages per source IP:", dict(ips))
        check(set(ips) == set(IPS), "all three stream IPs were used, and only they")
        sample = [r for r in got if r["rcpt"] == "user1@d01.test"][0]
        check("Subject: Hello Member 1" in sample["message"], "subject personalised")
        check("this is for user1@d01.test" in sample["message"], "body personalised")
        check(sample["mail_from"].endswith("@bounces.sluice.test"), "VERP envelope sender on the bounce domain")
        check(sample["mail_from"] != [r for r in got if r["rcpt"] == "user2@d02.test"][0]["mail_from"],
              "each message has its own envelope sender")

        rows = h.query("SELECT source_ip, mx_ip, text, outcome FROM attempt WHERE mailing_id = ? AND stage != 'dns'", (mid,))
        check(len(rows) >= all_members - len(dnsfail), "one SMTP attempt row or more per recipient (%d)" % len(rows))
        check(all(r[0] in IPS and r[1] and r[2] for r in rows),
              "every SMTP attempt has source IP, MX IP and reply text")
        mxs = collections.Counter(r[1] for r in rows)
        check({"127.0.0.21", "127.0.0.22", "127.0.0.23"} <= set(mxs), "equal-preference MX hosts both used")

        # Connections are logged when they close: idle ones close after
        # `idle` (2 s in the test configuration).
        time.sleep(3.5)
        r = h.cli("report", "streams", json_out=True)
        trio = [s for s in r["streams"] if s["name"] == "trio"][0]
        check(sum(ip["sent"] for ip in trio["ips"]) == deliverable,
              "report streams: sent per IP adds up")
        check(all(ip["connections"] > 0 for ip in trio["ips"] if ip["ip"] in IPS) and
              {ip["ip"] for ip in trio["ips"]} >= set(IPS), "report streams: connections per IP")
        human = h.cli("report", "streams").stdout
        check("127.0.0.12" in human, "report streams prints the IPs")

        code = h.stop(h.serve_proc)
        check(code == 0, "serve exits 0 on SIGTERM")

        # Concurrency: never more than 10 sessions per (source IP, MX IP).
        live, peak = collections.Counter(), collections.Counter()
        events = sorted(h.records("connect") + h.records("close"), key=lambda r: (r["ts"], r["type"] == "connect"))
        for ev in events:
            k = (ev["client_ip"], ev["mx"])
            live[k] += 1 if ev["type"] == "connect" else -1
            peak[k] = max(peak[k], live[k])
        print("peak sessions per pair:", dict(peak))
        check(peak and max(peak.values()) <= 10, "at most 10 simultaneous sessions per pair")


if __name__ == "__main__":
    main()
