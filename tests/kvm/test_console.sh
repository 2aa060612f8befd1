#!/usr/bin/env bash
# KVM layer, hostile console and log: a guest writing its console flat out
# to a reader that never reads must not hold up pause, snapshot, stop or
# SIGTERM (its output is dropped past the queue, and counted); a guest that
# breaks and resets a virtio device in a tight loop must not flood the log.
# Usage: test_console.sh BANYAN GUEST_DIR
set -u
. "$(dirname "$0")/../lib/tap.sh"

BANYAN=$1
GUESTS=$2
T=$(mktemp -d)
HOLDER=
VMM=
cleanup() {
	[ -n "$VMM" ] && kill -KILL "$VMM" 2>/dev/null
	[ -n "$HOLDER" ] && kill "$HOLDER" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

names=("stalled reader: output dropped and counted" "stalled reader: pause returns"
	"stalled reader: snapshot create returns" "stalled reader: resume"
	"stalled reader: SIGTERM exits 143" "stalled reader: SIGTERM within 5 s"
	"stalled reader: API stop exits 0" "stalled reader: API stop within 5 s"
	"log flood: the rate limit held lines back (metrics)" "log flood: SIGTERM exits 143"
	"log flood: at most 10 device warnings per 5 s, and the reports"
	"log flood: the log says how many were suppressed" "log flood: the log stays small")
if [ ! -c /dev/kvm ] || [ ! -w /dev/kvm ]; then
	for n in "${names[@]}"; do skip "$n" "no usable /dev/kvm"; done
	tap_done
	exit
fi

now_ms() { date +%s%3N; }

# A reader that never reads: a FIFO held open by a process that only sleeps,
# its buffer shrunk to one page so it fills at once.
mkfifo "$T/out.fifo"
python3 -c '
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.fcntl(fd, 1031, 4096)  # F_SETPIPE_SZ
open(sys.argv[2], "w").close()
time.sleep(3600)' "$T/out.fifo" "$T/holder.ready" &
HOLDER=$!
for _ in $(seq 1 100); do [ -e "$T/holder.ready" ] && break; sleep 0.05; done

ctl() { timeout "$1" "$BANYAN" ctl --api-socket "$T/api.sock" "${@:2}"; }

# start_flood: the flooding guest on the FIFO, with a small console queue
start_flood() {
	rm -f "$T/api.sock"
	"$BANYAN" run --kernel "$GUESTS/flood.elf" --memory 32M --console-queue 16K \
		--api-socket "$T/api.sock" <"/dev/null" >"$T/out.fifo" 2>>"$T/flood.err" &
	VMM=$!
	for _ in $(seq 1 100); do [ -S "$T/api.sock" ] && break; sleep 0.05; done
}

# dropped: the console's dropped-bytes counter (empty if the API does not answer)
dropped() {
	ctl 5 metrics 2>/dev/null | sed -n 's/^banyan_device_dropped_bytes_total{device="com1"} //p'
}

# wait_exit SECS: $VMM's exit status in $st, or "hung" (then it is killed)
wait_exit() {
	local i
	for i in $(seq 1 $(($1 * 20))); do
		kill -0 "$VMM" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$VMM" 2>/dev/null; then
		kill -KILL "$VMM"
		wait "$VMM" 2>/dev/null
		st=hung
	else
		wait "$VMM"
		st=$?
	fi
	VMM=
}

start_flood
n=
for _ in $(seq 1 100); do
	n=$(dropped)
	[ -n "$n" ] && [ "$n" -gt 0 ] && break
	sleep 0.1
done
check "stalled reader: output dropped and counted" test "${n:-0}" -gt 0
check "stalled reader: pause returns" ctl 10 pause
check "stalled reader: snapshot create returns" ctl 20 snapshot create "$T/snap"
check "stalled reader: resume" ctl 10 resume
t0=$(now_ms)
kill -TERM "$VMM"
wait_exit 20
t1=$(now_ms)
check "stalled reader: SIGTERM exits 143" status_is 143 "$st"
check "stalled reader: SIGTERM within 5 s" test $((t1 - t0)) -lt 5000

start_flood
sleep 1
t0=$(now_ms)
ctl 10 stop >/dev/null
wait_exit 20
t1=$(now_ms)
check "stalled reader: API stop exits 0" status_is 0 "$st"
check "stalled reader: API stop within 5 s" test $((t1 - t0)) -lt 5000

# The log flood: about 7000 "device needs reset" a second without the limit.
rm -f "$T/api.sock"
"$BANYAN" run --kernel "$GUESTS/vreset.elf" --memory 32M --rng --api-socket "$T/api.sock" \
	</dev/null >/dev/null 2>"$T/vreset.err" &
VMM=$!
t0=$(now_ms)
sleep 3
held=$(ctl 5 metrics 2>/dev/null | sed -n 's/^banyan_log_lines_suppressed_total //p')
check "log flood: the rate limit held lines back (metrics)" test "${held:-0}" -gt 100
kill -TERM "$VMM"
wait_exit 20
t1=$(now_ms)
# 10 lines per started 5 s interval, plus one report per interval (it quotes the line).
windows=$(((t1 - t0) / 5000 + 1))
warnings=$(grep -c "device needs reset" "$T/vreset.err")
check "log flood: SIGTERM exits 143" status_is 143 "$st"
check "log flood: at most 10 device warnings per 5 s, and the reports" \
	test "$warnings" -le $((windows * 11))
check "log flood: the log says how many were suppressed" \
	grep -qE "[0-9]+ similar lines suppressed .*device needs reset" "$T/vreset.err"
check "log flood: the log stays small" test "$(wc -l <"$T/vreset.err")" -le $((windows * 11 + 10))
tap_done
