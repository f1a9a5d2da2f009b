#!/usr/bin/env bash
# scripts/bench.sh: mosparo-lb vs HAProxy vs nginx on loopback, with wrk
# (issue 2, "Performance"; method and results in docs/benchmarks.md).
#
# Starts three emulated mosparo nodes (bin/mosparo-node), then for each
# workload starts mosparo-lb, haproxy and nginx afresh, warms each up and
# loads them INTERLEAVED (round 1: lb, haproxy, nginx; round 2 starts one
# further along: haproxy, nginx, lb; ...), so drift on a shared machine hits
# all three alike. Prints one table per workload: median req/s, p50, p99, proxy
# CPU microseconds per request (utime+stime of every process and thread of the
# proxy), peak RSS (VmHWM summed over the proxy's processes), and mosparo-lb's
# ratio to the best peer.
#
# Workloads: login (GET /login), post (POST check-form-data), css (GET of the
# 12 KiB hashed CSS, proxied by all three), css-edge (the same URL, but
# mosparo-lb answers it from its edge cache, issue 5; the peers proxy it as in
# css), css-307 (GET /resources/<uuid>.css: mosparo-lb answers mosparo's 307 at
# the edge, the peers proxy it to a node), css-edge-z (the hashed CSS with
# Accept-Encoding: gzip, br: mosparo-lb from its edge entry's stored brotli
# form, nginx from a pre-compressed file with gzip_static (and brotli_static
# when libnginx-mod-http-brotli-static is installed), haproxy proxying to a
# node with "compression algo gzip"). For the three edge workloads the
# script starts its own redis-server on loopback, seeds it with the node's CSS
# exactly as mosparo stores it, and gives mosparo-lb the same config plus
# css_cache (scripts/bench/css-cache.yaml.in).
#
# h2 and h2-css (issue 14): GET /login and the hashed CSS over HTTP/2 with
# TLS, loaded by h2load (nghttp2-client) instead of wrk. The script makes one
# self-signed ECDSA certificate and all three proxies terminate TLS with it
# and speak h2 to the client, HTTP/1.1 to the nodes as in the other
# workloads. Latencies come from h2load's per-request log.
#
# Run by `make bench` after `make build`. Knobs (environment):
#   BENCH_DURATION=10   seconds per measured wrk run
#   BENCH_ROUNDS=3      interleaved rounds per workload (median taken; >= 2)
#   BENCH_WARMUP=2      seconds of unmeasured load per proxy before round 1
#   BENCH_THREADS=1 BENCH_CONNS=32   wrk -t / -c
#   BENCH_POLICY=round_robin         or least_conn (all three proxies alike)
#   BENCH_PIN=split     split: proxy on CPU 0, wrk and nodes on CPU 1;
#                       none: no pinning (everything shares both CPUs: the
#                       shared-core setting of issue 16, as when mosparo-lb
#                       runs on its nodes' hosts); "split none": both, one
#                       full run each (what `make bench` runs)
#   BENCH_PIPELINE=1    css-edge-z only: requests per wrk pipeline (HTTP/1.1
#                       pipelining, scripts/bench/accept-encoding.lua), so
#                       that one wrk thread is not the limit of an edge
#                       answer that costs the proxy less than wrk; every
#                       proxy gets the same pipelined load
#   BENCH_WORKERS=<CPUs> threads of execution of every proxy: haproxy nbthread,
#                       nginx worker_processes (mosparo-lb: see BENCH_LB_GOMAXPROCS). Default the
#                       machine's CPU count, what each runs with unpinned; 1 is
#                       what suits the one CPU each gets with BENCH_PIN=split
#   BENCH_LB_GOMAXPROCS=""  mosparo-lb (and fasthttp-min) alone; default unset:
#                       the binary's own choice, which is Go's from the CPU
#                       mask and cgroup quota (1 under BENCH_PIN=split, the
#                       machine's CPUs unpinned). Forcing 2 Ps onto the one
#                       pinned CPU made the pinned edge p99 5-22 ms (issue 16,
#                       docs/benchmarks.md); n forces n
#   BENCH_WORKLOADS="login post css css-edge css-307 css-edge-z h2 h2-css"
#   BENCH_H2_CONNS=8 BENCH_H2_STREAMS=4  h2 workloads: h2load -c / -m
#                       (connections, and streams in flight on each: 32 in
#                       flight, as wrk's 32 connections)
#   BENCH_PROXIES="mosparo-lb haproxy nginx"
#   BENCH_NGINX_BROTLI=1  css-edge-z: nginx also serves a .br file (brotli_static)
#                       when the module is installed; 0: gzip_static only
#   BENCH_PORT_BASE=18480  nodes on +1..+3, proxies on +10 (lb), +11, +12,
#                       (+13 mosparo-lb-alt, +14 fasthttp-min, +15 h2-floor), redis-server on +20
#   BENCH_NICE=-10      as root: scheduling priority of the whole benchmark (its
#                       autogroup and processes) for the run, so other jobs on a
#                       shared machine disturb it less; 0 leaves it alone
#   BENCH_OUT=dir       keep the raw results (results.jsonl, report.md, configs)
#   BENCH_PROFILE=dir   run mosparo-lb as scripts/bench/lbprof (same daemon code)
#                       and write dir/cpu-<workload>.pprof (go tool pprof -top)
#   BENCH_LB_BIN=path   the mosparo-lb binary to run (default bin/mosparo-lb)
#   BENCH_LB_ALT=path   a second mosparo-lb binary (a change under test), loaded
#                       as "mosparo-lb-alt" in the same interleaved rounds
#   BENCH_MINPROXY=1    also load "fasthttp-min" (scripts/bench/minproxy: round
#                       robin + HostClient.Do, nothing else; GOMAXPROCS as
#                       mosparo-lb's), the floor of a fasthttp proxy on this
#                       machine; a yardstick, not a peer in the ratios
#                       (not in the h2 workloads: it has no TLS)
#   BENCH_H2FLOOR=1     h2 workloads: also load "h2-floor" (scripts/bench/
#                       h2floor: x/net/http2 ServeConn as mosparo-lb runs it,
#                       answering the node's bytes from memory, no proxying),
#                       the floor of x/net/http2 here; a yardstick, not a peer
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

# Several settings ("split none", as `make bench` asks): one full run each,
# one after the other, each with its own report (and BENCH_OUT/<setting>).
if [[ ${BENCH_PIN:-split} == *" "* ]]; then
	rc=0
	for pin in $BENCH_PIN; do
		echo "=== setting BENCH_PIN=$pin: $([[ $pin == split ]] && echo "pinned: each proxy alone on CPU 0, wrk and nodes on CPU 1" || echo "shared cores: every process unpinned, the same niceness and thread counts")"
		BENCH_PIN=$pin BENCH_OUT=${BENCH_OUT:+$BENCH_OUT/$pin} "$0" "$@" || rc=1
		echo
	done
	exit "$rc"
fi

DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-3}
WARMUP=${BENCH_WARMUP:-2}
THREADS=${BENCH_THREADS:-1}
PIPELINE=${BENCH_PIPELINE:-1}
CONNS=${BENCH_CONNS:-32}
POLICY=${BENCH_POLICY:-round_robin}
PIN=${BENCH_PIN:-split}
WORKLOADS=${BENCH_WORKLOADS:-login post css css-edge css-307 css-edge-z h2 h2-css}
H2_CONNS=${BENCH_H2_CONNS:-8}
H2_STREAMS=${BENCH_H2_STREAMS:-4}
LB_ALT=${BENCH_LB_ALT:-}
if [[ -n $LB_ALT ]]; then
	PROXIES=${BENCH_PROXIES:-mosparo-lb mosparo-lb-alt haproxy nginx}
else
	PROXIES=${BENCH_PROXIES:-mosparo-lb haproxy nginx}
fi
[[ ${BENCH_MINPROXY:-0} == 0 || -n ${BENCH_PROXIES:-} ]] || PROXIES+=" fasthttp-min"
[[ ${BENCH_H2FLOOR:-0} == 0 || -n ${BENCH_PROXIES:-} ]] || PROXIES+=" h2-floor"
BASE=${BENCH_PORT_BASE:-18480}
LB_BIN=${BENCH_LB_BIN:-$ROOT/bin/mosparo-lb}
NODE_BIN=$ROOT/bin/mosparo-node
HELPER=$ROOT/scripts/bench/measure.py

die() { echo "bench: $*" >&2; exit 1; }

# Everything is bounded: the whole run gets a hard deadline (the trap below
# still cleans up when timeout sends TERM), every wrk its own.
n_workloads=$(wc -w <<<"$WORKLOADS")
n_proxies=$(wc -w <<<"$PROXIES")
budget=$(( n_workloads * n_proxies * (ROUNDS * (DURATION + 5) + WARMUP + 5) + n_workloads * 30 + 60 ))
if [[ -z ${BENCH_INNER:-} ]]; then
	BENCH_INNER=1 exec timeout -k 10 "$budget" "$0" "$@"
fi

for tool in wrk haproxy nginx curl python3 taskset gzip; do
	command -v "$tool" >/dev/null || die "$tool not found (apt-get install wrk haproxy nginx-light curl python3 util-linux)"
done
[[ -x $LB_BIN && -x $NODE_BIN ]] || die "run make build first ($LB_BIN, $NODE_BIN)"
EDGE=0 # does any workload need the edge cache (and so redis)?
H2=0   # any HTTP/2 workload (and so h2load and a certificate)?
for w in $WORKLOADS; do
	case $w in
	login | post | css) ;;
	css-edge | css-307 | css-edge-z) EDGE=1 ;;
	h2 | h2-css) H2=1 ;;
	*) die "unknown workload $w (login, post, css, css-edge, css-307, css-edge-z, h2, h2-css)" ;;
	esac
done
if ((H2)); then
	for tool in h2load openssl; do
		command -v "$tool" >/dev/null || die "$tool not found (apt-get install nghttp2-client openssl)"
	done
	[[ $H2_CONNS =~ ^[1-9][0-9]*$ && $H2_STREAMS =~ ^[1-9][0-9]*$ ]] || die "BENCH_H2_CONNS and BENCH_H2_STREAMS must be positive numbers"
fi
is_h2() { [[ $1 == h2 || $1 == h2-css ]]; }
if ((EDGE)); then
	for tool in redis-server redis-cli; do
		command -v "$tool" >/dev/null || die "$tool not found (apt-get install redis-server redis-tools)"
	done
fi
(( ROUNDS >= 2 )) || die "BENCH_ROUNDS must be at least 2"
case $POLICY in
round_robin) HAPROXY_POLICY=roundrobin NGINX_POLICY="" ;;
least_conn) HAPROXY_POLICY=leastconn NGINX_POLICY="least_conn;" ;;
*) die "BENCH_POLICY must be round_robin or least_conn" ;;
esac
NCPU=$(nproc)
LB_ENV=(env)
WORKERS=${BENCH_WORKERS:-$NCPU}
[[ $WORKERS =~ ^[1-9][0-9]*$ ]] || die "BENCH_WORKERS must be a positive number"
LB_GOMAXPROCS=${BENCH_LB_GOMAXPROCS-}
[[ -z $LB_GOMAXPROCS ]] || LB_ENV+=("GOMAXPROCS=$LB_GOMAXPROCS")
case $PIN in
split)
	(( NCPU >= 2 )) || die "BENCH_PIN=split needs 2 CPUs"
	PIN_PROXY=(taskset -c 0) PIN_LOAD=(taskset -c 1) ;;
none) PIN_PROXY=() PIN_LOAD=() ;;
*) die "BENCH_PIN must be split or none" ;;
esac

NICE=${BENCH_NICE:--10}
OLD_AUTOGROUP_NICE=
if [[ $NICE != 0 && $(id -u) == 0 ]]; then
	# With sched_autogroup, CPU is shared between sessions first, so the
	# session's autogroup gets the priority too; restored on exit.
	if [[ -w /proc/self/autogroup ]]; then
		OLD_AUTOGROUP_NICE=$(sed -n 's/.* nice //p' /proc/self/autogroup)
		echo "$NICE" >/proc/self/autogroup 2>/dev/null || OLD_AUTOGROUP_NICE=
	fi
	renice -n "$NICE" -p $$ >/dev/null || true
fi

DIR=$(mktemp -d /tmp/mosparo-bench.XXXXXX)
RESULTS=$DIR/results.jsonl
PIDS=() # every process this script started, killed on exit

stop_pid() { # TERM the process and its children (nginx workers), then KILL
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	pkill -TERM -P "$pid" 2>/dev/null || true
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 30); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	pkill -KILL -P "$pid" 2>/dev/null || true
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
	if [[ -n ${BENCH_OUT:-} && -d $DIR ]]; then
		mkdir -p "$BENCH_OUT" && cp -r "$DIR"/. "$BENCH_OUT"/ && echo "bench: raw results in $BENCH_OUT" >&2
	fi
	rm -rf "$DIR"
	[[ -z $OLD_AUTOGROUP_NICE ]] || echo "$OLD_AUTOGROUP_NICE" >/proc/self/autogroup 2>/dev/null || true
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port pid name
	local i
	for i in $(seq 100); do
		port_open "$1" && return 0
		kill -0 "$2" 2>/dev/null || die "$3 exited at start; its log: $(tail -5 "$DIR/$3.log" 2>/dev/null)"
		sleep 0.1
	done
	die "$3 did not listen on 127.0.0.1:$1 within 10s"
}

NODE_PORTS=($((BASE + 1)) $((BASE + 2)) $((BASE + 3)))
declare -A PORT=([mosparo-lb]=$((BASE + 10)) [haproxy]=$((BASE + 11)) [nginx]=$((BASE + 12)) [mosparo-lb-alt]=$((BASE + 13)) [fasthttp-min]=$((BASE + 14)) [h2-floor]=$((BASE + 15)))
REDIS_PORT=$((BASE + 20))
for p in "${NODE_PORTS[@]}" "${PORT[@]}" $(((EDGE)) && echo "$REDIS_PORT"); do
	port_open "$p" && die "127.0.0.1:$p is in use; set BENCH_PORT_BASE"
done

render() { # template output
	sed -e "s|@DIR@|$DIR|g" \
		-e "s|@NODE1_PORT@|${NODE_PORTS[0]}|g" -e "s|@NODE2_PORT@|${NODE_PORTS[1]}|g" \
		-e "s|@NODE3_PORT@|${NODE_PORTS[2]}|g" \
		-e "s|@LB_PORT@|${PORT[mosparo-lb]}|g" -e "s|@HAPROXY_PORT@|${PORT[haproxy]}|g" \
		-e "s|@NGINX_PORT@|${PORT[nginx]}|g" -e "s|@LB_POLICY@|$POLICY|g" \
		-e "s|@HAPROXY_POLICY@|$HAPROXY_POLICY|g" -e "s|@NGINX_POLICY@|$NGINX_POLICY|g" \
		-e "s|@REDIS_PORT@|$REDIS_PORT|g" -e "s|@WORKERS@|$WORKERS|g" \
		"$1" >"$2"
}
render scripts/bench/mosparo-lb.yaml.in "$DIR/mosparo-lb.yaml"
# The edge workloads' config: the same file plus css_cache, nothing else.
render scripts/bench/css-cache.yaml.in "$DIR/css-cache.yaml"
cat "$DIR/mosparo-lb.yaml" "$DIR/css-cache.yaml" >"$DIR/mosparo-lb-edge.yaml"
LB_CONFS="mosparo-lb mosparo-lb-edge"
if ((H2)); then
	# One self-signed certificate for all three (ECDSA P-256, what a
	# browser-facing host would have), and each proxy's h2 config: the
	# same as its HTTP/1.1 one with TLS and h2 on the listener.
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj /CN=mosparo.example -addext subjectAltName=DNS:mosparo.example,IP:127.0.0.1 \
		-keyout "$DIR/tls.key" -out "$DIR/tls.crt" 2>/dev/null || die "openssl cannot make a certificate"
	cat "$DIR/tls.crt" "$DIR/tls.key" >"$DIR/tls.pem"
	sed "/address: \"127.0.0.1:${PORT[mosparo-lb]}\"/a\\    tls: {certificates: [{cert: \"$DIR/tls.crt\", key: \"$DIR/tls.key\"}]}" \
		"$DIR/mosparo-lb.yaml" >"$DIR/mosparo-lb-h2.yaml"
	LB_CONFS+=" mosparo-lb-h2"
fi
for c in $LB_CONFS; do
	sed "s|127.0.0.1:${PORT[mosparo-lb]}\"|127.0.0.1:${PORT[mosparo-lb-alt]}\"|" "$DIR/$c.yaml" >"$DIR/${c/mosparo-lb/mosparo-lb-alt}.yaml"
done
render scripts/bench/haproxy.cfg.in "$DIR/haproxy.cfg"
render scripts/bench/nginx.conf.in "$DIR/nginx.conf"
if ((H2)); then
	sed -e "s|^\(    bind 127.0.0.1:${PORT[haproxy]}\)\$|\1 ssl crt $DIR/tls.pem alpn h2,http/1.1|" \
		-e 's|X-Forwarded-Proto http$|X-Forwarded-Proto https|' "$DIR/haproxy.cfg" >"$DIR/haproxy-h2.cfg"
	sed "s|^\( *listen 127.0.0.1:${PORT[nginx]}\) \(.*\);\$|\1 ssl http2 \2; ssl_certificate $DIR/tls.crt; ssl_certificate_key $DIR/tls.key;|" \
		"$DIR/nginx.conf" >"$DIR/nginx-h2.conf"
	grep -q "alpn h2" "$DIR/haproxy-h2.cfg" && grep -q "ssl http2" "$DIR/nginx-h2.conf" || die "cannot make the h2 configs"
fi
: >"$DIR/nginx-modules.conf"
: >"$DIR/nginx-extra.conf"
BROTLI_STATIC_SO=/usr/lib/nginx/modules/ngx_http_brotli_static_module.so
# css-edge-z: haproxy compresses the node's CSS per request (libslz gzip; 2.6 has no brotli).
cp "$DIR/haproxy.cfg" "$DIR/haproxy-z.cfg"
printf '    compression algo gzip\n    compression type text/css\n' >>"$DIR/haproxy-z.cfg"
HAPROXY_CONF=haproxy NGINX_CONF=nginx
"$LB_BIN" check -config "$DIR/mosparo-lb.yaml" >/dev/null || die "mosparo-lb rejects its config"
"$LB_BIN" check -config "$DIR/mosparo-lb-edge.yaml" >/dev/null || die "mosparo-lb rejects its edge config"
if ((H2)); then
	"$LB_BIN" check -config "$DIR/mosparo-lb-h2.yaml" >/dev/null || die "mosparo-lb rejects its h2 config"
	haproxy -c -q -f "$DIR/haproxy-h2.cfg" || die "haproxy rejects its h2 config"
	nginx -q -t -e "$DIR/nginx-error.log" -c "$DIR/nginx-h2.conf" || die "nginx rejects its h2 config"
fi
PROFILE=${BENCH_PROFILE:-}
command -v go >/dev/null || PATH=/usr/local/go/bin:$PATH
if [[ -n $PROFILE ]]; then
	mkdir -p "$PROFILE" && PROFILE=$(cd "$PROFILE" && pwd)
	GOFLAGS=-trimpath go build -o "$DIR/lbprof" ./scripts/bench/lbprof || die "cannot build scripts/bench/lbprof"
fi
if [[ " $PROXIES " == *" h2-floor "* ]]; then
	CGO_ENABLED=0 go build -trimpath -o "$DIR/h2floor" ./scripts/bench/h2floor || die "cannot build scripts/bench/h2floor"
fi
if [[ " $PROXIES " == *" fasthttp-min "* ]]; then
	CGO_ENABLED=0 go build -trimpath -o "$DIR/minproxy" ./scripts/bench/minproxy || die "cannot build scripts/bench/minproxy"
fi
haproxy -c -q -f "$DIR/haproxy.cfg" || die "haproxy rejects its config"
haproxy -c -q -f "$DIR/haproxy-z.cfg" || die "haproxy rejects its compression config"
nginx -q -t -e "$DIR/nginx-error.log" -c "$DIR/nginx.conf" || die "nginx rejects its config"

echo "== mosparo-lb vs haproxy vs nginx: $(date -u '+%Y-%m-%d %H:%M UTC'), $NCPU CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)), $(uname -r)"
echo "   $("$LB_BIN" version 2>/dev/null | head -1), $(haproxy -v | head -1 | cut -d' ' -f1-3), $(nginx -v 2>&1 | cut -d' ' -f3), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "   wrk -t$THREADS -c$CONNS -d${DURATION}s --latency$( ((PIPELINE == 1)) || echo " (css-edge-z: $PIPELINE pipelined)")$( ((H2)) && echo "; $(h2load --version | head -1) -t$THREADS -c$H2_CONNS -m$H2_STREAMS -D$DURATION over TLS ($(openssl version | cut -d' ' -f1-2)), h2 to the proxies"); $ROUNDS interleaved rounds (median), ${WARMUP}s warm-up; policy $POLICY; pinning $PIN; $WORKERS workers (haproxy nbthread, nginx worker_processes), mosparo-lb GOMAXPROCS=${LB_GOMAXPROCS:-default}; nice $NICE; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# --- nodes -------------------------------------------------------------------
NODE_PIDS=()
for i in 0 1 2; do
	"${PIN_LOAD[@]}" "$NODE_BIN" -addr "127.0.0.1:${NODE_PORTS[$i]}" -name "n$((i + 1))" >"$DIR/node$((i + 1)).log" 2>&1 &
	PIDS+=($!) NODE_PIDS+=($!)
done
for i in 0 1 2; do wait_port "${NODE_PORTS[$i]}" "${NODE_PIDS[$i]}" "node$((i + 1))"; done

UUID=0b6e2a1c-7d3f-4e5a-9c8b-1f2e3d4c5b6a
NODE_URL=http://127.0.0.1:${NODE_PORTS[0]}
css_path=$(curl -s -o /dev/null -w '%{redirect_url}' "$NODE_URL/resources/$UUID.css" | sed 's|^http://[^/]*||')
[[ $css_path == /resources/$UUID/*.css ]] || die "no hashed CSS URL from the node's 307 (got '$css_path')"
css_hash=${css_path##*/} css_hash=${css_hash%.css}

declare -A WPATH=([login]=/login [post]=/api/v1/frontend/check-form-data [css]=$css_path
	[css-edge]=$css_path [css-307]=/resources/$UUID.css [css-edge-z]=$css_path [h2]=/login [h2-css]=$css_path)
declare -A WARGS=([login]="" [post]="-s $ROOT/scripts/bench/check-form-data.lua" [css]="" [css-edge]="" [css-307]=""
	[css-edge-z]="-s $ROOT/scripts/bench/accept-encoding.lua" [h2]="" [h2-css]="")
[[ $PIPELINE =~ ^[1-9][0-9]*$ ]] || die "BENCH_PIPELINE must be a positive number"
((PIPELINE == 1)) || WARGS[css-edge-z]="-s $ROOT/scripts/bench/accept-encoding-pipeline.lua"
WTAIL=() # arguments after the URL (the pipeline script's depth)
((PIPELINE == 1)) || WTAIL=(-- "$PIPELINE")
# req/s ratio to the best peer that the issues ask for (2: >= 1.0, aim 1.2; 5: >= 1.7)
# (14: h2 at or above the best peer)
declare -A WTARGET=([login]=1.0 [post]=1.0 [css]=1.0 [css-edge]=1.7 [css-307]=1.7 [css-edge-z]=1.7 [h2]=1.0 [h2-css]=1.0)
declare -A WTITLE WANSWER
post_body=$(sed -n 's/^wrk.body = "\(.*\)"$/\1/p' scripts/bench/check-form-data.lua)

# probe workload port [curl options]: one request as wrk sends it; prints
# "status bytes", for css-307 "status location"
probe() {
	local w=$1 port=$2
	shift 2
	if is_h2 "$w" && ! is_node_port "$port"; then
		# h2 or nothing (--http2-prior-knowledge over TLS: no fallback
		# to HTTP/1.1 by ALPN), the proxies' shared self-signed certificate.
		curl -s --http2-prior-knowledge --cacert "$DIR/tls.crt" -o /dev/null \
			-w '%{http_code} %{size_download}' "$@" "https://127.0.0.1:$port${WPATH[$w]}"
		return
	fi
	case $w in
	post)
		curl -s -o /dev/null -w '%{http_code} %{size_download}' -H 'Content-Type: application/x-www-form-urlencoded' \
			-H 'Origin: http://127.0.0.1' --data-binary "$post_body" "$@" "http://127.0.0.1:$port${WPATH[$w]}" ;;
	css-307) curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$@" "http://127.0.0.1:$port${WPATH[$w]}" ;;
	css-edge-z) # the decoded body's size: every proxy's coding decodes to the node's bytes
		curl -s --compressed -H 'Accept-Encoding: gzip, br' -o "$DIR/z.body" -w '%{http_code} ' "$@" \
			"http://127.0.0.1:$port${WPATH[$w]}" && stat -c %s "$DIR/z.body" ;;
	*) curl -s -o /dev/null -w '%{http_code} %{size_download}' "$@" "http://127.0.0.1:$port${WPATH[$w]}" ;;
	esac
}
is_node_port() { [[ " ${NODE_PORTS[*]} " == *" $1 "* ]]; }
# expect workload port: the answer every proxy must give, the node's own; a
# 307's absolute Location names the host the client asked (Host is kept and
# X-Forwarded-Host set by every proxy), so it differs by port only.
expect() {
	if [[ $1 == css-307 ]]; then echo "307 http://127.0.0.1:$2$css_path"; else echo "${WANSWER[$1]}"; fi
}
for w in $WORKLOADS; do
	read -r code size <<<"$(probe "$w" "${NODE_PORTS[0]}")"
	WANSWER[$w]="$code $size"
	[[ "$code $size" == "$(expect "$w" "${NODE_PORTS[0]}")" && $code == "$([[ $w == css-307 ]] && echo 307 || echo 200)" ]] ||
		die "node answers '$code $size' to workload $w, expected '$(expect "$w" "${NODE_PORTS[0]}")'"
	case $w in
	h2) WTITLE[$w]="HTTP/2 over TLS (h2load): GET /login ($size B HTML)" ;;
	h2-css) WTITLE[$w]="HTTP/2 over TLS (h2load): GET hashed CSS ($size B)" ;;
	login) WTITLE[$w]="GET /login ($size B HTML)" ;;
	post) WTITLE[$w]="POST check-form-data (${#post_body} B form, $size B JSON answer)" ;;
	css) WTITLE[$w]="GET hashed CSS ($size B)" ;;
	css-edge) WTITLE[$w]="GET hashed CSS ($size B): mosparo-lb from its edge cache, the peers via a node" ;;
	css-307) WTITLE[$w]="GET /resources/<uuid>.css, 307: mosparo-lb at the edge, the peers via a node" ;;
	css-edge-z)
		static=gzip_static
		[[ ${BENCH_NGINX_BROTLI:-1} != 1 || ! -f $BROTLI_STATIC_SO ]] || static+=/brotli_static
		WTITLE[$w]="GET hashed CSS ($size B) with Accept-Encoding: gzip, br: mosparo-lb from its edge cache, nginx $static file, haproxy compressing a node's answer" ;;
	esac
done

# --- redis, seeded as mosparo stores the prepared CSS (FACTS 5.2, 5.4) ---------
if ((EDGE)); then
	curl -s -o "$DIR/css.body" "$NODE_URL$css_path" || die "cannot fetch the node's CSS"
	css_len=$(stat -c %s "$DIR/css.body")
	# PHP serialize() of a string, as Symfony's DefaultMarshaller writes it
	# without igbinary: s:<byte length>:"<bytes>";
	{ printf 's:%d:"' "$css_len" && cat "$DIR/css.body" && printf '";'; } >"$DIR/css.content"
	printf 's:%d:"%s";' "${#css_hash}" "$css_hash" >"$DIR/css.hash"
	"${PIN_LOAD[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
		--daemonize no --dir "$DIR" >"$DIR/redis.log" 2>&1 &
	PIDS+=($!)
	wait_port "$REDIS_PORT" "$!" redis
	rcli() { timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
	for part in content hash; do
		key=design_${UUID}_$part
		[[ $(rcli -x SET "$key" <"$DIR/css.$part") == OK ]] || die "redis SET $key failed"
		[[ $(rcli STRLEN "$key") == "$(stat -c %s "$DIR/css.$part")" ]] || die "redis holds other bytes under $key"
	done
fi

# via_node workload proxy port: check who answered. The nodes set
# X-Mosparo-Node on every answer; mosparo-lb must answer the edge workloads
# itself (no such header, for css-edge the node's exact bytes), everyone else
# must have gone through a node.
via_node() {
	local w=$1 name=$2 port=$3 i
	[[ $name != h2-floor ]] || return 0 # answers from memory by design
	if [[ ($name == mosparo-lb* || $name == nginx) && $w == css-edge-z ]]; then
		# mosparo-lb from its edge cache (once its packing goroutine has
		# made the compressed forms), nginx from its static file.
		for i in $(seq 20); do
			probe "$w" "$port" -D "$DIR/answer.hdr" >/dev/null
			if ! grep -qi '^X-Mosparo-Node:' "$DIR/answer.hdr" && grep -qi '^Content-Encoding:' "$DIR/answer.hdr"; then
				break
			fi
			((i < 20)) || die "$name sends $w to a node; its log: $(tail -5 "$DIR/$name.log")"
			sleep 0.1
		done
		cmp -s "$DIR/z.body" "$DIR/css.body" || die "$name's compressed CSS does not decode to the node's bytes"
	elif [[ $name == mosparo-lb* && ($w == css-edge || $w == css-307) ]]; then
		for i in $(seq 20); do # the first lookup may race the cache client's start
			probe "$w" "$port" -D "$DIR/answer.hdr" >/dev/null
			grep -qi '^X-Mosparo-Node:' "$DIR/answer.hdr" || break
			((i < 20)) || die "$name sends $w to a node instead of answering from its edge cache; its log: $(tail -5 "$DIR/$name.log")"
			sleep 0.1
		done
		if [[ $w == css-edge ]]; then
			curl -s -o "$DIR/answer.body" "http://127.0.0.1:$port${WPATH[$w]}"
			cmp -s "$DIR/answer.body" "$DIR/css.body" || die "$name's edge CSS differs from the node's bytes"
		fi
	else
		probe "$w" "$port" -D "$DIR/answer.hdr" >/dev/null
		grep -qi '^X-Mosparo-Node:' "$DIR/answer.hdr" || die "$name answered $w without a node"
	fi
}
# static_css: nginx's files for css-edge-z, the node's CSS next to its gzip -9
# and brotli -q 11 forms, and the includes that serve them.
static_css() {
	local d=$DIR/static${css_path%/*}
	mkdir -p "$d"
	cp "$DIR/css.body" "$d/${css_path##*/}"
	gzip -9 -k -f "$d/${css_path##*/}"
	local br_conf="# brotli_static: module not installed"
	if [[ ${BENCH_NGINX_BROTLI:-1} == 1 && -f $BROTLI_STATIC_SO ]] && command -v brotli >/dev/null; then
		brotli -q 11 -k -f "$d/${css_path##*/}"
		echo "load_module $BROTLI_STATIC_SO;" >"$DIR/nginx-modules.conf"
		br_conf="brotli_static on;"
	fi
	sed -e "s|@DIR@|$DIR|g" -e "s|@CSS_PATH@|$css_path|g" -e "s|@BROTLI_STATIC_ON@|$br_conf|" \
		-e "s|@BROTLI_STATIC@|$([[ $br_conf == brotli* ]] && echo on || echo 'not installed')|" \
		scripts/bench/nginx-static.conf.in >"$DIR/nginx-extra.conf"
	nginx -q -t -e "$DIR/nginx-error.log" -c "$DIR/nginx.conf" || die "nginx rejects its static CSS config"
}
python3 - "$RESULTS" "$WORKLOADS" "$PROXIES" <<EOF
import json, sys
titles = {$(for w in $WORKLOADS; do printf '"%s": "%s", ' "$w" "${WTITLE[$w]}"; done)}
targets = {$(for w in $WORKLOADS; do printf '"%s": %s, ' "$w" "${WTARGET[$w]}"; done)}
with open(sys.argv[1], "w") as f:
    f.write(json.dumps({"kind": "meta", "workloads": sys.argv[2].split(), "proxies": sys.argv[3].split(),
                        "titles": titles, "targets": targets}) + "\n")
EOF

# --- proxies -----------------------------------------------------------------
declare -A PPID_OF
start_proxy() {
	local name=$1 pid
	case $name in
	mosparo-lb)
		if [[ -n $PROFILE ]]; then
			"${PIN_PROXY[@]}" "${LB_ENV[@]}" "$DIR/lbprof" -config "$DIR/$LB_CONF.yaml" -cpuprofile "$PROFILE/cpu-$w.pprof" >"$DIR/$name.log" 2>&1 &
		else
			"${PIN_PROXY[@]}" "${LB_ENV[@]}" "$LB_BIN" run -config "$DIR/$LB_CONF.yaml" >"$DIR/$name.log" 2>&1 &
		fi ;;
	mosparo-lb-alt)
		[[ -x $LB_ALT ]] || die "BENCH_LB_ALT=$LB_ALT is not executable"
		"${PIN_PROXY[@]}" "${LB_ENV[@]}" "$LB_ALT" run -config "$DIR/${LB_CONF/mosparo-lb/mosparo-lb-alt}.yaml" >"$DIR/$name.log" 2>&1 & ;;
	haproxy) "${PIN_PROXY[@]}" haproxy -db -f "$DIR/$HAPROXY_CONF.cfg" >"$DIR/$name.log" 2>&1 & ;;
	nginx) "${PIN_PROXY[@]}" nginx -e "$DIR/nginx-error.log" -c "$DIR/$NGINX_CONF.conf" >"$DIR/$name.log" 2>&1 & ;;
	h2-floor)
		"${PIN_PROXY[@]}" "${LB_ENV[@]}" "$DIR/h2floor" -listen "127.0.0.1:${PORT[$name]}" -cert "$DIR/tls.crt" \
			-key "$DIR/tls.key" -from "$NODE_URL${WPATH[$w]}" >"$DIR/$name.log" 2>&1 & ;;
	fasthttp-min)
		"${PIN_PROXY[@]}" "${LB_ENV[@]}" "$DIR/minproxy" -listen "127.0.0.1:${PORT[$name]}" \
			"127.0.0.1:${NODE_PORTS[0]}" "127.0.0.1:${NODE_PORTS[1]}" "127.0.0.1:${NODE_PORTS[2]}" >"$DIR/$name.log" 2>&1 & ;;
	*) die "unknown proxy $name" ;;
	esac
	pid=$!
	PIDS+=("$pid")
	PPID_OF[$name]=$pid
	wait_port "${PORT[$name]}" "$pid" "$name"
}

stop_proxy() {
	local name=$1 pid=${PPID_OF[$1]} keep=() p
	stop_pid "$pid"
	for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}

node_args=()
for p in "${NODE_PIDS[@]}"; do node_args+=(--node-pid "$p"); done

load() { # workload proxy round seconds
	local w=$1 name=$2 round=$3 secs=$4
	if is_h2 "$w"; then
		python3 "$HELPER" run --out "$5" --proxy "$name" --workload "$w" --round "$round" \
			--pid "${PPID_OF[$name]}" "${node_args[@]}" --timeout $((secs + 15)) -- \
			"${PIN_LOAD[@]}" h2load -t"$THREADS" -c"$H2_CONNS" -m"$H2_STREAMS" -D"$secs" \
			--log-file="$DIR/h2load.log" "https://127.0.0.1:${PORT[$name]}${WPATH[$w]}"
		return
	fi
	# shellcheck disable=SC2086 # WARGS holds wrk options
	python3 "$HELPER" run --out "$5" --proxy "$name" --workload "$w" --round "$round" \
		--pid "${PPID_OF[$name]}" "${node_args[@]}" --timeout $((secs + 15)) -- \
		"${PIN_LOAD[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${secs}s" --latency ${WARGS[$w]} \
		"http://127.0.0.1:${PORT[$name]}${WPATH[$w]}" $([[ $w == css-edge-z ]] && echo "${WTAIL[@]}")
}

read -r -a all_proxies <<<"$PROXIES"
failed=0
for w in $WORKLOADS; do
	proxy_list=() # the yardsticks where they apply: fasthttp-min without TLS, h2-floor with h2
	for name in "${all_proxies[@]}"; do
		if is_h2 "$w"; then [[ $name == fasthttp-min ]] || proxy_list+=("$name"); else [[ $name == h2-floor ]] || proxy_list+=("$name"); fi
	done
	echo
	echo "-- ${WTITLE[$w]}"
	case $w in css-edge | css-307 | css-edge-z) LB_CONF=mosparo-lb-edge ;; h2 | h2-css) LB_CONF=mosparo-lb-h2 ;; *) LB_CONF=mosparo-lb ;; esac
	HAPROXY_CONF=haproxy NGINX_CONF=nginx
	! is_h2 "$w" || HAPROXY_CONF=haproxy-h2 NGINX_CONF=nginx-h2
	: >"$DIR/nginx-modules.conf"
	: >"$DIR/nginx-extra.conf"
	if [[ $w == css-edge-z ]]; then
		HAPROXY_CONF=haproxy-z
		static_css
	fi
	for name in "${proxy_list[@]}"; do
		start_proxy "$name"
		# Every proxy must give the same answer as the node itself, and
		# mosparo-lb must answer the edge workloads without a node.
		via_node "$w" "$name" "${PORT[$name]}"
		got=$(probe "$w" "${PORT[$name]}" -D "$DIR/answer.hdr")
		[[ $got == "$(expect "$w" "${PORT[$name]}")" ]] || die "$name answers '$got' to $w, expected '$(expect "$w" "${PORT[$name]}")'"
		if is_h2 "$w"; then
			head -1 "$DIR/answer.hdr" | grep -q '^HTTP/2 ' || die "$name does not answer $w over h2: $(head -1 "$DIR/answer.hdr")"
		fi
		if [[ $w == css-edge-z ]]; then
			enc=$(sed -n 's/^[Cc]ontent-[Ee]ncoding: *\([^[:space:]]*\).*/\1/p' "$DIR/answer.hdr")
			wire=$(curl -s -H 'Accept-Encoding: gzip, br' -o /dev/null -w '%{size_download}' "http://127.0.0.1:${PORT[$name]}${WPATH[$w]}")
			echo "   $name: Content-Encoding ${enc:-none}, $wire B body on the wire"
		fi
	done
	for name in "${proxy_list[@]}"; do
		load "$w" "$name" 0 "$WARMUP" "$DIR/warmup.jsonl" >/dev/null || true
	done
	for ((r = 1; r <= ROUNDS; r++)); do
		n=${#proxy_list[@]}
		for ((k = 0; k < n; k++)); do
			name=${proxy_list[$(((r - 1 + k) % n))]}
			load "$w" "$name" "$r" "$DURATION" "$RESULTS" || failed=1
		done
	done
	for name in "${proxy_list[@]}"; do
		python3 "$HELPER" mem --out "$RESULTS" --proxy "$name" --workload "$w" --pid "${PPID_OF[$name]}"
		stop_proxy "$name"
	done
done

echo
echo "== results (medians of $ROUNDS rounds; CPU us/req = proxy utime+stime / requests; peak RSS = VmHWM summed over the proxy's processes;"
echo "   cores = CPU seconds per second of proxy / 3 nodes / wrk / everything else on the machine)"
echo
python3 "$HELPER" report "$RESULTS" || failed=1
python3 "$HELPER" report --markdown "$RESULTS" >"$DIR/report.md" || true
exit "$failed"
