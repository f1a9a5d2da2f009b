#!/usr/bin/env python3
"""Run-queue delay and hand-offs per request from a `perf sched record -a` file.

Used by scripts/bench/counts.sh (COUNTS_SCHED=dir, issue 16). Reads
`perf sched timehist --state -w` and splits every thread on the machine into
groups by process id: the proxy, the three nodes, wrk, and everything else
("other"; the idle task is left out). For each group, per request: CPU time,
times a thread of it got a CPU (switch-ins), the time its threads were
runnable but waited for a CPU ("sch delay": from the wake-up, or from being
preempted, to running), the mean and 99th percentile of that wait per
switch-in, and the share of switch-outs that were preemptions (state R).
Then the wake-ups per request, waker group -> wakee group: proxy -> proxy
are the proxy handing work from one of its threads to another (Go's futex
wake of an idle M; nginx's workers never wake each other).

    sched.py LABEL PERF_DATA REQUESTS PROXY_PIDS NODE_PIDS WRK_PID
"""
import re
import subprocess
import sys

label, data, reqs = sys.argv[1], sys.argv[2], int(sys.argv[3])
groups = {}
for name, arg in (("proxy", sys.argv[4]), ("nodes", sys.argv[5]), ("wrk", sys.argv[6])):
    for p in arg.split(","):
        if p:
            groups[int(p)] = name

# "  123.456789 [0001]  comm[tid/pid]   wait  delay  run  S" and
# "  123.456789 [0001]  comm[tid/pid]                      awakened: comm[tid/pid]"
task = r"(.*?)\[(\d+)(?:/(\d+))?\]"
sw = re.compile(r"^\s*([\d.]+)\s+\[(\d+)\]\s+" + task + r"\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\S+)")
wk = re.compile(r"^\s*([\d.]+)\s+\[(\d+)\]\s+" + task + r"\s+awakened: " + task)


def group(tid, pid):
    pid = int(pid or tid)
    if pid == 0:
        return None
    return groups.get(pid, "other")


names = ["proxy", "nodes", "wrk", "other"]
run = dict.fromkeys(names, 0.0)
delay = dict.fromkeys(names, 0.0)
ins = dict.fromkeys(names, 0)
preempt = dict.fromkeys(names, 0)
delays = {n: [] for n in names}
wake = {}
t0 = t1 = None
out = subprocess.run(["perf", "sched", "timehist", "--state", "-w", "-i", data],
                     capture_output=True, text=True, check=True).stdout
for line in out.splitlines():
    m = wk.match(line)
    if m:
        a, b = group(m.group(4), m.group(5)), group(m.group(7), m.group(8))
        if a is None:
            a = "irq/idle"
        if b is not None:
            wake[(a, b)] = wake.get((a, b), 0) + 1
        continue
    m = sw.match(line)
    if not m:
        continue
    t = float(m.group(1))
    t0 = t if t0 is None else t0
    t1 = t
    g = group(m.group(4), m.group(5))
    if g is None:
        continue
    d = float(m.group(7))
    run[g] += float(m.group(8))
    delay[g] += d
    ins[g] += 1
    delays[g].append(d)
    if m.group(9) == "R":
        preempt[g] += 1


def pct(v, q):
    if not v:
        return 0.0
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


span = (t1 - t0) if t0 is not None else 0
print(f"-- {label}: {reqs} requests, {span:.2f} s of trace")
print(f"   {'group':<6} {'cpu us/req':>10} {'cores':>6} {'switch-ins/req':>14} {'rq delay us/req':>15} "
      f"{'mean us':>8} {'p99 us':>8} {'max us':>8} {'preempted':>9}")
for g in names:
    n = ins[g] or 1
    print(f"   {g:<6} {run[g] * 1e3 / reqs:10.2f} {run[g] / 1e3 / span if span else 0:6.2f} {ins[g] / reqs:14.2f} "
          f"{delay[g] * 1e3 / reqs:15.2f} {delay[g] * 1e3 / n:8.1f} {pct(delays[g], 0.99) * 1e3:8.1f} "
          f"{pct(delays[g], 1.0) * 1e3:8.1f} {preempt[g] / n:9.2f}")
pairs = sorted(wake.items(), key=lambda kv: -kv[1])
print("   wake-ups/req (waker -> wakee): " + ", ".join(f"{a}->{b} {c / reqs:.2f}" for (a, b), c in pairs if c / reqs >= 0.01))
