#!/usr/bin/env python3
"""Measurement and report helper for scripts/bench.sh (stdlib only).

  measure.py run --out F --proxy P --workload W --round N --pid PID [--node-pid PID ...]
                 --timeout S -- wrk ARGS...   (or h2load ARGS... --log-file=PATH)
      Runs wrk (or h2load: latencies from its log file), samples /proc/<pid>/stat (utime+stime of PID and all of its
      descendants: nginx workers; threads are already summed by the kernel)
      and /proc/stat before and after, takes wrk's own CPU from wait4, and
      appends one JSON line to F.
  measure.py mem --out F --proxy P --workload W --pid PID
      Appends the peak RSS (VmHWM summed over PID and its descendants).
  measure.py report F [--markdown]
      Prints one table per workload: medians over the rounds.
"""

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1


def proc_stat(pid):
    """(ppid, utime+stime ticks) of one process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    rest = s[s.rindex(")") + 2:].split()
    return int(rest[1]), int(rest[11]) + int(rest[12])


def tree(root):
    """root and every descendant pid."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st:
                children.setdefault(st[0], []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def all_ticks():
    """{pid: (comm, ticks)} of every process."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            rest = st[st.rindex(")") + 2:].split()
            out[int(d)] = (st[st.index("(") + 1:st.rindex(")")], int(rest[11]) + int(rest[12]))
    return out


def cpu_ticks():
    """[(busy, total)] jiffies per CPU from /proc/stat."""
    out = []
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                v = [int(x) for x in line.split()[1:]]
                out.append((sum(v[:8]) - v[3] - v[4], sum(v[:8])))
    return out


def ticks(pids):
    total = 0
    for p in pids:
        st = proc_stat(p)
        if st:
            total += st[1]
    return total


def system_ticks():
    """(busy, total, irq+softirq) jiffies over all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    total = sum(fields[:8])  # guest time is already in user
    idle = fields[3] + fields[4]
    return total - idle, total, fields[5] + fields[6]


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def ms(v):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v)
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


SIZES = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}


def size_bytes(v):
    """wrk's "123.45MB" (binary units) in bytes."""
    m = re.fullmatch(r"([\d.]+)([KMGT]?B)", v)
    return float(m.group(1)) * SIZES[m.group(2)] if m else None


def parse_wrk(out):
    r = {"rps": None, "requests": None, "p50_ms": None, "p99_ms": None, "non2xx": 0, "sock_errors": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in ([\d.]+\w+), ([\d.]+\w+) read", out)
    if m:
        r["requests"] = int(m.group(1))
        r["read"] = m.group(3)
        b = size_bytes(m.group(3))
        if b is not None and r["requests"]:
            # Bytes wrk read per answer: status line, headers and body.
            r["bytes_per_req"] = b / r["requests"]
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(r"^\s+" + pct + r"%\s+(\S+)", out, re.M)
        if m:
            r[key] = ms(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r["sock_errors"] = sum(int(x) for x in m.groups())
    return r


def parse_h2load(out, log_path):
    """h2load's summary, and p50/p99 from its --log-file (it prints no
    percentiles): one line per request, start us, status, duration us."""
    r = {"rps": None, "requests": None, "p50_ms": None, "p99_ms": None, "non2xx": 0, "sock_errors": 0}
    m = re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", out)
    if m:
        r["requests"] = int(m.group(2))
        r["sock_errors"] = int(m.group(4)) + int(m.group(5)) + int(m.group(6))
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if m:
        r["non2xx"] = int(m.group(3)) + int(m.group(4))
    m = re.search(r"traffic: \S+ \((\d+)\) total", out)
    if m and r["requests"]:
        # Bytes h2load read per answer: frames, HPACK headers and body.
        r["bytes_per_req"] = int(m.group(1)) / r["requests"]
    lat = []
    try:
        with open(log_path) as f:
            for line in f:
                parts = line.split("\t")
                if len(parts) >= 3:
                    lat.append(int(parts[2]) / 1000.0)
        os.unlink(log_path)
    except (OSError, ValueError):
        pass
    if lat:
        lat.sort()
        r["p50_ms"] = lat[len(lat) // 2]
        r["p99_ms"] = lat[min(len(lat) - 1, len(lat) * 99 // 100)]
    return r


def h2load_log(argv):
    """The --log-file path of an h2load command line, else None."""
    if not any(os.path.basename(x) == "h2load" for x in argv):
        return None
    for x in argv:
        if x.startswith("--log-file="):
            return x.split("=", 1)[1]
    return None


def cmd_run(a):
    proxy = tree(a.pid)
    nodes = [p for n in a.node_pid for p in tree(n)]
    all0, c0 = all_ticks(), cpu_ticks()
    p0, n0, (b0, t0, s0) = ticks(proxy), ticks(nodes), system_ticks()
    w0 = time.monotonic()
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen(a.wrk, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + a.timeout
        while True:
            pid, status, ru = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.kill(child.pid, signal.SIGKILL)
                _, status, ru = os.wait4(child.pid, 0)
                break
            time.sleep(0.05)
        child.returncode = 0  # reaped by wait4 above
        log.seek(0)
        out = log.read()
    wall = time.monotonic() - w0
    p1, n1, (b1, t1, s1) = ticks(proxy), ticks(nodes), system_ticks()
    all1, c1 = all_ticks(), cpu_ticks()
    text = out.decode(errors="replace")
    h2log = h2load_log(a.wrk)
    r = parse_h2load(text, h2log) if h2log else parse_wrk(text)
    r.update(kind="run", proxy=a.proxy, workload=a.workload, round=a.round, wall_s=round(wall, 3))
    sec = 1.0 / CLK_TCK
    r["proxy_cpu_s"] = (p1 - p0) * sec
    r["node_cpu_s"] = (n1 - n0) * sec
    r["wrk_cpu_s"] = ru.ru_utime + ru.ru_stime
    # /proc/stat counts every CPU: busy jiffies over total jiffies times NCPU is busy cores.
    busy_cores = (b1 - b0) / max(t1 - t0, 1) * NCPU
    r["busy_cores"] = busy_cores
    # Loopback TCP runs largely in softirq (shown for information).
    r["softirq_cores"] = (s1 - s0) / max(t1 - t0, 1) * NCPU
    r["proxy_procs"] = len(proxy)
    # Which CPU was saturated (with BENCH_PIN=split: CPU 0 proxy, CPU 1 wrk and nodes).
    r["cpu_busy"] = [round((b[0] - a[0]) / max(b[1] - a[1], 1), 3) for a, b in zip(c0, c1)]
    # The busiest processes outside the benchmark, to explain "other".
    ours = set(proxy) | set(nodes) | {os.getpid(), child.pid}
    # (Softirq is not subtracted: tick-based accounting charges it to the task it
    # interrupted as well; processes born and gone within the run are missed.)
    others = sorted(((all1[p][1] - all0[p][1], all1[p][0]) for p in all1
                     if p in all0 and p not in ours and all1[p][1] > all0[p][1]), reverse=True)
    r["other_cores"] = sum(t for t, _ in others) * sec / wall
    r["top_others"] = [[comm, round(t * sec / wall, 2)] for t, comm in others[:3]]
    ok = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and r["rps"] is not None and r["requests"]
    if ok:
        r["cpu_us_per_req"] = r["proxy_cpu_s"] * 1e6 / r["requests"]
    else:
        r["error"] = ("h2load" if h2log else "wrk") + " failed or timed out: " + text[-400:]
    with open(a.out, "a") as f:
        f.write(json.dumps(r) + "\n")
    if ok:
        print(f"  {a.workload:<10} round {a.round}  {a.proxy:<10} {r['rps']:>9.0f} req/s  p50 {fmt_ms(r['p50_ms'])}"
              f"  p99 {fmt_ms(r['p99_ms'])}  {r['cpu_us_per_req']:.1f} CPU us/req"
              f"  errors {r['non2xx'] + r['sock_errors']}  busy {busy_cores:.2f} cores"
              f" (per CPU {'/'.join(f'{x:.2f}' for x in r['cpu_busy'])}; softirq {r['softirq_cores']:.2f},"
              f" other {r['other_cores']:.2f}"
              + "".join(f" {c} {v:.2f}" for c, v in r["top_others"] if v >= 0.05) + ")",
              flush=True)
        return 0
    print(f"  {a.workload} round {a.round} {a.proxy}: {r['error']}", file=sys.stderr, flush=True)
    return 1


def cmd_mem(a):
    kib = 0
    for p in tree(a.pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        kib += int(line.split()[1])
        except OSError:
            pass
    with open(a.out, "a") as f:
        f.write(json.dumps({"kind": "mem", "proxy": a.proxy, "workload": a.workload, "hwm_kib": kib}) + "\n")
    return 0


def fmt_ms(v):
    if v is None:
        return "-"
    if v < 1:
        return f"{v * 1000:.0f}us"
    if v < 100:
        return f"{v:.2f}ms"
    return f"{v:.0f}ms"


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def cmd_report(a):
    runs, mem, meta = [], {}, {}
    with open(a.file) as f:
        for line in f:
            r = json.loads(line)
            if r["kind"] == "run":
                runs.append(r)
            elif r["kind"] == "mem":
                mem[(r["workload"], r["proxy"])] = r["hwm_kib"]
            elif r["kind"] == "meta":
                meta = r
    proxies = meta.get("proxies", ["mosparo-lb", "haproxy", "nginx"])
    workloads = meta.get("workloads", sorted({r["workload"] for r in runs}))
    titles = meta.get("titles", {})
    md = a.markdown
    out = []
    failed = 0
    for w in workloads:
        rows = {}
        for p in proxies:
            rs = [r for r in runs if r["workload"] == w and r["proxy"] == p]
            good = [r for r in rs if "error" not in r]
            failed += len(rs) - len(good)
            rows[p] = {
                "rps": median([r["rps"] for r in good]),
                "p50": median([r["p50_ms"] for r in good]),
                "p99": median([r["p99_ms"] for r in good]),
                "cpu": median([r.get("cpu_us_per_req") for r in good]),
                # With every core busy (shared cores), req/s is the cores the bench
                # gets over this: the nodes' and wrk's cost per request counts too.
                "allcpu": median([(r["proxy_cpu_s"] + r["node_cpu_s"] + r["wrk_cpu_s"]) / r["requests"] * 1e6
                                  for r in good if r.get("requests")]),
                "wire": median([r.get("bytes_per_req") for r in good]),
                "proxy_cores": median([r["proxy_cpu_s"] / r["wall_s"] for r in good]),
                "node_cores": median([r["node_cpu_s"] / r["wall_s"] for r in good]),
                "wrk_cores": median([r["wrk_cpu_s"] / r["wall_s"] for r in good]),
                "softirq": median([r.get("softirq_cores") for r in good]),
                "other": median([r["other_cores"] for r in good]),
                "errors": sum(r["non2xx"] + r["sock_errors"] for r in good),
                "all": [r["rps"] for r in good],
                "hwm": mem.get((w, p)),
                "n": len(good),
            }
        # A yardstick that does not apply to the workload has no runs.
        shown = [p for p in proxies if rows[p]["n"] or p in ("mosparo-lb", "haproxy", "nginx")]
        head = ["proxy", "req/s", "p50", "p99", "CPU us/req", "+nodes+wrk", "B/req read", "peak RSS", "errors",
                "cores: proxy/nodes/wrk/softirq/other", "req/s per round"]
        table = []
        for p in shown:
            x = rows[p]
            table.append([
                p,
                f"{x['rps']:.0f}" if x["rps"] else "-",
                fmt_ms(x["p50"]), fmt_ms(x["p99"]),
                f"{x['cpu']:.1f}" if x["cpu"] else "-",
                f"{x['allcpu']:.1f}" if x["allcpu"] else "-",
                f"{x['wire']:.0f}" if x["wire"] else "-",
                f"{x['hwm'] / 1024:.1f} MiB" if x["hwm"] else "-",
                str(x["errors"]),
                "/".join(f"{x[k]:.2f}" if x[k] is not None else "-"
                         for k in ("proxy_cores", "node_cores", "wrk_cores", "softirq", "other")),
                " ".join(f"{v:.0f}" for v in x["all"]),
            ])
        title = titles.get(w, w)
        if md:
            out.append(f"#### {title}\n")
            out.append("| " + " | ".join(head) + " |")
            out.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|")
            for row in table:
                out.append("| " + " | ".join(row) + " |")
        else:
            out.append(title)
            widths = [max(len(head[i]), *(len(r[i]) for r in table)) for i in range(len(head))]
            out.append("  ".join(h.ljust(widths[i]) if i == 0 else h.rjust(widths[i]) for i, h in enumerate(head)))
            for row in table:
                out.append("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)))
        # fasthttp-min is a yardstick (the bare fasthttp proxy), not a peer.
        peers = [(rows[p]["rps"], p) for p in proxies if p in ("haproxy", "nginx") and rows[p]["rps"]]
        if md:
            out.append("")
        for mine in (p for p in proxies if p.startswith("mosparo-lb")):
            lb = rows[mine]
            if not (lb["rps"] and peers):
                continue
            best_rps, best = max(peers)
            ratio = lb["rps"] / best_rps
            line = f"{mine} / best peer ({best}): req/s x{ratio:.2f}"
            target = meta.get("targets", {}).get(w)
            if target:
                line += f" (target >= x{target:.1f}: {'met' if ratio >= target else 'NOT met'})"
            ng = rows.get("nginx")
            if ng and ng["cpu"] and lb["cpu"]:
                line += f"; CPU/req vs nginx x{lb['cpu'] / ng['cpu']:.2f}"
            hp = rows.get("haproxy")
            if hp and hp["cpu"] and lb["cpu"]:
                line += f", vs haproxy x{lb['cpu'] / hp['cpu']:.2f}"
            for yard in ("fasthttp-min", "h2-floor"):
                fm = rows.get(yard)
                if fm and fm["cpu"] and lb["cpu"]:
                    line += f", vs {yard} x{lb['cpu'] / fm['cpu']:.2f}"
            out.append(line + ("  " if md else ""))
        out.append("")
    print("\n".join(out))
    if failed:
        print(f"{failed} run(s) failed; see the raw results", file=sys.stderr)
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", required=True)
    r.add_argument("--proxy", required=True)
    r.add_argument("--workload", required=True)
    r.add_argument("--round", type=int, required=True)
    r.add_argument("--pid", type=int, required=True)
    r.add_argument("--node-pid", type=int, action="append", default=[])
    r.add_argument("--timeout", type=float, required=True)
    r.add_argument("wrk", nargs="+")
    m = sub.add_parser("mem")
    m.add_argument("--out", required=True)
    m.add_argument("--proxy", required=True)
    m.add_argument("--workload", required=True)
    m.add_argument("--pid", type=int, required=True)
    p = sub.add_parser("report")
    p.add_argument("file")
    p.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    return {"run": cmd_run, "mem": cmd_mem, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
