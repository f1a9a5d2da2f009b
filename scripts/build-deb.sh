#!/usr/bin/env bash
# build-deb.sh VERSION BIN OUTDIR: out/mosparo-lb_<version>_<arch>.deb with
# plain dpkg-deb: the binary, the systemd units (service and socket), the default configuration as
# a conffile, and maintainer scripts that create and (on purge) remove the
# system user and /etc/mosparo-lb.
set -euo pipefail
VERSION=${1:?version}; BIN=${2:?binary}; OUT=${3:?outdir}
# Debian versions start with a digit; git describe may give a bare hash.
if [[ $VERSION =~ ^v?[0-9]+\. ]]; then VERSION=${VERSION#v}; else VERSION="0.0~git${VERSION}"; fi
VERSION=${VERSION//-/+}
ARCH=$(dpkg --print-architecture)
ROOT=$(mktemp -d); trap 'rm -rf "$ROOT"' EXIT
install -D -m 0755 "$BIN" "$ROOT/usr/bin/mosparo-lb"
sed 's|/usr/local/bin/mosparo-lb|/usr/bin/mosparo-lb|g; /^# systemd unit/,/^# See docs/d' configs/mosparo-lb.service >"$ROOT/unit"
install -D -m 0644 "$ROOT/unit" "$ROOT/lib/systemd/system/mosparo-lb.service"; rm "$ROOT/unit"
# The socket unit is shipped, not enabled: its addresses must match listen:.
sed '/^# systemd socket unit/,/^# See docs/d' configs/mosparo-lb.socket >"$ROOT/unit"
install -D -m 0644 "$ROOT/unit" "$ROOT/lib/systemd/system/mosparo-lb.socket"; rm "$ROOT/unit"
install -D -m 0640 packaging/mosparo-lb.yaml "$ROOT/etc/mosparo-lb/mosparo-lb.yaml"
install -D -m 0644 configs/mosparo-lb.yaml "$ROOT/usr/share/doc/mosparo-lb/mosparo-lb.yaml.reference"
install -m 0644 docs/configuration.md docs/operations.md "$ROOT/usr/share/doc/mosparo-lb/"
mkdir -p "$ROOT/DEBIAN"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$ROOT/DEBIAN/"
echo /etc/mosparo-lb/mosparo-lb.yaml >"$ROOT/DEBIAN/conffiles"
cat >"$ROOT/DEBIAN/control" <<CTL
Package: mosparo-lb
Version: $VERSION
Architecture: $ARCH
Maintainer: mosparo-lb developers <mosparo-lb@localhost>
Section: net
Priority: optional
Depends: adduser
Installed-Size: $(du -sk "$ROOT/usr" | cut -f1)
Description: load balancer and VRRP for clusters of mosparo nodes
 A Layer-7 load balancer for mosparo spam protection nodes with health
 checks, Consul discovery, the shared CSS cache, the web cron and VRRP
 virtual addresses (keepalived compatible).
CTL
mkdir -p "$OUT"
dpkg-deb --root-owner-group --build "$ROOT" "$OUT/mosparo-lb_${VERSION}_${ARCH}.deb" >/dev/null
echo "$OUT/mosparo-lb_${VERSION}_${ARCH}.deb"
