#!/usr/bin/env bash
# KVM layer, snapshots: a guest counting in memory is snapshotted (full and
# diff), restored in new processes (it continues, rollback repeats, the diff
# chain composes), cloned, and damaged snapshots are refused.
# Usage: test_snapshot.sh BANYAN GUEST_DIR
set -u
. "$(dirname "$0")/../lib/tap.sh"

BANYAN=$(realpath "$1")
GUESTS=$2
T=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

# The offline checks need no KVM.
mkdir -p "$T/fake"
run_bad() { timeout 20 "$BANYAN" restore --snapshot "$1" </dev/null >"$T/bad.out" 2>"$T/bad.err"; echo $?; }
check "no snapshot there: exit 2" status_is 2 "$(run_bad "$T/nothing")"
check "no snapshot there: says so" contains "$T/bad.err" "not a snapshot"
echo '{"format":"banyan-snapshot","version":' >"$T/fake/manifest.json"
check "truncated manifest: exit 2" status_is 2 "$(run_bad "$T/fake")"
check "truncated manifest: says so" contains "$T/bad.err" "truncated"

if [ ! -c /dev/kvm ] || [ ! -w /dev/kvm ]; then
	skip "snapshot tests with a guest" "no usable /dev/kvm"
	tap_done
	exit
fi

# first_count FILE: the first counter value the guest printed, in decimal.
first_count() { local v; v=$(grep -m1 '^count ' "$1" | cut -d' ' -f2); echo $((16#${v:-0})); }
last_count() { local v; v=$(grep '^count [0-9a-f]*$' "$1" | tail -1 | cut -d' ' -f2); echo $((16#${v:-0})); }
not_contains() { ! grep -qF -- "$2" "$1"; }
wait_for() { # wait_for FILE TEXT: up to 10 s
	for _ in $(seq 1 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
ctl() { "$BANYAN" ctl --api-socket "$T/api.sock" "$@"; }
# Under emulation (tools/emulated-host) everything runs several times slower.
RESTORE_SECS=${BANYAN_EMULATED_HOST:+6}

# One VM: a full snapshot, then two diffs, then it is stopped.
"$BANYAN" run --kernel "$GUESTS/memcount.elf" --api-socket "$T/api.sock" </dev/null \
	>"$T/vm.out" 2>"$T/vm.err" &
PIDS+=($!)
wait_for "$T/vm.out" "count 0000000000000005"
mkdir -p "$T/store"
check "ctl snapshot create (full)" ctl snapshot create "$T/store/base"
sleep 0.3
check "ctl snapshot create --diff" ctl snapshot create --diff "$T/store/child"
sleep 0.3
check "ctl snapshot create --diff (grandchild)" ctl snapshot create --diff "$T/store/grand"
check "ctl snapshot create --paused" ctl snapshot create --paused "$T/store/paused"
n1=$(last_count "$T/vm.out")
sleep 0.3
n2=$(last_count "$T/vm.out")
check "--paused leaves the VM paused" test "$n1" = "$n2"
ctl resume >/dev/null
ctl stop >/dev/null
wait "${PIDS[0]}"
stop_count=$(last_count "$T/vm.out")

check "full snapshot is a directory with a manifest" test -f "$T/store/base/manifest.json"
check "memory is sparse (far below 256 MiB on disk)" \
	test "$(du -k "$T/store/base/memory" | cut -f1)" -lt 4096
check "no temporary directories left" test -z "$(ls "$T/store" | grep tmp)"

# restore NAME SNAPSHOT: run it for a second, stdout in $T/NAME.out
restore() {
	local name=$1
	shift
	timeout -s TERM "${RESTORE_SECS:-1.5}" "$BANYAN" restore --snapshot "$@" </dev/null >"$T/$name.out" 2>"$T/$name.err"
}
restore r1 "$T/store/base"
restore r2 "$T/store/base"
b1=$(first_count "$T/r1.out")
b2=$(first_count "$T/r2.out")
check "restore continues counting (not from 1)" test "${b1:-0}" -gt 5
check "restore continues from before the stop" test "${b1:-0}" -le "$stop_count"
check "restoring twice runs from the same point (rollback)" test "${b1:-0}" = "${b2:-x}"
check "the restored VM keeps counting" test "$(last_count "$T/r1.out")" -gt "${b1:-0}"
restore rc "$T/store/child"
restore rg "$T/store/grand"
c=$(first_count "$T/rc.out")
g=$(first_count "$T/rg.out")
check "diff child continues after its parent's point" test "${c:-0}" -gt "${b1:-0}"
check "diff grandchild continues after the child's point" test "${g:-0}" -gt "${c:-0}"
check "diff is smaller than the full snapshot" \
	test "$(du -k "$T/store/child" | cut -f1)" -lt "$(du -k "$T/store/base" | cut -f1)"

# The store: tree, refusal to delete a needed parent, merge.
"$BANYAN" snapshot --store "$T/store" tree >"$T/tree.out"
check "tree shows the chain" grep -q -- "-- grand" "$T/tree.out"
"$BANYAN" snapshot --store "$T/store" delete child >/dev/null 2>"$T/del.err"
check "delete of a needed parent is refused" contains "$T/del.err" "--merge"
check "delete --merge folds the child into its diffs" \
	"$BANYAN" snapshot --store "$T/store" delete --merge child
restore rg2 "$T/store/grand"
check "grandchild restores the same after the merge" test "$(first_count "$T/rg2.out")" = "$g"
check "snapshot verify checks the memory too" "$BANYAN" snapshot verify "$T/store/grand"

# Damaged snapshots are refused before anything runs.
damaged() { rm -rf "$T/d"; cp -a "$T/store/base" "$T/d"; }
damaged
printf '\x55' | dd of="$T/d/vcpus.state" bs=1 seek=100 conv=notrunc status=none
check "corrupt section: exit 2" status_is 2 "$(run_bad "$T/d")"
check "corrupt section: says corrupt" contains "$T/bad.err" "corrupt"
damaged
truncate -s 1M "$T/d/memory"
check "truncated memory: exit 2" status_is 2 "$(run_bad "$T/d")"
check "truncated memory: says truncated" contains "$T/bad.err" "truncated"
damaged
dd if=/dev/urandom of="$T/d/memory" bs=4096 count=1 seek=$((0x300)) conv=notrunc status=none
check "corrupt memory: exit 2" status_is 2 "$(run_bad "$T/d")"
damaged
sed -i 's/"version":1/"version":99/' "$T/d/manifest.json"
check "newer format version: exit 2" status_is 2 "$(run_bad "$T/d")"
check "newer format version: says so" contains "$T/bad.err" "newer"
check "nothing ran for a bad snapshot" not_contains "$T/bad.out" "count"

# Clones: three processes from one snapshot, each with its own console.
(cd "$T" && timeout --preserve-status -s TERM 2 "$BANYAN" restore --snapshot "$T/store/base" --clones 3 \
	--console "$T/clone" </dev/null >"$T/clones.out" 2>"$T/clones.err")
check "clones exit cleanly on SIGTERM" status_is 143 "$?"
for i in 0 1 2; do
	check "clone $i continues counting" test "$(first_count "$T/clone.$i")" = "$b1"
done

tap_done
