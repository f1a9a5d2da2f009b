#!/bin/sh
# RSS of mosparo-lb holding N idle keep-alive connections, then N half-sent
# requests, with the connection caps raised out of the way and at their
# defaults (issue 11, item 11). Bounded: each phase holds at most 60 s.
# Usage: scripts/conn-rss.sh [N]   (needs 2N+ file descriptors; raised here)
set -eu
N=${1:-10000}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
dir=$(mktemp -d)
trap 'kill $lb 2>/dev/null || true; rm -rf "$dir"' EXIT
go build -o "$dir/mosparo-lb" ./cmd/mosparo-lb
go build -o "$dir/connload" ./scripts/connload
rss() { awk '/^VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$1/status; }
run() { # $1 = label, $2 = extra limits
	cat >"$dir/lb.yaml" <<YAML
listen: [{address: "127.0.0.1:18080"}]
admin: {listen: "off"}
log: {access_log: false, level: error}
timeouts: {client_read: 5m, idle: 5m}
limits: {$2}
YAML
	for mode in idle half; do
	"$dir/mosparo-lb" run -config "$dir/lb.yaml" >/dev/null 2>&1 &
	lb=$!
	sleep 1
	echo "$1: start $(rss $lb)"
		"$dir/connload" -addr 127.0.0.1:18080 -n "$N" -mode $mode -hold 60s >"$dir/out" &
		cl=$!
		i=0
		until grep -q READY "$dir/out" 2>/dev/null || [ $i -ge 600 ]; do sleep 0.1; i=$((i+1)); done
		sleep 1
		echo "$1: $mode $(cat "$dir/out") rss $(rss $lb)"
		kill $cl; wait $cl || true
	kill $lb; wait $lb || true
	done
}
run "caps raised" "max_conns: 1000000, max_conns_per_ip: 1000000"
run "defaults (10000, 256/IP), 40 source IPs" ""
run "max_conns 2000" "max_conns: 2000"
