#!/usr/bin/env bash
# Linux layer, rate limiters: in one boot, at refill times of 10, 100 and
# 1000 ms in turn, fio reads a rate-limited disk while iperf3 sends to the
# host through a rate-limited NIC, then iperf3 receives from it; each
# measured rate is within 5 % of the configured one (500 KiB/s on the
# disk and each way on the card). The VM starts with the 10 ms limiters
# (the CLI); PATCH /drives and PATCH /network-interfaces change them for
# the next refill time between measurements.
#
# Rates are well below what a nested guest does, and requests (16 KiB
# reads, frames of at most 60000 bytes) larger than the 10 ms buckets
# (5120 bytes): the bucket's debt keeps the rate (docs/virtio.md, "Rate
# limiters"). In the emulated host a device thread is often woken tens of
# ms late; a request served late counts from its due time, so no tokens
# are lost meanwhile (util/token_bucket.c).
#
# Each refill time: the guest prints phase=N and waits until the host
# has patched the limiters and opened that phase's iperf3 ports (one each
# way, so a client stopped at the end of its window does not hold up the
# next). fio
# measures the disk after 3 s of warm-up (--ramp_time: the bucket's first,
# full load is not counted), 16 requests in flight keep it backlogged. The
# card is loaded by iperf3 and measured as the guest's interface counters
# (frame bytes, what the limiter counts) once 1 MB has gone through (twice
# the largest bucket).
#
# The window is 10 s, and 25 s for the 1000 ms bucket. A token bucket lets
# through up to one full bucket more than rate x window in any window (the
# tokens a stalled sender saved), so a window of W seconds can read up to
# size / (rate x W) high: 20 % for a 1 s bucket over 5 s, which a sender
# slowed by a loaded emulated host does reach; 4 % over 25 s. And the
# guest reads a counter and the clock one after the other: a vCPU
# descheduled between the two on a loaded host moves a window's edge by
# up to hundreds of ms, 13 % of a 5 s window (seen), a third of that of
# 10 s.
#
# Everything stays inside a private network namespace.
#
# time-limit: 600 (seconds for one run, emulated host included: tests/linux/run)
set -u
GUEST_TIMEOUT=${GUEST_TIMEOUT:-400}
. "$(dirname "$0")/lib.sh"
linux_prereqs

ROOTFS=$GUEST_DIR/rootfs.ext4
for f in "$ROOTFS" "$(command -v iperf3)" "$(command -v ip)" "$(command -v curl)"; do
	if [ ! -e "$f" ]; then
		echo "Bail out! missing $f (tools/setup and tools/guest-image)"
		exit 1
	fi
done

REFILLS="10 100 1000"
RATE=512000 # bytes per second, everywhere
size() { echo $((RATE * $1 / 1000)); }
# Unix sockets cannot live on the emulated host's 9p /tmp: /run is a tmpfs.
API=$(mktemp -u /run/banyan-rl.XXXXXX)

netns_up banyan-rl-$$
trap 'kill ${servers:-} 2>/dev/null; ip netns del "$NS" 2>/dev/null; rm -rf "$T" "$API"' EXIT
in_ns ip tuntap add tap0 mode tap
in_ns ip link set tap0 mtu 60000
in_ns ip addr add 10.0.0.1/24 dev tap0
in_ns ip link set tap0 up

cp --sparse=always "$ROOTFS" "$T/rootfs.ext4"
truncate -s 64M "$T/a.img"

guest_script() {
	printf 'eval "$(echo %s | base64 -d | gunzip)"' "$(gzip -9c | base64 -w0)"
}
cmd=$(guest_script <<'EOF'
ip link set eth0 mtu 60000; ip link set eth0 up; ip addr add 10.0.0.2/24 dev eth0
for b in /sys/block/vd*; do [ "$(cat $b/serial)" = rl-a ] && disk=/dev/${b##*/}; done
# fiobw SECONDS: the disk's read rate over that window, in KiB/s
fiobw() {
	fio --minimal --name=rl --filename=$disk --direct=1 --ioengine=libaio \
		--rw=read --bs=16k --iodepth=16 --ramp_time=3 --runtime=$1 --time_based |
		awk -F';' '{ print $7 }'
}
# netrate rx|tx PORT SECONDS [iperf3 options]: frame bytes per second
# through eth0 that way, over a window of SECONDS
netrate() {
	dir=$1 port=$2 w=$3; shift 3
	f=/sys/class/net/eth0/statistics/${dir}_bytes
	start=$(cat $f)
	timeout $((w + 55)) iperf3 -c 10.0.0.1 -p $port -t $((w + 30)) "$@" >/dev/null 2>&1 &
	client=$!
	# The window opens once 1 MB went through: the first, full bucket is spent
	# however long the guest took to start the transfer.
	i=0
	while [ $(($(cat $f) - start)) -lt 1000000 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	b0=$(cat $f); t0=$(date +%s%N)
	sleep $w
	b1=$(cat $f); t1=$(date +%s%N)
	kill $client 2>/dev/null; wait
	echo $(( (b1 - b0) * 1000000000 / (t1 - t0) ))
}
n=0
for r in 10 100 1000; do
	n=$((n + 1)) port=$((5200 + 2 * n))
	w=$((r / 40)); [ $w -ge 10 ] || w=10
	echo phase=$n
	# The host patches the limiters, then opens this phase's port.
	i=0
	until timeout 2 bash -c "exec 3<>/dev/tcp/10.0.0.1/$port" 2>/dev/null || [ $i -ge 300 ]; do
		sleep 0.2; i=$((i + 1))
	done
	fiobw $w >/tmp/disk &
	echo tx_$r=$(netrate tx $port $w)
	wait
	echo disk_$r=$(cat /tmp/disk)
	echo rx_$r=$(netrate rx $((port + 1)) $w -R)
done
EOF
)
BOOT_ARGS="banyan.root=/dev/vda panic=-1" guest_boot rl --memory 512M --api-socket "$API" \
	--disk "path=$T/rootfs.ext4,id=rl-root" \
	--disk "path=$T/a.img,id=rl-a,ro,bw=$(size 10)/10ms" \
	--net "tap=tap0,tx_bw=$(size 10)/10ms,rx_bw=$(size 10)/10ms" \
	-- "$cmd" &
vm=$!

api() {
	curl -s --max-time 30 --unix-socket "$API" -X PATCH -H 'Content-Type: application/json' \
		-d "$2" "http://localhost$1"
}
bucket() { printf '{"bandwidth": {"size": %s, "refill_time": %s}}' "$(size "$1")" "$1"; }
patch_limits() {
	api /drives/rl-a "{\"drive_id\": \"rl-a\", \"rate_limiter\": $(bucket "$1")}" &&
		api /network-interfaces/net0 "{\"iface_id\": \"net0\", \"rx_rate_limiter\": $(bucket "$1"), \"tx_rate_limiter\": $(bucket "$1")}"
}
wait_phase() {
	for _ in $(seq 1 $((GUEST_TIMEOUT * 5))); do
		tr -d '\r' <"$T/rl.out" 2>/dev/null | grep -q "^phase=$1\$" && return 0
		kill -0 $vm 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}
servers=
n=0
for r in $REFILLS; do
	n=$((n + 1))
	wait_phase $n || break
	if [ $n -gt 1 ]; then
		check "ratelimit: PATCH the disk's and the card's limiters to $(size "$r") bytes per $r ms" \
			test -z "$(patch_limits "$r")"
	fi
	# Two servers: the transmit one (the guest's signal to go) and the receive one.
	in_ns iperf3 -s -B 10.0.0.1 -p $((5200 + 2 * n + 1)) >/dev/null 2>&1 &
	servers="$servers $!"
	sleep 0.2
	in_ns iperf3 -s -B 10.0.0.1 -p $((5200 + 2 * n)) >/dev/null 2>&1 &
	servers="$servers $!"
done
wait $vm

check_guest_ran rl
# near MEASURED EXPECTED: within 5 %
near() {
	local got=${1:-0} want=$2
	[ -n "$got" ] && [ $((got * 100)) -ge $((want * 95)) ] && [ $((got * 100)) -le $((want * 105)) ] ||
		{ echo "measured ${got:-nothing}, configured $want"; return 1; }
}
for r in $REFILLS; do
	# fio reports KiB/s; the card's rates are bytes/s.
	echo "# measured at $r ms: disk $(guest_value rl disk_$r) KiB/s (500 configured)," \
		"NIC tx $(guest_value rl tx_$r) B/s, rx $(guest_value rl rx_$r) B/s ($RATE configured)"
	check "ratelimit: disk at $(size "$r") bytes per $r ms reads at 500 KiB/s (fio)" \
		near "$(guest_value rl disk_$r)" 500
	check "ratelimit: NIC tx at $(size "$r") bytes per $r ms sends 500 KiB/s (iperf3)" \
		near "$(guest_value rl tx_$r)" $RATE
	check "ratelimit: NIC rx at $(size "$r") bytes per $r ms receives 500 KiB/s (iperf3 -R)" \
		near "$(guest_value rl rx_$r)" $RATE
done
tap_done
