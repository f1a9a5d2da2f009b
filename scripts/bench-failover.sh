#!/usr/bin/env bash
# bench-failover.sh: client-visible VRRP failover of mosparo-lb's vip package
# versus keepalived, in network namespaces (vrrp/FACTS.md section 5 method).
#
# Topology: namespaces A (10.99.0.11, priority 150), B (10.99.0.12, priority
# 100) and a client C (10.99.0.100) on a Linux bridge (STP and multicast
# snooping off); VIP 10.99.0.10/24, VRID 51, multicast, both nodes start as
# BACKUP. For each implementation and each VRRP version / advert interval
# cell (VRRPv3 at 1 s and 100 ms; VRRPv2 with PASS authentication at 1 s,
# keepalived's default version):
#   crash:    SIGSTOP + SIGKILL of A's processes and A's link down (host loss)
#   graceful: SIGTERM to A (priority-0 advert, then B takes over after Skew_Time)
# while C pings the VIP every 10 ms; the outage is the largest gap between
# two replies. mosparo-lb is the vip test binary in helper mode (the same
# Manager the product runs). Needs root, iproute2, ping, keepalived, go.
#
# Usage: scripts/bench-failover.sh [RUNS]   (default 3 runs per cell)
# Optional filters: CELLS="3/1 3/0.1 2/1" (version/advert seconds)
# IMPLS="mosparo-lb keepalived" SCENARIOS="crash graceful".
# Bounded: every wait has a deadline, the whole script a 15-minute cap, and
# an EXIT trap kills what it started and deletes its namespaces.
set -euo pipefail

RUNS=${1:-${RUNS:-3}}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "RUNS must be a positive number" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "needs root (network namespaces)" >&2; exit 2; }
for c in ip ping go tcpdump; do command -v $c >/dev/null || { echo "needs $c" >&2; exit 2; }; done
KEEPALIVED=${KEEPALIVED:-/usr/sbin/keepalived}
[[ -x $KEEPALIVED ]] || { echo "needs keepalived at $KEEPALIVED (apt-get install keepalived)" >&2; exit 2; }

cd "$(dirname "$0")/.."
TMP=$(mktemp -d /tmp/bench-failover.XXXXXX)
P="bf$$"                     # namespace prefix
NS_SW=$P-sw NS_A=$P-a NS_B=$P-b NS_C=$P-c
VIP=10.99.0.10
PGIDS=()                     # process groups we started

# ours PID: the process still runs one of our commands (its arguments name
# $TMP). PIDs are reused: never signal a group whose leader is not ours.
ours() { [[ -r /proc/$1/cmdline ]] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF "$TMP"; }

cleanup() {
	set +e
	for g in "${PGIDS[@]}"; do ours "$g" && kill -KILL -- -"$g" 2>/dev/null; done
	for ns in $NS_A $NS_B $NS_C $NS_SW; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
# Hard cap on the whole run.
main=$$
( trap 'kill $s 2>/dev/null; exit 0' TERM; sleep 900 & s=$!; wait $s
  echo "bench-failover: 15 minute cap reached" >&2; kill -TERM $main ) 2>/dev/null &
WATCHDOG=$!
trap 'kill $WATCHDOG 2>/dev/null; cleanup' EXIT
trap 'exit 143' TERM INT

echo "building the vip helper binary..." >&2
go test -c -o "$TMP/vip.test" ./vip

# --- lab -------------------------------------------------------------------
for ns in $NS_SW $NS_A $NS_B $NS_C; do
	ip netns add "$ns"
	ip -n "$ns" link set lo up
done
ip -n $NS_SW link add br0 type bridge stp_state 0 mcast_snooping 0 forward_delay 0
ip -n $NS_SW link set br0 up
i=0
for pair in "$NS_A 10.99.0.11" "$NS_B 10.99.0.12" "$NS_C 10.99.0.100"; do
	set -- $pair
	ip link add eth0 netns "$1" type veth peer name p$i netns $NS_SW
	ip -n $NS_SW link set p$i master br0 up
	ip -n "$1" addr add "$2/24" dev eth0
	ip -n "$1" link set eth0 up
	i=$((i + 1))
done

now_ms() { local t=$EPOCHREALTIME; echo $(( ${t/./} / 1000 )); }

# wait_until DEADLINE_MS CMD...: poll CMD every 10 ms until it succeeds.
wait_until() {
	local limit=$(( $(now_ms) + $1 )); shift
	until "$@"; do
		(( $(now_ms) < limit )) || return 1
		sleep 0.01
	done
}
has_vip() { ip -n "$1" -o addr show dev eth0 | grep -q " $VIP/"; }
lacks_vip() { ! has_vip "$1"; }

# start_node IMPL NS PRIO ADVERT_S VERSION: starts in its own process group (setsid
# without a fork: the script has no job control), sets NODE to its pid = pgid.
start_node() {
	local impl=$1 ns=$2 prio=$3 adv=$4 ver=$5 dir=$TMP/$2 auth="" kaauth=""
	# VRRPv2 cells use PASS authentication, as most v2 groups in the wild do.
	if [[ $ver == 2 ]]; then
		auth="auth_pass: bench123"
		kaauth=$'authentication {\n    auth_type PASS\n    auth_pass bench123\n  }'
	fi
	mkdir -p "$dir"
	rm -f "$dir"/*.pid # stale pid files of a killed keepalived (pids get reused)
	if [[ $impl == mosparo-lb ]]; then
		cat >"$dir/lb.yaml" <<-EOF
		admin: {listen: "off"}
		vrrp:
		  instances:
		    - name: VI_1
		      interface: eth0
		      virtual_router_id: 51
		      priority: $prio
		      version: $ver
		      advert_interval: ${adv}s
		      virtual_ips: ["$VIP/24"]
		      $auth
		EOF
		VIP_TEST_HELPER_CONFIG=$dir/lb.yaml setsid ip netns exec "$ns" "$TMP/vip.test" -test.run='^$' \
			>"$dir/log" 2>&1 &
	else
		cat >"$dir/keepalived.conf" <<-EOF
		global_defs {
		  vrrp_version $ver
		  router_id $ns
		}
		vrrp_instance VI_1 {
		  state BACKUP
		  interface eth0
		  virtual_router_id 51
		  priority $prio
		  advert_int $adv
		  $kaauth
		  virtual_ipaddress {
		    $VIP/24
		  }
		}
		EOF
		setsid ip netns exec "$ns" "$KEEPALIVED" --dont-fork --log-console --no-syslog --vrrp \
			--use-file "$dir/keepalived.conf" --pid "$dir/k.pid" --vrrp_pid "$dir/v.pid" \
			--checkers_pid "$dir/c.pid" >"$dir/log" 2>&1 &
	fi
	NODE=$!
	disown $NODE # no "Killed" job notices; cleanup kills by pgid
	PGIDS+=($NODE)
}

stop_group() { if ours "$1"; then kill -KILL -- -"$1" 2>/dev/null; fi; return 0; }
# gone PID...: none of the pids runs any more (zombies count as gone, FACTS 6).
gone() {
	local p
	for p; do
		[[ -e /proc/$p/status ]] && ! grep -q '^State:.*Z' /proc/$p/status && return 1
	done
	return 0
}

# outage PINGLOG T0_MS: largest gap (ms) between replies from 1 s before t0 on.
outage() {
	awk -v t0="$2" '
		/bytes from/ { gsub(/[\[\]]/, "", $1); t = $1 * 1000
			if (t < t0 - 1000) next
			if (prev && t - prev > gap) gap = t - prev
			prev = t }
		END { printf "%d\n", gap }' "$1"
}

# one_run IMPL ADVERT SCENARIO VERSION: sets OUTAGE and DETECT (ms).
one_run() {
	local impl=$1 adv=$2 scen=$3 ver=$4 a b ping t0
	ip -n $NS_A link set eth0 up
	ip -n $NS_A addr del $VIP/24 dev eth0 2>/dev/null || true
	ip -n $NS_B addr del $VIP/24 dev eth0 2>/dev/null || true
	start_node "$impl" $NS_A 150 "$adv" "$ver"; a=$NODE
	wait_until 8000 has_vip $NS_A || { echo "A never became master" >&2; return 1; }
	start_node "$impl" $NS_B 100 "$adv" "$ver"; b=$NODE
	# B settles as backup: a few adverts, and it must not hold the VIP.
	sleep "$(awk -v a="$adv" 'BEGIN { print 3 * a + 0.5 }')"
	lacks_vip $NS_B || { echo "B holds the VIP while A is master" >&2; return 1; }
	ip -n $NS_C neigh flush all
	ip netns exec $NS_C ping -c 1 -W 1 $VIP >/dev/null
	# The client sees the multicast adverts too: B's detection time is its
	# first advert minus A's last one (or A's priority-0 one), FACTS 5.
	local cap=$TMP/vrrp.log
	ip netns exec $NS_C tcpdump -l -n -tt -i eth0 'ip proto 112' >"$cap" 2>"$cap.err" &
	local tcpdumppid=$!
	wait_until 3000 grep -q listening "$cap.err" || { echo "tcpdump did not start" >&2; return 1; }
	ping=$TMP/ping.log
	ip netns exec $NS_C ping -D -n -i 0.01 -W 1 $VIP >"$ping" 2>&1 &
	local pingpid=$!
	sleep "$(awk -v a="$adv" 'BEGIN { print 1.5 * a + 0.3 }')"
	t0=$(now_ms)
	ours "$a" || { echo "A died before the test" >&2; return 1; }
	if [[ $scen == crash ]]; then
		kill -STOP -- -"$a"; kill -KILL -- -"$a"
		ip -n $NS_A link set eth0 down
	else
		kill -TERM "$a"
	fi
	wait_until 10000 has_vip $NS_B || { echo "B never took over" >&2; kill $pingpid; return 1; }
	sleep 1
	kill $pingpid $tcpdumppid 2>/dev/null; wait $pingpid $tcpdumppid 2>/dev/null || true
	stop_group "$a"; stop_group "$b"
	wait_until 5000 gone "$a" "$b" || true
	PGIDS=()
	for ns in $NS_A $NS_B; do # keepalived children whose parent went first
		for pid in $(ip netns pids "$ns"); do kill -KILL "$pid" 2>/dev/null; done
	done
	OUTAGE=$(outage "$ping" "$t0")
	DETECT=$(detection "$cap" "$scen")
}

# detection VRRPLOG SCENARIO: ms from A's last advert (crash) or A's
# priority-0 advert (graceful) to B's first advert as master.
detection() {
	awk -v scen="$2" '
		/ IP 10\.99\.0\.11 > / { p = $0; sub(/.*prio /, "", p); sub(/,.*/, "", p)
			if (!firstB) { if (p == 0) zero = $1; else lastA = $1 } }
		/ IP 10\.99\.0\.12 > / && !firstB { firstB = $1 }
		END { ref = (scen == "crash") ? lastA : zero
			if (!firstB || !ref) { print -1; exit }
			printf "%d\n", (firstB - ref) * 1000 + 0.5 }' "$1"
}

# RFC 5798 bound for the backup (priority 100): crash Master_Down_Interval,
# graceful Skew_Time (after the priority-0 advert). RFC 3768 (v2) takes
# Skew_Time in seconds whatever the interval.
rfc_bound() { awk -v a="$1" -v s="$2" -v v="$3" 'BEGIN { skew = 156 * (v == 2 ? 1 : a) / 256 * 1000
	printf "%d\n", (s == "crash") ? 3 * a * 1000 + skew : skew }'; }

results=$TMP/results
: >"$results"
for cell in ${CELLS:-3/1 3/0.1 2/1}; do
	ver=${cell%/*} adv=${cell#*/}
	[[ $ver == 2 || $ver == 3 ]] || { echo "CELLS: version must be 2 or 3 in $cell" >&2; exit 2; }
	for impl in ${IMPLS:-mosparo-lb keepalived}; do
		for scen in ${SCENARIOS:-crash graceful}; do
			vals=() dets=()
			for ((r = 1; r <= RUNS; r++)); do
				one_run $impl $adv $scen $ver || { echo "run failed: $impl v$ver $adv $scen" >&2; cat "$TMP"/$NS_A/log "$TMP"/$NS_B/log >&2 || true; exit 1; }
				vals+=("$OUTAGE") dets+=("$DETECT")
				echo "$impl VRRPv$ver advert ${adv}s $scen run $r: outage ${OUTAGE} ms, detection ${DETECT} ms" >&2
			done
			echo "$impl v$ver ${adv} $scen $(rfc_bound $adv $scen $ver) ${vals[*]} / ${dets[*]}" >>"$results"
		done
	done
done

printf '\nClient outage = largest gap between ping replies (10 ms probes); detection = B'"'"'s first\n'
printf 'advert minus A'"'"'s last advert (crash) or A'"'"'s priority-0 advert (graceful), as the client\n'
printf 'captured them. %d runs per cell, ms, min/avg/max. RFC ok: every detection within bound + 20 ms.\n\n' "$RUNS"
printf '| %-10s | %-4s | %-6s | %-8s | %-20s | %-20s | %-10s | %s\n' implementation VRRP advert scenario outage detection "RFC bound" "RFC ok"
printf '|%s|%s|%s|%s|%s|%s|%s|%s\n' ------------ ------ -------- ---------- ---------------------- ---------------------- ------------ --------
while read -r impl ver adv scen bound rest; do
	awk -v impl="$impl" -v ver="$ver" -v adv="$adv" -v scen="$scen" -v bound="$bound" -v rest="$rest" '
	function stats(list,   n, v, i, x, min, max, sum) {
		n = split(list, v, " "); min = 1e9; max = -1e9; sum = 0
		for (i = 1; i <= n; i++) { x = v[i] + 0; sum += x; if (x < min) min = x; if (x > max) max = x }
		MAX = max; MIN = min
		return sprintf("%5d / %5d / %5d", min, sum / n, max)
	}
	BEGIN {
		split(rest, parts, "/")
		o = stats(parts[1]); d = stats(parts[2]); ok = (MAX <= bound + 20 && MIN >= 0) ? "yes" : "NO"
		printf "| %-10s | %-4s | %-6s | %-8s | %-20s | %-20s | %-10s | %s\n", impl, ver, adv "s", scen, o, d,
			(scen == "crash" ? "MDI " : "skew ") bound, ok }'
done <"$results"
cat <<'EOF'

crash: SIGSTOP+SIGKILL of A's processes and A's link down; the outage lies in
[MDI - advert, MDI] depending on where in the advert cycle A died.
graceful: SIGTERM to A; outage = priority-0 send delay + Skew_Time + GARP.
EOF
