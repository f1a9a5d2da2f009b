#!/bin/sh
# Runs the hostile corpus of issue 11 (balancer/testdata/hostile) against
# mosparo-lb and HAProxy in front of the same scripted nodes, and prints
# the table: case, mosparo-lb's statuses, HAProxy's, and why they differ.
set -eu
cd "$(dirname "$0")/.."
table=$(mktemp)
trap 'rm -f "$table"' EXIT
status=0
go test -count=1 -run '^TestHostileDifferential$' ./balancer -args -hostile.table="$table" >/dev/null || status=$?
cat "$table"
exit $status
