#!/usr/bin/env bash
# Linux layer, live migration: one Linux guest boots and works (a counter
# printed every tick, 4 MiB of memory under a known pattern whose hash it
# checks every tick, a TCP stream from the host read through its virtio-net
# card and checked byte for byte, and a background writer rewriting 8 MiB
# of tmpfs over and over, tens of MiB/s), then moves twice while it runs: over TCP
# to a second banyan process, then back over a Unix socket to a third,
# each time with verification on (guest memory's CRC compared at the
# switch). The count continues, the pattern holds, the TCP stream spanning
# both migrations arrives intact, each source exits 0 with the reason
# "migrated", and the guest's MAC (none given: banyan chose it) is the same
# after each move. A destination missing the VM's TAP refuses it and the source
# runs on. (A destination with less memory and one killed mid-stream are
# tests/kvm/test_migrate.sh's, with a tiny guest.)
#
# The TAPs: the source and the last destination use bmig0, the middle one
# bmig1 (a TAP has one owner at a time and the destination opens its TAP
# before the source lets go); both are ports of one bridge holding the
# host's address, as two hosts' TAPs are of one network.
#
# Verification once found one page different in every Linux guest: the
# destination hashed its memory after loading the vCPUs, whose kvmclock
# wall-clock MSR makes KVM rewrite that page (docs/migration.md). The
# first move now passes; the second (from a VM that itself migrated in)
# still fails verification, so this script is not yet named test_*.sh.
#
# time-limit: 480 (seconds for one run, emulated host included: tests/linux/run)
set -u
GUEST_TIMEOUT=${GUEST_TIMEOUT:-120}
. "$(dirname "$0")/lib.sh"
linux_prereqs

vsock_tools_disk

netns_up banyan-mig-$$
in_ns ip link add br0 type bridge
for tap in bmig0 bmig1; do
	in_ns ip tuntap add "$tap" mode tap
	in_ns ip link set "$tap" master br0
	in_ns ip link set "$tap" up
done
in_ns ip addr add 10.0.2.1/24 dev br0
in_ns ip link set br0 up
# Unix sockets live on a tmpfs (/run): the emulated host's shares refuse them.
S=$(mktemp -d /run/banyan-mig.XXXXXX)
PIDS=()
# Everything this script started goes with it: a VMM or a peer left running
# would hold the emulated host open until its time limit.
trap 'kill -9 "${PIDS[@]}" 2>/dev/null; ip netns del "$NS" 2>/dev/null; rm -rf "$T" "$S"' EXIT

# The host streams its test pattern (vsock_host.py) until told to stop; the
# guest reads it and reports "BYTES_ok" once the host closed.
KIBPS=${FLOOD_KIBPS:-128}
in_ns python3 "$HOST_PY" tcp-flood 10.0.2.1 7000 "$T/tcp.host" "$T/tcp.stop" "$KIBPS" &
flood=$!
PIDS+=($flood)

LOOP=$(gzip -9c <<'EOF' | base64 -w0
mkdir -p /mnt && mount -o ro /dev/vda /mnt
ip addr add 10.0.2.2/24 dev eth0
ip link set eth0 up
head -c 4194304 /dev/urandom >/tmp/pattern
sum=$(sha256sum </tmp/pattern)
/mnt/vsock-tool tcp 10.0.2.1 7000 >/tmp/tcp 2>&1 &
while :; do cat /tmp/pattern /tmp/pattern >/dev/shm/hot; sleep 0.05; done &
i=0
while :; do
	i=$((i+1))
	p=bad
	[ "$(sha256sum </tmp/pattern)" = "$sum" ] && p=ok
	echo "tick=$i pattern=$p mac=$(cat /sys/class/net/eth0/address) tcp=$(cat /tmp/tcp) end"
	sleep 0.2
done
EOF
)

"$BANYAN" run --kernel "$KERNEL" --initrd "$INITRD" --memory 128M --api-socket "$S/src.api" \
	--disk path="$T/tools.ext4",ro --net tap=bmig0,id=net0 \
	--cmdline "console=ttyS0 quiet -- echo $LOOP | base64 -d | gunzip | sh" </dev/null \
	>"$T/src.out" 2>"$T/src.err" &
src=$!
PIDS+=($src)

# ticks FILE: the complete tick lines (a VM stopped mid-line leaves one cut short)
ticks() { tr -d '\r' <"$1" 2>/dev/null | grep -E '^tick=[0-9]+ .* end$'; }
# field FILE KEY [first|last]
field() {
	ticks "$1" | { [ "${3:-last}" = first ] && head -n1 || tail -n1; } |
		tr ' ' '\n' | sed -n "s/^$2=//p"
}
wait_tick() { # wait_tick FILE N
	for _ in $(seq 1 $((GUEST_TIMEOUT * 5))); do
		[ "$(field "$1" tick)" -ge "$2" ] 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}
grows() { # grows FILE: the count goes on
	local a
	a=$(field "$1" tick)
	wait_tick "$1" $((a + 3))
}
hostv() { sed -n "s/^$2=//p" "$1" 2>/dev/null | tail -n1; }
ctl() { local s=$1; shift; "$BANYAN" ctl --api-socket "$S/$s.api" "$@"; }
# dest NAME URL [options]: a destination waiting on URL
dest() {
	local n=$1 u=$2
	shift 2
	"$BANYAN" run --incoming "$u" --api-socket "$S/$n.api" "$@" </dev/null \
		>"$T/$n.out" 2>"$T/$n.err" &
	DST=$!
	PIDS+=($DST)
	for _ in $(seq 1 $((30 * SLOW))); do
		grep -q "waiting for a migration" "$T/$n.err" 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}
running() { kill -0 "$1" 2>/dev/null; }

wait_tick "$T/src.out" 3 || {
	echo "Bail out! the guest did not start its loop"
	tail -n 20 "$T/src.out" "$T/src.err"
	exit 1
}
for _ in $(seq 1 $((30 * SLOW))); do
	[ "$(hostv "$T/tcp.host" bytes)" -gt 262144 ] 2>/dev/null && break
	sleep 0.5
done
check "the TCP stream to the guest flows before the migrations" \
	test "$(hostv "$T/tcp.host" bytes)" -gt 262144

# A destination missing the VM's TAP refuses it before anything is sent.
dest nota "unix:$S/nota.sock" --incoming-tap net0=bnotap
ctl src migrate "unix:$S/nota.sock" --verify >"$T/cnota.out" 2>&1
check "missing TAP: ctl migrate exits 1" status_is 1 "$?"
check "... naming the TAP" contains "$T/cnota.out" "bnotap"
wait "$DST"
check "... the destination exits 2" status_is 2 "$?"
check "... the source keeps running" running "$src"
check "... and the guest with it" grows "$T/src.out"

# migrate FROM FROM_PID TO URL [destination options]: a verified migration
migrate() {
	local from=$1 pid=$2 to=$3 url=$4 before first rc
	shift 4
	dest "$to" "$url" "$@"
	timeout $((120 * SLOW)) "$BANYAN" ctl --api-socket "$S/$from.api" migrate "$url" --verify \
		--downtime 300 >"$T/c$to.out" 2>&1
	rc=$?
	check "to $to: ctl migrate --verify exits 0" status_is 0 "$rc"
	if [ "$rc" != 0 ]; then
		tail -n 12 "$T/c$to.out" "$T/$from.err" "$T/$to.err" | sed 's/^/# /'
		ctl "$from" migrate status | sed 's/^/# /'
		echo "Bail out! the migration to $to failed"
		exit 1
	fi
	check "... and says migrated, verified" contains "$T/c$to.out" "migrated, verified"
	grep -h "migrat" "$T/c$to.out" | sed 's/^/# /'
	wait "$pid"
	check "... the source exits 0" status_is 0 "$?"
	check "... with the reason migrated" contains "$T/$from.err" "VM stopped (migrated)"
	check "... the destination runs the VM" running "$DST"
	wait_tick "$T/$to.out" 1
	before=$(field "$T/$from.out" tick last)
	first=$(field "$T/$to.out" tick first)
	check "... the count continues ($before, then $first)" \
		test "${first:-0}" -gt "${before:-0}" -a "${first:-0}" -le $((${before:-0} + 2))
	grows "$T/$to.out"
	rc=$?
	check "... and goes on" status_is 0 "$rc"
	if [ "$rc" != 0 ]; then
		tail -n 8 "$T/$to.out" "$T/$to.err" | sed 's/^/# /'
		echo "Bail out! the guest stopped after the migration to $to"
		exit 1
	fi
	check "... the guest's MAC is the one it had ($(field "$T/$to.out" mac))" \
		test -n "$MAC" -a "$(field "$T/$to.out" mac)" = "$MAC"
}
MAC=$(field "$T/src.out" mac first)
PORT=$((20000 + RANDOM % 20000))
migrate src "$src" mid "tcp:127.0.0.1:$PORT" --incoming-tap net0=bmig1
mid=$DST
migrate mid "$mid" dst "unix:$S/mig.sock" --incoming-tap net0=bmig0
dst=$DST

bad=$(cat "$T/src.out" "$T/mid.out" "$T/dst.out" | tr -d '\r' | grep -c 'pattern=bad')
check "the memory pattern held on every tick, before and after both migrations ($bad bad)" \
	test "$bad" = 0 -a "$(ticks "$T/dst.out" | grep -c 'pattern=ok')" -gt 0
touch "$T/tcp.stop" # the host ends its stream; the guest reports once it read it all
for _ in $(seq 1 $((30 * SLOW))); do
	[ -n "$(field "$T/dst.out" tcp)" ] && [ "$(hostv "$T/tcp.host" done)" = 1 ] && break
	sleep 0.5
done
got=$(field "$T/dst.out" tcp)
echo "# TCP: host sent $(hostv "$T/tcp.host" bytes), guest read ${got:-nothing}"
check "the TCP stream spanning both migrations arrived intact" \
	test "$got" = "$(hostv "$T/tcp.host" bytes)_ok"
ctl dst stop >/dev/null
wait "$dst"
check "the last destination stops as a VM does (exit 0)" status_is 0 "$?"
wait_bounded 10 "$flood"
tap_done
