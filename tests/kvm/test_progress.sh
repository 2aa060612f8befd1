#!/usr/bin/env bash
# KVM layer, progress bars (cli/progress.h): `banyan ctl snapshot create`
# run on a pseudo-terminal (script(1)) draws a bar of the memory written,
# `banyan restore --clones` and `banyan ctl clone` one of the clones
# running; without a
# terminal both print exactly what they printed before bars existed.
# GET /banyan/v1/progress reports the snapshots written.
# Usage: test_progress.sh BANYAN GUEST_DIR
set -u
. "$(dirname "$0")/../lib/tap.sh"

BANYAN=$(realpath "$1")
GUESTS=$(realpath "$2")
T=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

if [ ! -c /dev/kvm ] || [ ! -w /dev/kvm ] || ! command -v script >/dev/null; then
	skip "progress bars" "needs a usable /dev/kvm and script(1)"
	tap_done
	exit
fi

# on_tty FILE CMD...: CMD on a pseudo-terminal (stdout and stderr), what it drew to FILE.
on_tty() {
	local out=$1
	shift
	script -qec "$(printf '%q ' "$@")" /dev/null </dev/null >"$out" 2>&1
}
wait_for() { # wait_for FILE TEXT: up to 10 s
	for _ in $(seq 1 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
has_esc() { grep -q $'\033' "$1"; }
progress() { curl -s --unix-socket "$T/api.sock" http://localhost/banyan/v1/progress; }
# Named clones live in the VMM's runtime root (the one they inherit): the test's own.
export BANYAN_RUNTIME_DIR=$T/rt

"$BANYAN" run --kernel "$GUESTS/memcount.elf" --memory 256M --api-socket "$T/api.sock" \
	</dev/null >"$T/vm.out" 2>"$T/vm.err" &
PIDS+=($!)
wait_for "$T/vm.out" "count 0000000000000003"

# A terminal: the bar, redrawn in place, ends at 100% of the guest's 256 MiB.
on_tty "$T/tty.out" "$BANYAN" ctl --api-socket "$T/api.sock" snapshot create "$T/s1"
check "on a terminal: snapshot written" contains "$T/tty.out" "snapshot written"
check "on a terminal: a bar is drawn in place" contains "$T/tty.out" $'\rsnapshot ['
check "... up to 100% of the guest's memory" contains "$T/tty.out" "100%  256.0/256.0 MiB"
check "... with a rate" grep -q "MiB/s" "$T/tty.out"

# No terminal: the same output as ever, nothing on stderr.
"$BANYAN" ctl --api-socket "$T/api.sock" snapshot create "$T/s2" >"$T/plain.out" 2>"$T/plain.err"
check "without a terminal: exit 0" status_is 0 "$?"
check "without a terminal: stdout is only 'snapshot written'" \
	test "$(cat "$T/plain.out")" = "snapshot written"
check "without a terminal: nothing on stderr" test ! -s "$T/plain.err"
check "... and no escape sequence anywhere" bash -c "! grep -q $'\033' '$T/plain.out' '$T/plain.err'"
# --json asks for the API's answer alone, on a terminal too.
on_tty "$T/json.out" "$BANYAN" ctl --api-socket "$T/api.sock" --json snapshot create "$T/s3"
check "--json on a terminal: no bar" bash -c "! grep -q 'snapshot \[' '$T/json.out'"

if command -v curl >/dev/null; then
	progress >"$T/progress.json"
	check "GET /banyan/v1/progress: three snapshots, the last one whole and done" \
		python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["snapshot"]
assert s["count"] == 3 and not s["active"], s
assert s["bytes_done"] == s["bytes_total"] == 256 << 20, s' "$T/progress.json"
else
	skip "GET /banyan/v1/progress" "no curl"
fi

# ctl clone --snapshot-now on a terminal: the snapshot's bar, then the
# clones' until all three named clones run.
on_tty "$T/cc.tty" "$BANYAN" ctl --api-socket "$T/api.sock" clone "$T/cs" --count 3 \
	--console "$T/cc" --clone-name pc --snapshot-now
sup=$(sed -n 's/^supervisor pid \([0-9]*\).*/\1/p' "$T/cc.tty")
PIDS+=(${sup:-})
check "ctl clone on a terminal: the snapshot's bar" contains "$T/cc.tty" $'\rsnapshot ['
check "... then the clones', up to 3 of 3 running" contains "$T/cc.tty" "100%  3/3"
check "... and they do run" test "$("$BANYAN" ls -q | grep -c '^pc-')" = 3
[ -n "$sup" ] && kill -TERM "$sup"
for _ in $(seq 1 50); do [ -z "$("$BANYAN" ls -q)" ] && break; sleep 0.1; done

# restore --clones: n of N running on a terminal, nothing extra without one.
clones() { # clones TTY|PLAIN: three clones of s2 for 2 s, then SIGTERM
	local cmd=(timeout --preserve-status -s TERM 2 "$BANYAN" restore --snapshot "$T/s2"
		--clones 3 --console "$T/c$1" --log-file "$T/c$1.log")
	if [ "$1" = tty ]; then on_tty "$T/clones.tty" "${cmd[@]}"; else
		"${cmd[@]}" </dev/null >"$T/clones.out" 2>"$T/clones.err"; fi
}
clones tty
check "clones on a terminal: the bar reaches 3 of 3 running" contains "$T/clones.tty" "100%  3/3"
check "... drawn in place" contains "$T/clones.tty" $'\rclones ['
clones plain
check "clones without a terminal: three lines on stdout, nothing else" \
	test "$(grep -c '^clone [0-2]: pid' "$T/clones.out")" = 3 -a "$(wc -l <"$T/clones.out")" = 3
check "... no bar on stderr" bash -c "! grep -q 'clones \[' '$T/clones.err'"
check "... and no escape sequence" bash -c "! grep -q $'\033' '$T/clones.out' '$T/clones.err'"
tap_done
