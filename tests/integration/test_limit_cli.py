#!/usr/bin/env python3
"""`sluice limit` and `sluice macro` against a real daemon (DESIGN 5.3, 6):
add, list, edit (merge), rm; macros set, replace, list, rm, busy; every
invalid input refused with exit status 1 and one clear line on stderr,
changing nothing; limits and macros survive a restart of the daemon."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from sluicetest import Harness, check  # noqa: E402


def refused(h, args, message):
    r = h.cli(*args, check=False)
    lines = r.stderr.strip().splitlines()
    check(r.returncode == 1 and lines == ["sluice: " + message],
          "%s -> %r (got %d %r)" % (" ".join(args), message, r.returncode, r.stderr))


def main():
    with Harness("limitcli") as h:
        h.write_config()
        h.start_serve()

        r = h.cli("macro", "set", "$big", "gmail.com", "GoogleMail.com")
        check(r.stdout.strip() == "macro $big: 2 domains", "macro set")
        h.cli("macro", "set", "big", "gmail.com", "googlemail.com", "google.com")
        macros = h.cli("macro", "list", json_out=True)["macros"]
        check(macros == [{"name": "big", "domains": ["gmail.com", "googlemail.com",
                                                     "google.com"]}],
              "macro set replaces, domains lower-cased: %r" % macros)
        check("$big" in h.cli("macro", "list").stdout, "macro list shows $big")

        r = h.cli("limit", "add", "--target", "$big", "--simultaneous", "20",
                  "--messages-per-hour", "3600", "--greylist-interval", "4m",
                  "--greylist-function", "double", "--greylist-max", "2h")
        check(r.stdout.strip() == "limit 1 added: any source -> $big", "limit add")
        lim = h.cli("limit", "add", "--target", "mx:*.yahoodns.net", "--source",
                    "stream:default", "--connections-per-hour", "12",
                    "--messages-per-connection", "5", json_out=True)
        check(lim["id"] == 2 and lim["connections_per_hour"] == 12
              and lim["simultaneous"] is None, "limit add --json: %r" % lim)

        out = h.cli("limit", "list").stdout.splitlines()
        check(out[0].split() == ["ID", "SOURCE", "TARGET", "MSG/H", "CONN/H", "SIMUL",
                                 "MSG/CONN", "GREYLIST"], "list header")
        check(out[1].split() == ["1", "any", "$big", "3600", "-", "20", "-", "240s",
                                 "double", "max", "2h"], "row 1: %r" % out[1])
        check(out[2].split() == ["2", "stream:default", "mx:*.yahoodns.net", "-", "12",
                                 "-", "5", "-"], "row 2: %r" % out[2])

        # edit changes the given fields and keeps the others
        h.cli("limit", "edit", "1", "--simultaneous", "5", "--greylist-max", "none")
        l1 = [x for x in h.cli("limit", "list", json_out=True)["limits"] if x["id"] == 1][0]
        check(l1["simultaneous"] == 5 and l1["messages_per_hour"] == 3600
              and l1["greylist_interval"] == 240 and l1["greylist_function"] == "double"
              and l1["greylist_max"] is None, "edit merges: %r" % l1)

        before = h.cli("limit", "list", json_out=True)
        refused(h, ["limit", "add", "--target", "gmail.com", "--simultaneous", "0"],
                "simultaneous connections must be 1 to 100")
        refused(h, ["limit", "add", "--target", "gmail.com", "--simultaneous", "101"],
                "simultaneous connections must be 1 to 100")
        refused(h, ["limit", "add", "--target", "gmail.com", "--messages-per-hour", "-3"],
                "messages per hour must not be negative")
        refused(h, ["limit", "add", "--target", "gmail.com", "--greylist-interval", "4x"],
                '--greylist-interval: "4x" is not a duration (e.g. 240, 90s, 4m, 2h)')
        refused(h, ["limit", "add", "--target", "gmail.com", "--greylist-function", "cube"],
                "unknown greylist function 'cube' (same, double or square)")
        refused(h, ["limit", "add", "--target", "$nope"], "unknown macro $nope")
        refused(h, ["limit", "add", "--source", "stream:x", "--target", "a.com"],
                "no such stream 'x'")
        refused(h, ["limit", "add", "--simultaneous", "3"],
                "limit add: --target is required (a domain, $macro or mx:HOST)")
        refused(h, ["limit", "edit", "99", "--simultaneous", "3"], "no limit 99")
        refused(h, ["limit", "edit", "1", "--simultaneous", "200"],
                "simultaneous connections must be 1 to 100")
        refused(h, ["limit", "rm", "abc"], '"abc" is not a limit id (see `sluice limit list`)')
        refused(h, ["macro", "rm", "big"], "macro $big is used by limit 1")
        refused(h, ["macro", "set", "x", "not a domain"],
                "macro $x: 'not a domain' is not a domain name")
        check(h.cli("limit", "list", json_out=True) == before, "refusals changed nothing")

        for words in (["limit", "add"], ["limit", "edit"], ["limit", "list"],
                      ["limit", "rm"], ["macro", "set"], ["macro", "list"],
                      ["macro", "rm"]):
            r = h.cli(*words, "--help", check=False)
            check(r.returncode == 0 and r.stdout.startswith("usage: sluice " +
                                                            " ".join(words)),
                  "%s --help" % " ".join(words))

        # restart: everything is still there
        h.stop(h.serve_proc)
        h.start_serve()
        check(h.cli("limit", "list", json_out=True) == before, "limits survive a restart")

        r = h.cli("limit", "rm", "1")
        check(r.stdout.strip() == "limit 1 removed", "limit rm")
        refused(h, ["limit", "rm", "1"], "no limit 1")
        check(h.cli("macro", "rm", "$big").stdout.strip() == "macro $big removed",
              "macro rm once unused")
        refused(h, ["macro", "rm", "big"], "no macro $big")
        left = h.cli("limit", "list", json_out=True)["limits"]
        check([x["id"] for x in left] == [2], "one limit left")
        h.stop(h.serve_proc)


if __name__ == "__main__":
    main()
