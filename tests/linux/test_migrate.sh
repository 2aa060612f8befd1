#!/usr/bin/env bash
# Linux layer, live migration: one Linux guest boots and works (a counter
# printed every tick, 4 MiB of memory under a known pattern whose hash it
# checks every tick, a TCP stream from the host read through its virtio-net
# card and checked byte for byte, and a writer rewriting an 8 MiB tmpfs
# file, at nice 19 so that the ticks keep their pace on the one vCPU), then
# moves three times while it runs:
# - over TCP to a second banyan process, pre-copy, with the writer paced
#   (512 KiB every quarter second, about 2 MiB/s, walking the file), so
#   that pre-copy converges in a few rounds; verified page by page
#   (--verify=pages: guest memory's CRC compared at the switch);
# - then, the host having told the guest (a line to its port 7001) to
#   rewrite the whole file as fast as it can, back over a Unix socket to a
#   third process with post-copy forced (--postcopy now: the guest runs
#   at the destination after the first round, its pages following),
#   verified by the post-copy hash;
# - then, the writer paced again, on by pre-copy over TCP to a fourth
#   process (a VM that itself migrated in moving on), verified page by page.
# The count continues, the pattern holds, the TCP stream spanning the
# migrations arrives intact, each source exits 0 with the reason
# "migrated", and the guest's MAC (none given: banyan chose it) is the same
# after each move. A destination missing the VM's TAP refuses it and the
# source runs on. (A destination with less memory and one killed mid-stream
# are tests/kvm/test_migrate.sh's, with a tiny guest.)
#
# The TAPs: the source and the third process use bmig0, the second and
# the fourth bmig1 (a TAP has one owner at a time and the destination opens its TAP
# before the source lets go); both are ports of one bridge holding the
# host's address, as two hosts' TAPs are of one network.
#
# The writer is paced for the pre-copy move because the emulated host runs
# the guest's writes faster than it carries pages: a guest rewriting 8 MiB
# flat out never let pre-copy converge there, and the throttle's steps took
# minutes. Such a guest is what post-copy is for, so the second move has it.
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
echo light >/tmp/mode
(nc -l -p 7001 </dev/null >/tmp/heavy 2>/dev/null; echo heavy >/tmp/mode
 nc -l -p 7001 </dev/null >/tmp/light 2>/dev/null; echo light >/tmp/mode) &
cat /tmp/pattern /tmp/pattern >/dev/shm/hot
k=0
while :; do
	if [ "$(cat /tmp/mode)" = heavy ]; then
		cat /tmp/pattern /tmp/pattern >/dev/shm/hot
		sleep 0.05
	else
		dd if=/tmp/pattern of=/dev/shm/hot bs=64k count=8 seek=$((k * 8)) conv=notrunc 2>/dev/null
		k=$(((k + 1) % 16))
		sleep 0.25
	fi
done &
renice -n 19 -p $! >/dev/null
i=0
while :; do
	i=$((i+1))
	p=bad
	[ "$(sha256sum </tmp/pattern)" = "$sum" ] && p=ok
	echo "tick=$i pattern=$p writer=$(cat /tmp/mode) mac=$(cat /sys/class/net/eth0/address) tcp=$(cat /tmp/tcp) end"
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
echo "# ${SECONDS} s: the guest runs (tick $(field "$T/src.out" tick))"

# A destination missing the VM's TAP refuses it before anything is sent.
dest nota "unix:$S/nota.sock" --incoming-tap net0=bnotap
timeout 60 "$BANYAN" ctl --api-socket "$S/src.api" migrate "unix:$S/nota.sock" --verify \
	>"$T/cnota.out" 2>&1
check "missing TAP: ctl migrate exits 1" status_is 1 "$?"
check "... naming the TAP" contains "$T/cnota.out" "bnotap"
wait "$DST"
check "... the destination exits 2" status_is 2 "$?"
check "... the source keeps running" running "$src"
check "... and the guest with it" grows "$T/src.out"

# migrate FROM FROM_PID TO URL SAYS [destination options]: migrate with the
# options in MIG (ctl migrate's, after the URL); its last line must say SAYS.
migrate() {
	local from=$1 pid=$2 to=$3 url=$4 says=$5 before first rc
	shift 5
	dest "$to" "$url" "$@"
	timeout 60 "$BANYAN" ctl --api-socket "$S/$from.api" migrate "$url" "${MIG[@]}" \
		>"$T/c$to.out" 2>&1
	rc=$?
	check "to $to: ctl migrate ${MIG[*]} exits 0" status_is 0 "$rc"
	if [ "$rc" != 0 ]; then
		tail -n 12 "$T/c$to.out" "$T/$from.err" "$T/$to.err" | sed 's/^/# /'
		ctl "$from" migrate status | sed 's/^/# /'
		echo "Bail out! the migration to $to failed"
		exit 1
	fi
	check "... and says $says" contains "$T/c$to.out" "$says"
	grep -h "migrat" "$T/c$to.out" | sed "s/^/# ${SECONDS} s: /"
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

# First move: pre-copy, the writer paced; verified page by page.
check "the writer is paced before the first move" \
	test "$(field "$T/src.out" writer)" = light
MIG=(--verify=pages --downtime 300)
migrate src "$src" mid "tcp:127.0.0.1:$PORT" "migrated, verified" --incoming-tap net0=bmig1
mid=$DST

# writer MODE FILE: a line to the guest's port 7001 switches its writer
# (light, then heavy, then light again); wait until FILE's ticks say MODE.
writer() {
	in_ns python3 -c 'import socket
s = socket.create_connection(("10.0.2.2", 7001), 10)
s.sendall(b"switch\n")
s.close()' 2>/dev/null || return 1
	for _ in $(seq 1 $((10 * SLOW * 5))); do
		[ "$(field "$2" writer)" = "$1" ] && return 0
		sleep 0.2
	done
	return 1
}
# The guest's writer goes flat out, then the second move: post-copy at
# once, verified by the post-copy hash.
check "the guest's writer rewrites its 8 MiB flat out" writer heavy "$T/mid.out"
MIG=(--verify --postcopy now --downtime 300)
migrate mid "$mid" dst "unix:$S/mig.sock" "migrated, verified, post-copy" --incoming-tap net0=bmig0
dst=$DST
pc=$(grep -o 'post-copy complete: [0-9]* pages arrived, [0-9]* asked for' "$T/dst.err")
echo "# destination: ${pc:-no post-copy line}"
check "... the destination received its pages after the switch" \
	grep -q 'post-copy complete: [1-9][0-9]* pages arrived' "$T/dst.err"
check "... the writer still ran flat out there" test "$(field "$T/dst.out" writer)" = heavy

# Third move: a VM that itself migrated in (by post-copy) moves on by
# pre-copy, the writer paced again; verified page by page.
check "the writer is paced again" writer light "$T/dst.out"
MIG=(--verify=pages --downtime 300)
migrate dst "$dst" back "tcp:127.0.0.1:$((PORT + 1))" "migrated, verified" \
	--incoming-tap net0=bmig1
dst=$DST

bad=$(cat "$T/src.out" "$T/mid.out" "$T/dst.out" "$T/back.out" | tr -d '\r' | grep -c 'pattern=bad')
check "the memory pattern held on every tick, before and after the migrations ($bad bad)" \
	test "$bad" = 0 -a "$(ticks "$T/back.out" | grep -c 'pattern=ok')" -gt 0
touch "$T/tcp.stop" # the host ends its stream; the guest reports once it read it all
for _ in $(seq 1 $((30 * SLOW))); do
	[ -n "$(field "$T/back.out" tcp)" ] && [ "$(hostv "$T/tcp.host" done)" = 1 ] && break
	sleep 0.5
done
got=$(field "$T/back.out" tcp)
echo "# TCP: host sent $(hostv "$T/tcp.host" bytes), guest read ${got:-nothing}"
check "the TCP stream spanning the three migrations arrived intact" \
	test "$got" = "$(hostv "$T/tcp.host" bytes)_ok"
echo "# ${SECONDS} s: the checks are done"
ctl back stop >/dev/null
wait "$dst"
check "the last destination stops as a VM does (exit 0)" status_is 0 "$?"
wait_bounded 10 "$flood"
tap_done
