#!/usr/bin/env bash
# scripts/bench/counts.sh: where a proxy's CPU goes, as counts per request
# (issue 16; method and results in docs/benchmarks.md, "Counts per request").
#
# Wall-clock req/s moves with whatever else runs on a shared machine; counts
# per request (system calls, EAGAIN reads, context switches, migrations,
# wake-ups, GC cycles) do not, or much less. For each proxy named, this starts
# three emulated nodes and the proxy, loads it with wrk and counts, with
# `perf stat -p` on every thread of the proxy, the kernel events of the run,
# then divides by wrk's request count. The proxies run one after the other,
# each afresh.
#
#   scripts/bench/counts.sh [proxy[=binary] ...]    (default: mosparo-lb fasthttp-min nginx)
#
# proxy: mosparo-lb (bin/mosparo-lb, or the binary after =, e.g. an A/B
# build), fasthttp-min (scripts/bench/minproxy) or nginx (scripts/bench/
# nginx.conf.in, COUNTS_GOMAXPROCS workers; its recv and epoll_wait are counted
# as read and epoll). Knobs (environment):
#   COUNTS_PIN=none      none: all share both CPUs (the shared-core setting);
#                        split: proxy on CPU 0, wrk and nodes on CPU 1
#   COUNTS_WORKLOAD=login   login (GET /login), post, css (the 12 KiB CSS)
#   COUNTS_DURATION=5 COUNTS_CONNS=32 COUNTS_THREADS=1   wrk -d / -c / -t
#   COUNTS_GOMAXPROCS=2  the proxy's GOMAXPROCS ("" = Go's own choice)
#   COUNTS_ENV="GOGC=200"  more environment for the proxy
#   COUNTS_NICE=-10      as root: nice of everything started
#   COUNTS_PORT_BASE=18580
#   COUNTS_OF=proxy      nodes: count (or record) the three nodes instead, behind
#                        each proxy in turn (their cost per request differs by
#                        proxy on shared cores, docs/benchmarks.md)
#   COUNTS_RECORD=dir    instead of counting, record call graphs of each
#                        proxy (perf record -g -F 1999) to dir/<proxy>.data;
#                        only req/s and p99 are printed then. Side by side:
#                        perf report -i dir/mosparo-lb.data --no-children
#                        (build unstripped binaries for symbols)
#   COUNTS_SCHED=dir     instead of counting, record the scheduler on every
#                        CPU (perf sched record -a) to dir/<proxy>.sched and
#                        print, per request, each group's (proxy, nodes, wrk,
#                        other) CPU, switch-ins and run-queue delay, and the
#                        wake-ups between groups (scripts/bench/sched.py);
#                        perf sched latency/timehist -i the file for more
# Needs perf (linux-perf), wrk, go; run after `make build`, as root (the
# syscall tracepoints).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

PIN=${COUNTS_PIN:-none}
WORKLOAD=${COUNTS_WORKLOAD:-login}
DURATION=${COUNTS_DURATION:-5}
CONNS=${COUNTS_CONNS:-32}
THREADS=${COUNTS_THREADS:-1}
GMP=${COUNTS_GOMAXPROCS-2}
NICE=${COUNTS_NICE:--10}
BASE=${COUNTS_PORT_BASE:-18580}
[[ $# -gt 0 ]] || set -- mosparo-lb fasthttp-min nginx

die() { echo "counts: $*" >&2; exit 1; }
for t in perf wrk curl; do command -v "$t" >/dev/null || die "$t not found"; done
command -v go >/dev/null || PATH=/usr/local/go/bin:$PATH
[[ -x bin/mosparo-node ]] || die "run make build first"
case $PIN in
split) PIN_PROXY=(taskset -c 0) PIN_LOAD=(taskset -c 1) ;;
none) PIN_PROXY=() PIN_LOAD=() ;;
*) die "COUNTS_PIN must be split or none" ;;
esac
NICE_CMD=()
[[ $NICE == 0 || $(id -u) != 0 ]] || NICE_CMD=(nice -n "$NICE")

DIR=$(mktemp -d /tmp/mosparo-counts.XXXXXX)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$DIR"
}
trap cleanup EXIT

wait_port() {
	local i
	for i in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	die "nothing listens on $1"
}

CGO_ENABLED=0 go build -trimpath -o "$DIR/minproxy" ./scripts/bench/minproxy
NODES=()
for i in 1 2 3; do
	"${NICE_CMD[@]}" "${PIN_LOAD[@]}" bin/mosparo-node -addr "127.0.0.1:$((BASE + i))" -name "n$i" >/dev/null 2>&1 &
	PIDS+=($!) NODES+=("127.0.0.1:$((BASE + i))")
done
for i in 1 2 3; do wait_port $((BASE + i)); done
UUID=0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6a
case $WORKLOAD in
login) URLPATH=/login WARGS=() ;;
post) URLPATH=/api/v1/frontend/check-form-data WARGS=(-s "$ROOT/scripts/bench/check-form-data.lua") ;;
css) URLPATH=$(curl -s -o /dev/null -w '%{redirect_url}' "http://${NODES[0]}/resources/$UUID.css" | sed 's|^http://[^/]*||') WARGS=() ;;
*) die "COUNTS_WORKLOAD must be login, post or css" ;;
esac
PORT=$((BASE + 10))
sed -e "s|@LB_PORT@|$PORT|" -e "s|@NODE1_PORT@|$((BASE + 1))|" -e "s|@NODE2_PORT@|$((BASE + 2))|" \
	-e "s|@NODE3_PORT@|$((BASE + 3))|" -e "s|@LB_POLICY@|round_robin|" scripts/bench/mosparo-lb.yaml.in >"$DIR/lb.yaml"

EVENTS=task-clock,context-switches,cpu-migrations,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_writev
EVENTS+=,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_futex,syscalls:sys_enter_nanosleep,syscalls:sys_enter_poll
EVENTS+=,syscalls:sys_enter_ppoll,syscalls:sys_enter_sched_yield,syscalls:sys_enter_getsockopt,sched:sched_wakeup

echo "== counts per request: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), workload $WORKLOAD, pinning $PIN, GOMAXPROCS=${GMP:-default}${COUNTS_ENV:+ $COUNTS_ENV}, wrk -t$THREADS -c$CONNS -d${DURATION}s; uptime:$(uptime | sed 's/.*load/ load/')"
printf '%-26s %8s %6s %6s %6s %6s %6s %6s %6s %6s %6s %6s %6s %6s %6s %6s %6s %6s %6s %6s\n' proxy req/s us/req cs migr read EAGAIN write writev epoll futex nslp poll ppoll yield wakeup gc idle resch p99
for spec in "$@"; do
	name=${spec%%=*} bin=${spec#*=}
	[[ $bin != "$spec" ]] || bin=
	label=$name${bin:+:${bin##*/}} # A/B builds: mosparo-lb=/tmp/lb-new prints as mosparo-lb:lb-new
	env=(env GODEBUG=gctrace=1)
	[[ -z $GMP ]] || env+=("GOMAXPROCS=$GMP")
	# shellcheck disable=SC2206 # COUNTS_ENV is a list of NAME=value
	env+=(${COUNTS_ENV:-})
	case $name in
	mosparo-lb) "${NICE_CMD[@]}" "${PIN_PROXY[@]}" "${env[@]}" "${bin:-bin/mosparo-lb}" run -config "$DIR/lb.yaml" >"$DIR/$name.log" 2>"$DIR/$name.err" & ;;
	nginx)
		sed -e "s|@DIR@|$DIR|g" -e "s|@NGINX_PORT@|$PORT|" -e "s|@NODE1_PORT@|$((BASE + 1))|" -e "s|@NODE2_PORT@|$((BASE + 2))|" \
			-e "s|@NODE3_PORT@|$((BASE + 3))|" -e "s|@NGINX_POLICY@||" -e "s|@WORKERS@|${GMP:-$(nproc)}|" \
			scripts/bench/nginx.conf.in >"$DIR/nginx.conf"
		: >"$DIR/nginx-modules.conf"
		: >"$DIR/nginx-extra.conf"
		"${NICE_CMD[@]}" "${PIN_PROXY[@]}" nginx -e "$DIR/nginx-error.log" -c "$DIR/nginx.conf" >"$DIR/$name.log" 2>"$DIR/$name.err" & ;;
	fasthttp-min) "${NICE_CMD[@]}" "${PIN_PROXY[@]}" "${env[@]}" "${bin:-$DIR/minproxy}" -listen "127.0.0.1:$PORT" "${NODES[@]}" >"$DIR/$name.log" 2>"$DIR/$name.err" & ;;
	*) die "unknown proxy $name" ;;
	esac
	pid=$!
	PIDS+=("$pid")
	wait_port "$PORT"
	"${NICE_CMD[@]}" "${PIN_LOAD[@]}" wrk -t"$THREADS" -c"$CONNS" -d2s "${WARGS[@]}" "http://127.0.0.1:$PORT$URLPATH" >/dev/null
	gc0=$(grep -c '^gc ' "$DIR/$name.err" || true)
	pids=$pid
	[[ $name != nginx ]] || pids=$(pgrep -d, -P "$pid"),$pid # the workers and the master
	counted=$pids
	[[ ${COUNTS_OF:-proxy} != nodes ]] || counted=$(IFS=,; echo "${PIDS[*]:0:3}")
	if [[ -n ${COUNTS_SCHED:-} ]]; then
		mkdir -p "$COUNTS_SCHED"
		: >"$DIR/perf.csv"
		perf sched record -a -o "$COUNTS_SCHED/$label.sched" >/dev/null 2>&1 &
	elif [[ -n ${COUNTS_RECORD:-} ]]; then
		mkdir -p "$COUNTS_RECORD"
		: >"$DIR/perf.csv"
		perf record -q -g -F 1999 -o "$COUNTS_RECORD/$label.data" -p "$counted" 2>/dev/null &
	else
		perf stat -x, -o "$DIR/perf.csv" -e "$EVENTS" -e syscalls:sys_exit_read --filter 'ret == -11' \
			-e syscalls:sys_enter_recvfrom -e syscalls:sys_exit_recvfrom --filter 'ret == -11' -e syscalls:sys_enter_epoll_wait -p "$counted" &
	fi
	perf=$!
	# The whole machine: how often a CPU went idle, and the rescheduling
	# interrupts that wake an idle (on a VM: halted) CPU for a woken thread.
	perf stat -a -x, -o "$DIR/perf-sys.csv" -e power:cpu_idle -e irq_vectors:reschedule_entry &
	perfsys=$!
	sleep 0.3
	"${NICE_CMD[@]}" "${PIN_LOAD[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "${WARGS[@]}" "http://127.0.0.1:$PORT$URLPATH" >"$DIR/wrk.out" &
	wrk=$!
	wait "$wrk"
	kill -INT "$perf" "$perfsys"
	wait "$perf" || true
	wait "$perfsys" || true
	gc1=$(grep -c '^gc ' "$DIR/$name.err" || true)
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	sleep 0.2 # nginx's workers leave after the master's signal
	if [[ -n ${COUNTS_SCHED:-} ]]; then
		python3 scripts/bench/sched.py "$label" "$COUNTS_SCHED/$label.sched" "$(grep -Eo '[0-9]+ requests in' "$DIR/wrk.out" | cut -d' ' -f1)" \
			"$pids" "$(IFS=,; echo "${PIDS[*]:0:3}")" "$wrk"
		grep -E 'Requests/sec|^ +(50|99)%' "$DIR/wrk.out" | tr -s ' ' | tr '\n' ';'
		echo
		continue
	fi
	# The counts cover 0.3 s before wrk and a moment after it: idle, nearly nothing.
	python3 - "$label" "$DIR/perf.csv" "$DIR/wrk.out" $((gc1 - gc0)) "$DIR/perf-sys.csv" <<'EOF'
import re, sys
name, csv, wrk, gc = sys.argv[1], sys.argv[2], open(sys.argv[3]).read(), int(sys.argv[4])
sysev = {}
for line in open(sys.argv[5]):
    f = line.strip().split(",")
    if len(f) > 2 and f[0] and f[0][0].isdigit():
        sysev[f[2]] = float(f[0])
reqs = int(re.search(r"(\d+) requests in", wrk).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", wrk).group(1))
p99 = re.search(r"^\s+99%\s+(\S+)", wrk, re.M).group(1)
c = {}
for line in open(csv):
    f = line.strip().split(",")
    if len(f) > 2 and f[0] and f[0][0].isdigit():
        ev = f[2]
        # nginx reads with recv, Go with read: counted together.
        ev = {"syscalls:sys_exit_read": "EAGAIN", "syscalls:sys_exit_recvfrom": "EAGAIN",
              "syscalls:sys_enter_recvfrom": "syscalls:sys_enter_read",
              "syscalls:sys_enter_epoll_wait": "syscalls:sys_enter_epoll_pwait"}.get(ev, ev)
        c[ev] = c.get(ev, 0) + float(f[0])
def per(ev, scale=1.0):
    return f"{c.get(ev, 0) / reqs * scale:6.2f}"
cols = [per("task-clock", 1e3), per("context-switches"), per("cpu-migrations"), per("syscalls:sys_enter_read"),
        per("EAGAIN"), per("syscalls:sys_enter_write"), per("syscalls:sys_enter_writev"),
        per("syscalls:sys_enter_epoll_pwait"), per("syscalls:sys_enter_futex"),
        per("syscalls:sys_enter_nanosleep"), per("syscalls:sys_enter_poll"), per("syscalls:sys_enter_ppoll"),
        per("syscalls:sys_enter_sched_yield"), per("sched:sched_wakeup"), f"{gc / reqs * 1e4:6.2f}",
        # cpu_idle fires on entering and on leaving idle.
        f"{sysev.get('power:cpu_idle', 0) / 2 / reqs:6.2f}", f"{sysev.get('irq_vectors:reschedule_entry', 0) / reqs:6.2f}"]
print(f"{name:<26} {rps:8.0f} " + " ".join(cols) + f" {p99:>6}")
EOF
done
echo "(per request; us/req = task-clock, the proxy's CPU; EAGAIN = reads that found nothing; gc = GC cycles per 10^4 requests;"
echo " idle = times a CPU of the machine went idle, resch = rescheduling interrupts on the machine, both for everything running)"
