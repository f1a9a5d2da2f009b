#!/bin/sh
# Installs the Debian packages the tests start for real (redis-server, memcached
# (with SASL), keepalived, php with Symfony cache, haproxy/nginx (+brotli_static)/wrk/h2load/brotli for benchmarks, chromium
# for the status page test) when any is missing. Idempotent and quiet when done.
set -eu
need=""
check() { # check BINARY PACKAGE...
	bin=$1; shift
	command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || need="$need $*"
}
check redis-server redis-server
check memcached memcached
# memcached with SASL (cssproxy's SASL test): saslpasswd2 and the PLAIN and sasldb plugins.
check saslpasswd2 sasl2-bin
ls /usr/lib/*/sasl2/libplain.so >/dev/null 2>&1 || need="$need libsasl2-modules"
ls /usr/lib/*/sasl2/libsasldb.so >/dev/null 2>&1 || need="$need libsasl2-modules-db"
check keepalived keepalived
check haproxy haproxy
check nginx nginx-light
check wrk wrk
check h2load nghttp2-client
check brotli brotli
[ -f /usr/lib/nginx/modules/ngx_http_brotli_static_module.so ] || need="$need libnginx-mod-http-brotli-static"
check php php-cli php-symfony-cache php-redis php-memcached php-igbinary
check ip iproute2
check ping iputils-ping
check arping arping
check tcpdump tcpdump
check chromium chromium
if command -v php >/dev/null 2>&1; then
	php -r 'exit(extension_loaded("redis") && extension_loaded("memcached") && extension_loaded("igbinary") ? 0 : 1);' \
		|| need="$need php-redis php-memcached php-igbinary"
	[ -f /usr/share/php/Symfony/Component/Cache/Adapter/RedisAdapter.php ] || need="$need php-symfony-cache"
fi
[ -z "$need" ] && exit 0
echo "installing test dependencies:$need"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# shellcheck disable=SC2086
$sudo apt-get install -y -q --no-install-recommends $need
# The packages start system services we do not use; tests start their own.
for s in redis-server memcached keepalived haproxy nginx saslauthd; do
	$sudo systemctl disable --now "$s" >/dev/null 2>&1 || true
done
