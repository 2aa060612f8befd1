#!/usr/bin/env bash
# KVM layer, a network card across a live migration: a card configured
# without mac= has a MAC derived from its TAP's name; migrated onto
# another TAP (--incoming-tap) it keeps the source's, in the destination's
# log, in its configuration (GET /vm/config) and on a second migration
# back. TAPs live in a private network namespace.
# Usage: test_net_migrate.sh BANYAN GUEST_DIR
set -u
. "$(dirname "$0")/../lib/tap.sh"

BANYAN=$(realpath "$1")
GUESTS=$2
T=$(mktemp -d)
NS=banyan-netmig-$$
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	ip netns del "$NS" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

if [ ! -w /dev/kvm ] || ! ip netns add "$NS" 2>/dev/null; then
	skip "a card keeps its MAC across migrations" "no usable /dev/kvm or network namespaces"
	tap_done
	exit
fi
for tap in bnm0 bnm1; do ip netns exec "$NS" ip tuntap add "$tap" mode tap; done

wait_for() { # wait_for FILE TEXT
	for _ in $(seq 1 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
# the MAC a side logged for net0
mac_of() { sed -n 's/.*net0: TAP [a-z0-9]*, MAC \([0-9a-f:]*\).*/\1/p' "$1" | head -n1; }
ctl() { local s=$1; shift; "$BANYAN" ctl --api-socket "$s" "$@"; }
# dest NAME TAP: a destination on unix:$T/NAME.sock whose net0 goes to TAP
dest() {
	ip netns exec "$NS" "$BANYAN" run --incoming "unix:$T/$1.sock" --api-socket "$T/$1.api" \
		--incoming-tap "net0=$2" </dev/null >"$T/$1.out" 2>"$T/$1.err" &
	PIDS+=($!)
	wait_for "$T/$1.err" "waiting for a migration"
}

ip netns exec "$NS" "$BANYAN" run --kernel "$GUESTS/migrate.elf" --memory 64M \
	--api-socket "$T/src.api" --net tap=bnm0 </dev/null >"$T/src.out" 2>"$T/src.err" &
PIDS+=($!)
wait_for "$T/src.out" "count 0000000000000003"
src_mac=$(mac_of "$T/src.err")
check "the source derives a MAC (no mac= given)" test -n "$src_mac"

dest d1 bnm1
ctl "$T/src.api" migrate "unix:$T/d1.sock" >"$T/c1.out" 2>&1
check "migration onto another TAP succeeds" status_is 0 "$?"
check "the destination's card has the source's MAC" \
	sh -c "[ '$(mac_of "$T/d1.err")' = '$src_mac' ] || { grep MAC '$T/d1.err'; exit 1; }"
ctl "$T/d1.api" config >"$T/d1.cfg" 2>&1
check "... and its configuration records it" contains "$T/d1.cfg" "$src_mac"

dest d2 bnm0
ctl "$T/d1.api" migrate "unix:$T/d2.sock" >"$T/c2.out" 2>&1
check "a second migration, back to the first TAP, succeeds" status_is 0 "$?"
check "... and the card still has the first MAC" \
	sh -c "[ '$(mac_of "$T/d2.err")' = '$src_mac' ] || { grep MAC '$T/d2.err'; exit 1; }"
tap_done
