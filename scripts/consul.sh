#!/usr/bin/env bash
# consul.sh: makes sure .consul-bin/consul is the Consul agent the real-Consul
# tests run, building it with ../shared/consul/get-consul.sh (or $GET_CONSUL)
# only when it is missing or another version.
#
# get-consul.sh checks versions with `consul version | head -1` under
# pipefail: when head exits before consul has written its other lines,
# consul dies of SIGPIPE, the check fails (so a present binary is rebuilt)
# and, after a build, the script ends with status 141. The version is
# therefore checked here from the whole output, and a 141 after a build is
# accepted only when the binary then is the wanted version.
set -euo pipefail
cd "$(dirname "$0")/.."
want="Consul v1.14.11"
have() {
	local v
	v=$(.consul-bin/consul version 2>/dev/null) || return 1
	[[ ${v%%$'\n'*} == "$want" ]]
}
if have; then
	echo "consul: .consul-bin/consul is $want"
	exit 0
fi
rc=0
bash "${GET_CONSUL:-../shared/consul/get-consul.sh}" .consul-bin || rc=$?
if [[ $rc == 141 ]] && have; then
	echo "consul: built $want (get-consul.sh ended on SIGPIPE in its version check)"
	exit 0
fi
exit "$rc"
