#!/usr/bin/python3
"""report.py - medians and the side-by-side table from run.sh's raw runs.

Reads the raw JSON lines run.sh collected (one per load-generator run),
prints one table (scenario | posuto | dovecot | ratio | ceiling | loadgen
CPU) and writes the same as JSON.  "ratio" is always oriented so that
> 1 means posuto is better (rate: posuto/dovecot; latency, memory, time:
dovecot/posuto).  Exit status 1 if any run of posuto or of a ceiling server
reported errors; Dovecot's errors (say, 10,000 idle sessions on a small box)
are results, shown in its cells.
With --base (run.sh --baseline), "base" is an older posuto run in the
same repetitions, and two columns follow posuto's: "vs base" (the same
orientation, the signed change, and the range of the per-repetition
ratios) and a verdict against --tolerance (idle: against --idle-limit).
Only the Python standard library is used.
"""
import argparse
import datetime
import json
import statistics
import sys

CEILING = {"session": "ok", "retr": "sf", "fair": "sf"}


def metric_of(scen):
    """(key, unit, higher_is_better, label) for a scenario name."""
    if scen.startswith(("lmtp", "deliver")):
        return ("rate", "msgs/s", True, "messages/s")
    if scen.startswith("session-sha512"):
        return ("rate", "sessions/s", True, "sessions/s")
    if scen.startswith("session"):
        return ("rate", "sessions/s", True, "sessions/s")
    if scen.startswith("retr"):
        return ("mbps", "MB/s", True, "MB/s payload")
    if scen.startswith("fair"):
        return ("probe_p99_ms", "ms", False, "NOOP p99 ms")
    if scen.startswith("idle"):
        return ("pss_per_conn_kib", "KiB", False, "PSS KiB/session")
    if scen.startswith("big"):
        return ("first_line_ms", "ms", False, "PASS->1st LIST line ms")
    return ("rate", "", True, "")


def value(run, key):
    if key in run:
        return run[key]
    return run.get("gen", {}).get(key)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v, unit):
    if v is None:
        return "-"
    if unit in ("sessions/s", "msgs/s"):
        return "%.0f/s" % v if v >= 10 else "%.1f/s" % v
    if unit == "MB/s":
        return "%.0f MB/s" % v
    if unit == "KiB":
        return "%.1f KiB" % v
    if unit == "ms":
        return "%.1f ms" % v if v >= 10 else "%.2f ms" % v
    return "%g" % v


def oriented(p, b, higher):
    """posuto against base, > 1 = posuto better."""
    if not p or not b:
        return None
    return p / b if higher else b / p


def vs_base(row, higher, tol, idle_limit):
    """The "vs base" cell and verdict of a row, and the figures behind them.
    Runs are paired by repetition (run.sh interleaves them), so the range
    of the per-repetition ratios shows how much of a change is noise."""
    p = row["servers"].get("posuto", {})
    b = row["servers"].get("base", {})
    r = oriented(p.get("median"), b.get("median"), higher)
    reps = [oriented(x, y, higher) for x, y in zip(p.get("runs", []), b.get("runs", []))]
    reps = [x for x in reps if x is not None]
    out = {"ratio": r, "change_pct": None if r is None else 100 * (r - 1),
           "rep_ratios": reps, "verdict": "-", "cell": "-"}
    if r is not None:
        out["cell"] = "%.2fx %+.1f%%" % (r, 100 * (r - 1))
        if len(reps) > 1:
            out["cell"] += " (%.2f-%.2f)" % (min(reps), max(reps))
    if row["scenario"].startswith("idle"):
        v = p.get("median")
        if v is not None:
            out["verdict"] = ("ok, <= %g KiB" % idle_limit if v <= idle_limit
                              else "OVER %g KiB" % idle_limit)
    elif r is not None:
        if r < 1 - tol / 100:
            out["verdict"] = "REGRESSION %.1f%%" % (100 * (1 - r))
        elif r > 1 + tol / 100:
            out["verdict"] = "better %.1f%%" % (100 * (r - 1))
        else:
            out["verdict"] = "within %g%%" % tol
        if len(reps) > 1 and min(reps) < 1 < max(reps) and not out["verdict"].startswith("within"):
            out["verdict"] += ", reps disagree"   # some repetitions say the opposite
    if p.get("errors") or b.get("errors"):
        out["verdict"] += " (errors)"
    # Server CPU per unit of work (session, MB): on a shared machine a
    # server that got less CPU is slower without being worse; this tells.
    # Warm-up and window are the same for both, so they cancel.
    out["cpu_per_unit"] = None
    if higher:
        pc, bc = p.get("cpu_per_unit"), b.get("cpu_per_unit")
        if pc and bc:
            out["cpu_per_unit"] = bc / pc
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--machine", default="")
    ap.add_argument("--dovecot", default="")
    ap.add_argument("--smoke", default="0")
    ap.add_argument("--reps", default="")
    ap.add_argument("--duration", default="")
    ap.add_argument("--base", default=None, help="what the baseline server is")
    ap.add_argument("--tolerance", type=float, default=5.0, help="percent")
    ap.add_argument("--idle-limit", type=float, default=8.0, help="KiB/session")
    a = ap.parse_args()

    runs = [json.loads(l) for l in open(a.raw) if l.strip()]
    order, groups = [], {}
    errors = cmp_errors = 0
    for r in runs:
        key = (r["scenario"], r["server"])
        if r["scenario"] not in order:
            order.append(r["scenario"])
        groups.setdefault(key, []).append(r)
        n = int(r.get("gen", {}).get("errors", 0) or 0)
        if r["server"] in ("dovecot", "popa3d"):
            cmp_errors += n
        else:
            errors += n

    rows = []
    for scen in order:
        mkey, unit, higher, label = metric_of(scen)
        row = {"scenario": scen, "metric": mkey, "unit": unit,
               "higher_is_better": higher, "servers": {}}
        for srv in ("posuto", "base", "dovecot", "popa3d", "ok", "sf"):
            rs = groups.get((scen, srv))
            if not rs:
                continue
            ent = {
                "median": med([value(r, mkey) for r in rs]),
                "runs": [value(r, mkey) for r in rs],
                "loadgen_cpu_pct": med([value(r, "loadgen_cpu_pct") for r in rs]),
                "errors": sum(int(value(r, "errors") or 0) for r in rs),
            }
            for extra in ("lat_p50_ms", "lat_p99_ms", "probe_p99_ms", "server_cpu_s",
                          "window_s", "pss_before_kib", "pss_after_kib", "held",
                          "list_end_ms", "wanted"):
                v = med([value(r, extra) for r in rs])
                if v is not None:
                    ent[extra] = v
            cpu = [r["server_cpu_s"] / value(r, mkey) for r in rs
                   if r.get("server_cpu_s") and value(r, mkey)]
            if cpu and a.base is not None:
                ent["cpu_per_unit"] = med(cpu)
            row["servers"][srv] = ent
        p = row["servers"].get("posuto", {}).get("median")
        d = row["servers"].get("dovecot", {}).get("median")
        ratio = None
        if p and d:
            ratio = p / d if higher else d / p
        row["ratio"] = ratio
        q = row["servers"].get("popa3d", {}).get("median")
        row["ratio_popa3d"] = (p / q if higher else q / p) if p and q else None
        if a.base is not None:
            row["vs_base"] = vs_base(row, higher, a.tolerance, a.idle_limit)
        ceil = CEILING.get(scen.split("-")[0])
        if scen.startswith("session-sha512"):
            ceil = None
        c = row["servers"].get(ceil, {}).get("median") if ceil else None
        row["ceiling"] = {"server": ceil, "median": c} if c is not None else None
        if c and p:
            row["posuto_of_ceiling"] = p / c if higher else c / p
        rows.append(row)

    # ---- table
    with_base = a.base is not None
    # popa3d (the mbox rows): two more columns, only when it ran
    with_popa3d = any("popa3d" in r["servers"] for r in rows)
    if with_base:
        hdr = ["scenario", "posuto", "base", "vs base (reps)", "verdict", "CPU/unit", "dovecot", "ratio",
               "ceiling(s)", "loadgen CPU p/b/d/c"]
    else:
        hdr = ["scenario", "posuto", "dovecot", "ratio", "ceiling(s)", "loadgen CPU p/d/c"]
    if with_popa3d:
        i = hdr.index("ratio") + 1
        hdr[i:i] = ["popa3d", "vs popa3d"]
    lines = []
    for row in rows:
        unit = row["unit"]
        sv = row["servers"]

        def cell(srv):
            e = sv.get(srv)
            if not e:
                return "-"
            s = fmt(e["median"], unit)
            if row["scenario"].startswith("session") and e.get("lat_p50_ms") is not None:
                s += " (%.1f/%.1f ms)" % (e["lat_p50_ms"], e.get("lat_p99_ms", 0))
            if row["scenario"].startswith("idle") and e.get("held") is not None \
                    and e.get("wanted") and e["held"] < e["wanted"]:
                s += " (held %d of %d)" % (e["held"], e["wanted"])
            if row["scenario"].startswith("session-sha512") and e.get("probe_p99_ms") is not None:
                s += " noop99 %.1fms" % e["probe_p99_ms"]
            if e["errors"]:
                s += " ERR%d" % e["errors"]
            return s
        ratio = "%.2fx" % row["ratio"] if row["ratio"] else "-"
        ceiling = "-"
        if row["ceiling"]:
            ceiling = "%s %s" % (row["ceiling"]["server"], fmt(row["ceiling"]["median"], unit))
            if row.get("posuto_of_ceiling"):
                ceiling += " (posuto %.0f%%)" % (100 * row["posuto_of_ceiling"])
        cpus = []
        for srv in ("posuto",) + (("base",) if with_base else ()) + \
                ("dovecot", row["ceiling"]["server"] if row["ceiling"] else None):
            e = sv.get(srv) if srv else None
            v = e.get("loadgen_cpu_pct") if e else None
            cpus.append("-" if v is None else "%.0f%%" % v)
        cpu = "/".join(cpus)
        if any(e.get("loadgen_cpu_pct") and e["loadgen_cpu_pct"] > 90 for e in sv.values()):
            cpu += " SAT"
        name = row["scenario"] + " [" + metric_of(row["scenario"])[3] + "]"
        if with_base:
            vb = row["vs_base"]
            cpu_u = "-" if vb["cpu_per_unit"] is None else "%.2fx" % vb["cpu_per_unit"]
            lines.append([name, cell("posuto"), cell("base"), vb["cell"], vb["verdict"], cpu_u,
                          cell("dovecot"), ratio, ceiling, cpu])
        else:
            lines.append([name, cell("posuto"), cell("dovecot"), ratio, ceiling, cpu])
        if with_popa3d:
            i = hdr.index("ratio") + 1
            lines[-1][i:i] = [cell("popa3d"),
                              "%.2fx" % row["ratio_popa3d"] if row["ratio_popa3d"] else "-"]
    widths = [max(len(x[i]) for x in [hdr] + lines) for i in range(len(hdr))]
    out = []
    out.append(" | ".join(h.ljust(w) for h, w in zip(hdr, widths)))
    out.append("-+-".join("-" * w for w in widths))
    for l in lines:
        out.append(" | ".join(c.ljust(w) for c, w in zip(l, widths)))
    table = "\n".join(out)
    print()
    print("posuto vs Dovecot %s -- %s" % (a.dovecot, a.machine))
    print("medians of %s run(s) x %s s; ratio > 1 = posuto better; session cells: rate (p50/p99 latency);"
          " loadgen CPU: posuto/dovecot/ceiling, SAT = load generator saturated" % (a.reps, a.duration))
    if with_base:
        print("base: %s -- run like posuto, in the same repetitions" % a.base)
        print("vs base > 1 = posuto better (signed change; range of the per-repetition ratios);"
              " verdict: within %g%%, idle <= %g KiB/session;\n"
              "CPU/unit: server CPU per session or MB, base/posuto (> 1 = posuto uses less;"
              " a slower run with the same CPU/unit got less CPU)" % (a.tolerance, a.idle_limit))
    print(table)
    if errors:
        print("\nVERIFICATION ERRORS: %d (see run log)" % errors)
    if cmp_errors:
        print("\nDovecot errors: %d (its own limits; see its cells)" % cmp_errors)

    res = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": a.machine, "dovecot_version": a.dovecot,
        "smoke": a.smoke == "1", "reps": a.reps, "duration_s": a.duration,
        "errors": errors, "dovecot_errors": cmp_errors, "rows": rows, "table": table,
    }
    if with_base:
        res["baseline"] = {"what": a.base, "tolerance_pct": a.tolerance,
                           "idle_limit_kib": a.idle_limit}
        res["regressions"] = [r["scenario"] for r in rows
                              if r["vs_base"]["verdict"].startswith(("REGRESSION", "OVER"))]
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    print("\nresults: %s" % a.out)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
