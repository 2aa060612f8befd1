#!/usr/bin/env bash
# Linux layer, rate limiters: in one boot, fio reads two rate-limited disks
# (refill times A and B) and iperf3 sends to and receives from the host
# through a NIC whose tx limiter refills every A and rx limiter every B;
# each measured rate is within 5 % of the configured one.
#
# Refill times: RL_REFILL_A (default 500 ms) and RL_REFILL_B (default
# 1000 ms). The rates (500 KiB/s per disk and each way on the card) are
# well below what a nested guest does, and requests (64 KiB, frames
# of at most 60000 bytes) well below a bucket: in the emulated host a
# device thread is often woken tens of ms late, and a bucket that fills
# meanwhile loses tokens (docs/virtio.md, "Rate limiters", has the runs at
# 100 ms; the unit tests measure 10 to 1000 ms with real timers).
# The disks are measured by fio over 4 s after 4 s of warm-up
# (--ramp_time), so the bucket's first, full load is not counted; 16
# requests in flight keep the device backlogged. The card is loaded by
# iperf3 and measured as the guest's interface counters (frame bytes, what
# the limiter counts) over 5 s, once 2 MB have gone through.
#
# Everything stays inside a private network namespace.
#
# time-limit: 600 (seconds for one run, emulated host included: tests/linux/run)
set -u
GUEST_TIMEOUT=${GUEST_TIMEOUT:-400}
. "$(dirname "$0")/lib.sh"
linux_prereqs

ROOTFS=$GUEST_DIR/rootfs.ext4
for f in "$ROOTFS" "$(command -v iperf3)" "$(command -v ip)"; do
	if [ ! -e "$f" ]; then
		echo "Bail out! missing $f (tools/setup and tools/guest-image)"
		exit 1
	fi
done

A=${RL_REFILL_A:-500}
B=${RL_REFILL_B:-1000}
# Bucket sizes for 500 KiB/s on the disks and on the NIC each way.
DISK_A=$((512000 * A / 1000))
DISK_B=$((512000 * B / 1000))
NET_A=$((512000 * A / 1000))
NET_B=$((512000 * B / 1000))

NS=banyan-rl-$$
cleanup() {
	[ -n "${iperf_pid:-}" ] && kill "$iperf_pid" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
in_ns() { ip netns exec "$NS" "$@"; }

ip netns add "$NS" || { echo "Bail out! cannot create a network namespace"; exit 1; }
in_ns ip link set lo up
in_ns ip tuntap add tap0 mode tap
in_ns ip link set tap0 mtu 60000
in_ns ip addr add 10.0.0.1/24 dev tap0
in_ns ip link set tap0 up
in_ns iperf3 -s -B 10.0.0.1 >/dev/null 2>&1 &
iperf_pid=$!

cp --sparse=always "$ROOTFS" "$T/rootfs.ext4"
truncate -s 64M "$T/a.img" "$T/b.img"

guest_script() {
	printf 'eval "$(echo %s | base64 -d | gunzip)"' "$(gzip -9c | base64 -w0)"
}
cmd=$(guest_script <<'EOF'
ip link set eth0 mtu 60000; ip link set eth0 up; ip addr add 10.0.0.2/24 dev eth0
for b in /sys/block/vd*; do
	case $(cat $b/serial) in rl-a) da=/dev/${b##*/} ;; rl-b) db=/dev/${b##*/} ;; esac
done
fiobw() {
	fio --minimal --name=rl --filename=$1 --direct=1 --ioengine=libaio \
		--rw=read --bs=64k --iodepth=16 --ramp_time=4 --runtime=4 --time_based |
		awk -F';' '{ print $7 }'
}
# netrate rx|tx [iperf3 options]: frame bytes per second through eth0 in that direction
netrate() {
	dir=$1; shift
	f=/sys/class/net/eth0/statistics/${dir}_bytes
	start=$(cat $f)
	timeout 90 iperf3 -c 10.0.0.1 -t 25 "$@" >/dev/null 2>&1 &
	# The window opens once 2 MB went through: the first, full bucket is spent
	# however long the guest took to start the transfer.
	i=0
	while [ $(($(cat $f) - start)) -lt 2000000 ] && [ $i -lt 400 ]; do sleep 0.1; i=$((i + 1)); done
	b0=$(cat $f); t0=$(date +%s%N)
	sleep 5
	b1=$(cat $f); t1=$(date +%s%N)
	wait
	echo $(( (b1 - b0) * 1000000000 / (t1 - t0) ))
}
echo disk_a=$(fiobw $da)
echo disk_b=$(fiobw $db)
echo tx=$(netrate tx)
echo rx=$(netrate rx -R)
EOF
)
printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$NS" "$BANYAN" >"$T/banyan-ns"
chmod +x "$T/banyan-ns"
BANYAN=$T/banyan-ns BOOT_ARGS="banyan.root=/dev/vda panic=-1" guest_boot rl --memory 512M \
	--disk "path=$T/rootfs.ext4,id=rl-root" \
	--disk "path=$T/a.img,id=rl-a,ro,bw=$DISK_A/${A}ms" \
	--disk "path=$T/b.img,id=rl-b,ro,bw=$DISK_B/${B}ms" \
	--net "tap=tap0,tx_bw=$NET_A/${A}ms,rx_bw=$NET_B/${B}ms" \
	-- "$cmd"

check_guest_ran rl
# near MEASURED EXPECTED: within 5 %
near() {
	local got=${1:-0} want=$2
	[ -n "$got" ] && [ $((got * 100)) -ge $((want * 95)) ] && [ $((got * 100)) -le $((want * 105)) ] ||
		{ echo "measured ${got:-nothing}, configured $want"; return 1; }
}
# fio reports KiB/s; the card's rates are bytes/s.
echo "# measured: disk ${A} ms $(guest_value rl disk_a) KiB/s, disk ${B} ms" \
	"$(guest_value rl disk_b) KiB/s (500 configured); NIC tx ${A} ms $(guest_value rl tx)" \
	"B/s, rx ${B} ms $(guest_value rl rx) B/s (512000 configured)"
check "ratelimit: disk at $DISK_A bytes per ${A} ms reads at 500 KiB/s (fio)" \
	near "$(guest_value rl disk_a)" 500
check "ratelimit: disk at $DISK_B bytes per ${B} ms reads at 500 KiB/s (fio)" \
	near "$(guest_value rl disk_b)" 500
check "ratelimit: NIC tx at $NET_A bytes per ${A} ms sends 500 KiB/s (iperf3)" \
	near "$(guest_value rl tx)" 512000
check "ratelimit: NIC rx at $NET_B bytes per ${B} ms receives 500 KiB/s (iperf3 -R)" \
	near "$(guest_value rl rx)" 512000
tap_done
