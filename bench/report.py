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
Issue 15's TLS rows (tls-*, stls-*) are set against the one-core TLS
ceilings (okserver: sessions, sfserver: RETR); the rows ending in -2c
(the server on both cores) against posuto's one-core row and Dovecot's
-2c row; and a CPU-time model (server CPU per operation, measured in
the window from /proc, by process) says what each server would sustain
on 4, 16 and 64 cores.
Only the Python standard library is used.
"""
import argparse
import datetime
import json
import statistics
import sys

CEILING = {"session": "ok", "retr": "sf", "fair": "sf"}
TARGET_CEILING = 0.85      # one-core TLS: posuto >= 85% of each ceiling
TARGET_SELF = 1.7          # 2 cores vs posuto's own one-core figure
TARGET_DOVECOT = 2.5       # 2 cores vs Dovecot on the same 2 cores
MODEL_CORES = (1, 4, 16, 64)
# Dovecot's processes that exist once per instance, whatever the cores:
# each is a serial part (it can use one core at most).
DOVECOT_SERIAL = ("dovecot", "auth", "anvil", "log", "config", "stats")


def is_tls(scen):
    return scen.startswith(("tls-", "stls-", "tls-ecdsa", "stls-ecdsa"))


def ceiling_of(scen):
    if is_tls(scen):
        if scen.endswith("c") and scen.rsplit("-", 1)[-1][:-1].isdigit():
            return None                 # -2c: single-threaded ceilings do not apply
        if "-idle-" in scen:
            return None
        return "sf" if "-retr-" in scen else "ok"
    if scen.startswith("session-sha512"):
        return None
    return CEILING.get(scen.split("-")[0])


def metric_of(scen):
    """(key, unit, higher_is_better, label) for a scenario name."""
    if is_tls(scen):
        if "-retr-" in scen:
            return ("mbps", "MB/s", True, "MB/s payload")
        if "-idle-" in scen:
            return ("pss_per_conn_kib", "KiB", False, "PSS KiB/session")
        return ("rate", "sessions/s", True, "sessions/s")
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


def run_ops(g, mkey):
    """Operations in one load-generator run: MB of RETR payload, or
    sessions; 0 for other metrics."""
    if mkey == "mbps":
        return (g.get("payload_bytes") or 0) / 1e6
    if mkey == "rate":
        return g.get("sessions") or 0
    return 0


def op_cpu(run, mkey):
    """(server CPU seconds per operation, {process name: seconds per op})
    of one run: per session, or per MB of RETR payload; None without the
    in-window figure."""
    g = run.get("gen", {})
    cpu = g.get("srv_cpu_win_s")
    ops = run_ops(g, mkey)
    if cpu is None or ops <= 0:
        return None
    return cpu / ops, {k: v / ops for k, v in (g.get("srv_cpu_by") or {}).items()}


def gen_cpu(run, mkey):
    """The load generator's own CPU seconds per operation in one run (its
    loadgen_cpu_pct is of one core over the window), or None."""
    g = run.get("gen", {})
    pct, win = g.get("loadgen_cpu_pct"), g.get("window_s")
    if pct is None or not win:
        return None
    ops = run_ops(g, mkey)
    return pct / 100.0 * win / ops if ops > 0 else None


def shared_bound(ent, cores):
    """Operations per second that N cores shared by server and load
    generator allow at best: every op costs both their CPU, so
    N / (server CPU/op + generator CPU/op), from the same runs."""
    s, g = ent.get("cpu_per_op"), ent.get("gen_cpu_per_op")
    if not s or not g:
        return None
    return cores / (s + g)


def find_row(rows, scen):
    for r in rows:
        if r["scenario"] == scen:
            return r
    return None


def srv_med(row, srv):
    return row["servers"].get(srv, {}).get("median") if row else None


def tls_summary(rows, a):
    """Targets of issue 15: one-core TLS vs the ceilings, and the -Nc rows."""
    lines, data = [], {"ceiling": [], "scaling": []}
    tls1 = [r for r in rows if is_tls(r["scenario"]) and r.get("ceiling")]
    if tls1:
        lines.append("one-core TLS, posuto as %% of the same-run ceiling (target >= %.0f%%); by rate,"
                     % (100 * TARGET_CEILING))
        lines.append("and by CPU per operation (ceiling's CPU/op / posuto's: the same comparison"
                     " without the share of the core each got on a busy machine):")
        for r in tls1:
            f = r.get("posuto_of_ceiling")
            pc = r["servers"].get("posuto", {}).get("cpu_per_op")
            cc = r["servers"].get(r["ceiling"]["server"], {}).get("cpu_per_op")
            fc = cc / pc if pc and cc else None
            verdict = "-" if f is None else ("ok" if f >= TARGET_CEILING else "BELOW")
            vc = "-" if fc is None else ("ok" if fc >= TARGET_CEILING else "BELOW")
            lines.append("  %-26s rate %s %-5s  CPU/op %s %s" % (
                r["scenario"], "-" if f is None else "%5.1f%%" % (100 * f), verdict,
                "-" if fc is None else "%5.1f%%" % (100 * fc), vc))
            data["ceiling"].append({"scenario": r["scenario"], "of_ceiling": f, "verdict": verdict,
                                    "of_ceiling_cpu": fc, "verdict_cpu": vc})
    scaled = [r for r in rows if is_tls(r["scenario"]) and ceiling_of(r["scenario"]) is None
              and r["scenario"].endswith("c") and "-idle-" not in r["scenario"]]
    if scaled:
        loops = "EventLoops=%s" % a.scale_cores if a.event_loops == "1" else \
            "ONE event loop (this posuto does not take EventLoops)"
        lines.append("scaling: server on %s cores (posuto %s), load generator on the same cores:"
                     % (a.scale_cores, loops))
        lines.append("  %-26s %-12s %-12s %-12s %-22s %-24s %s" % (
            "row", "posuto Nc", "posuto 1c", "dovecot Nc", "vs own 1c (>= %.1fx)" % TARGET_SELF,
            "vs dovecot Nc (>= %.1fx)" % TARGET_DOVECOT,
            "shared-core bound (x own 1c rate, x 1c by CPU/op)"))
        cores = int(a.scale_cores)
        for r in scaled:
            scen = r["scenario"]
            one = find_row(rows, scen.rsplit("-", 1)[0])
            unit = r["unit"]
            p2, p1, d2 = srv_med(r, "posuto"), srv_med(one, "posuto"), srv_med(r, "dovecot")
            self_x = p2 / p1 if p2 and p1 else None
            dov_x = p2 / d2 if p2 and d2 else None
            # The most the cores allow posuto with popload on them too.
            bound = shared_bound(r["servers"].get("posuto", {}), cores)
            bound_x = bound / p1 if bound and p1 else None
            # and against what the one-core row's CPU per op allows (1 /
            # CPU per op): unlike its rate, not lowered by a busy core
            c1 = (one or {}).get("servers", {}).get("posuto", {}).get("cpu_per_op")
            bound_cx = bound * c1 if bound and c1 else None
            bcell = "-" if bound is None else "%s (%s, %s)" % (
                fmt(bound, unit), "-" if bound_x is None else "%.2fx" % bound_x,
                "-" if bound_cx is None else "%.2fx" % bound_cx)

            def verdict(x, t):
                return "-" if x is None else "%.2fx %s" % (x, "ok" if x >= t else "BELOW")
            lines.append("  %-26s %-12s %-12s %-12s %-22s %-24s %s" % (
                scen, fmt(p2, unit), fmt(p1, unit), fmt(d2, unit),
                verdict(self_x, TARGET_SELF), verdict(dov_x, TARGET_DOVECOT), bcell))
            data["scaling"].append({"scenario": scen, "posuto": p2, "posuto_1core": p1,
                                    "dovecot": d2, "vs_own_1core": self_x, "vs_dovecot": dov_x,
                                    "shared_bound": bound, "shared_bound_vs_own_1core": bound_x,
                                    "shared_bound_vs_1core_cpu": bound_cx})
        lines.append("  shared-core bound: %d / (posuto's CPU/op + popload's CPU/op), both from the"
                     " same -%dc runs: what any" % (cores, cores))
        lines.append("  server of posuto's CPU/op could reach with the load generator on the same"
                     " cores; a target above it cannot be met here.  \"1c by CPU/op\": against"
                     " 1 / the one-core row's CPU/op.")
    return {"text": "\n".join(lines), "data": data}


def cpu_model(rows, a):
    """What each server would sustain on N cores, from its CPU per operation.
    Model: capacity(N) = min(N / cpu_per_op, 1 / serial_per_op), where
    serial_per_op is the CPU per operation of the busiest part that exists
    once (Dovecot: master, auth, anvil, log, config, stats are one process
    each; posuto without EventLoops: its one loop, i.e. all of it); the
    rest is assumed to spread over cores without loss.  The kernel's part
    is what the server was charged (system time) on loopback."""
    def pick(prefix, exclude=()):
        best = None
        for r in rows:
            sc = r["scenario"]
            if not sc.startswith(prefix) or any(x in sc for x in exclude):
                continue
            tail = sc[len(prefix):]
            if not tail.isdigit():
                continue            # -2c rows and others
            if best is None or int(tail) > int(best["scenario"][len(prefix):]):
                best = r
        return best
    sfx = "" if a.cert == "rsa" else "-ecdsa"
    ops = [("plain session", pick("session-c"), "session", 1e3, "ms"),
           ("TLS session, full", pick("tls%s-full-c" % sfx), "session", 1e3, "ms"),
           ("TLS session, resumed", pick("tls%s-resumed-c" % sfx), "session", 1e3, "ms"),
           ("plain RETR", pick("retr-c"), "MB", 1e3, "ms/MB"),
           ("TLS RETR", pick("tls%s-retr-c" % sfx), "MB", 1e3, "ms/MB")]
    lines, data = [], []
    hdr = "  %-42s %-8s %-12s %-12s" % ("operation (row)", "server", "CPU/op", "serial/op") + \
        "".join(" %-11s" % ("%d core%s" % (n, "s" if n > 1 else "")) for n in MODEL_CORES)
    for name, row, unit, scale, cu in ops:
        if row is None:
            continue
        for srv in ("posuto", "dovecot"):
            e = row["servers"].get(srv)
            if not e or not e.get("cpu_per_op"):
                continue
            total = e["cpu_per_op"]
            by = e.get("cpu_per_op_by", {})
            if srv == "dovecot":
                serial = max([by.get(k, 0) for k in DOVECOT_SERIAL] + [0])
            elif a.event_loops == "1":
                serial = 0.0        # assumed: loops share nothing on the hot path
            else:
                serial = total      # one event loop does all the connection work
            caps = []
            for n in MODEL_CORES:
                c = n / total
                if serial > 0:
                    c = min(c, 1 / serial)
                caps.append(c)
            u = "sessions/s" if unit == "session" else "MB/s"
            lines.append("  %-42s %-8s %-12s %-12s" % (
                "%s (%s)" % (name, row["scenario"]), srv, "%.3f %s" % (total * scale, cu),
                "%.3f %s" % (serial * scale, cu)) +
                "".join(" %-11s" % fmt(c, u) for c in caps))
            data.append({"operation": name, "scenario": row["scenario"], "server": srv,
                         "cpu_per_op_s": total, "serial_per_op_s": serial, "unit": unit,
                         "by_process": by,
                         "capacity": {str(n): c for n, c in zip(MODEL_CORES, caps)}})
    if not lines:
        return {"text": "", "data": data}
    head = ["CPU-time model: server CPU per operation in the window (user+system, all its",
            "processes), capacity(N cores) = min(N / CPU_per_op, 1 / serial_per_op).",
            "serial = the busiest part that exists once: Dovecot's master/auth/anvil/log/config/",
            "stats processes; posuto's one event loop (all of it) unless EventLoops was taken (%s)."
            % ("taken: serial assumed 0" if a.event_loops == "1" else "it was not"),
            "Kernel: the system time the server was charged on loopback; a NIC's receive path",
            "and interrupts are extra and scale only with a multi-queue NIC (RSS).",
            hdr.replace("operation (row)", "operation (row)")]
    return {"text": "\n".join(head + lines), "data": data}


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
    ap.add_argument("--event-loops", default="0",
                    help="1 if posuto took Pop3Server.EventLoops (several loops)")
    ap.add_argument("--scale-cores", default="2")
    ap.add_argument("--cert", default="rsa")
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
                          "list_end_ms", "wanted", "tls_full", "tls_resumed", "srv_cpu_win_s"):
                v = med([value(r, extra) for r in rs])
                if v is not None:
                    ent[extra] = v
            cpu = [r["server_cpu_s"] / value(r, mkey) for r in rs
                   if r.get("server_cpu_s") and value(r, mkey)]
            if cpu and a.base is not None:
                ent["cpu_per_unit"] = med(cpu)
            # server CPU per operation inside the window (popload --server-pid)
            per_op = [op_cpu(r, mkey) for r in rs]
            if any(x is not None for x in per_op):
                ent["cpu_per_op"] = med([x[0] for x in per_op if x])
                by = {}
                for x in per_op:
                    if x:
                        for k, v in x[1].items():
                            by.setdefault(k, []).append(v)
                ent["cpu_per_op_by"] = {k: med(v) for k, v in by.items()}
            gc = [x for x in (gen_cpu(r, mkey) for r in rs) if x is not None]
            if gc:
                ent["gen_cpu_per_op"] = med(gc)
            hs = [(value(r, "tls_full") or 0) + (value(r, "tls_resumed") or 0) for r in rs]
            if sum(hs):
                ent["resumed_pct"] = 100.0 * sum(value(r, "tls_resumed") or 0 for r in rs) / sum(hs)
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
        ceil = ceiling_of(scen)
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
            if "-resumed-" in row["scenario"] and e.get("resumed_pct") is not None \
                    and e["resumed_pct"] < 95:
                s += " (only %.0f%% resumed)" % e["resumed_pct"]
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
    extra = tls_summary(rows, a)
    model = cpu_model(rows, a)
    for block in (extra["text"], model["text"]):
        if block:
            print()
            print(block)
    if errors:
        print("\nVERIFICATION ERRORS: %d (see run log)" % errors)
    if cmp_errors:
        print("\nDovecot errors: %d (its own limits; see its cells)" % cmp_errors)

    res = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": a.machine, "dovecot_version": a.dovecot,
        "smoke": a.smoke == "1", "reps": a.reps, "duration_s": a.duration,
        "errors": errors, "dovecot_errors": cmp_errors, "rows": rows, "table": table,
        "tls": extra["data"], "cpu_model": model["data"],
        "tls_text": extra["text"], "cpu_model_text": model["text"],
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
