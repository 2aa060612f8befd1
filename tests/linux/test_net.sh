#!/usr/bin/env bash
# Linux layer, virtio-net on TAP: in one boot, a guest with two cards (MACs
# as given) configures addresses, pings the host end of each TAP, and moves
# 32 MiB over TCP each way with matching checksums (large transfers are what
# the emulated host fails on most: docs/testing.md, "Known failures").
#
# Everything stays inside a private network namespace: the TAPs, their
# addresses, the host-side servers and banyan itself. No traffic leaves it.
#
# time-limit: 480 (seconds for one run, emulated host included: tests/linux/run)
set -u
# A boot takes about a minute here; one that hangs is given up well within the time limit.
GUEST_TIMEOUT=${GUEST_TIMEOUT:-300}
. "$(dirname "$0")/lib.sh"
linux_prereqs

for tool in ip socat; do
	if ! command -v $tool >/dev/null; then
		echo "Bail out! missing $tool (tools/setup installs it)"
		exit 1
	fi
done

NS=banyan-net-$$
cleanup_ns() { ip netns del "$NS" 2>/dev/null; rm -rf "$T"; }
trap cleanup_ns EXIT
in_ns() { ip netns exec "$NS" "$@"; }

ip netns add "$NS" || { echo "Bail out! cannot create a network namespace"; exit 1; }
in_ns ip link set lo up
in_ns ip tuntap add tap0 mode tap
in_ns ip tuntap add tap1 mode tap
in_ns ip addr add 10.0.0.1/24 dev tap0
in_ns ip addr add 10.0.1.1/24 dev tap1
in_ns ip link set tap0 up
in_ns ip link set tap1 up

MIB=32
head -c $((MIB << 20)) /dev/urandom >"$T/to-guest.bin"
to_guest_sum=$(sha256sum <"$T/to-guest.bin" | cut -d' ' -f1)

# Host side: serve the file on 10.0.0.1:5002, receive on 10.0.0.1:5001.
in_ns socat -u "FILE:$T/to-guest.bin" TCP-LISTEN:5002,bind=10.0.0.1,reuseaddr &
serve_pid=$!
( in_ns socat -u TCP-LISTEN:5001,bind=10.0.0.1,reuseaddr - | sha256sum | cut -d' ' -f1 >"$T/from-guest.sum" ) &
recv_pid=$!

# The kernel command line takes at most 32 words after "--": the guest
# script travels gzip'ed and base64-encoded as one word. Each transfer has
# a time limit (about ten times what it takes inside the emulated host), so
# one that stalls fails its check instead of holding the whole boot.
guest_script() {
	printf 'eval "$(echo %s | base64 -d | gunzip)"' "$(gzip -9c | base64 -w0)"
}
cmd=$(guest_script <<EOF
ip link set eth0 up; ip link set eth1 up
ip addr add 10.0.0.2/24 dev eth0; ip addr add 10.0.1.2/24 dev eth1
echo mac0=\$(cat /sys/class/net/eth0/address); echo mac1=\$(cat /sys/class/net/eth1/address)
echo carrier=\$(cat /sys/class/net/eth0/carrier)
ping -c 3 -W 5 10.0.0.1 >/dev/null && echo ping0=ok
ping -c 2 -W 5 10.0.1.1 >/dev/null && echo ping1=ok
echo down=\$(timeout 150 nc 10.0.0.1 5002 | sha256sum | cut -d' ' -f1)
head -c $((MIB << 20)) /dev/urandom >/tmp/up.bin
echo up=\$(sha256sum </tmp/up.bin | cut -d' ' -f1)
timeout 150 nc 10.0.0.1 5001 </tmp/up.bin; echo sent=\$?
sleep 3
EOF
)
# banyan runs inside the namespace, through a wrapper guest_boot can call.
printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$NS" "$BANYAN" >"$T/banyan-ns"
chmod +x "$T/banyan-ns"
BANYAN=$T/banyan-ns BOOT_ARGS="panic=-1" guest_boot net --memory 512M \
	--net tap=tap0,mac=52:54:00:12:34:56 --net tap=tap1,mac=52:54:00:ab:cd:ef,id=second \
	-- "$cmd"
# Bounded: a transfer that never completes fails the check below instead
# of hanging the suite (the guest is gone by now; its data is in or not).
for _ in $(seq 1 120); do
	kill -0 "$recv_pid" 2>/dev/null || break
	sleep 0.5
done
in_ns pkill -f 'socat -u' 2>/dev/null
kill "$recv_pid" "$serve_pid" 2>/dev/null
wait "$recv_pid" "$serve_pid" 2>/dev/null

check_guest_ran net
check "net: first card has the MAC given" test "$(guest_value net mac0)" = 52:54:00:12:34:56
check "net: second card has the MAC given" test "$(guest_value net mac1)" = 52:54:00:ab:cd:ef
check "net: link is up (carrier from the config status)" test "$(guest_value net carrier)" = 1
check "net: the guest pings the host end of tap0" test "$(guest_value net ping0)" = ok
check "net: the guest pings the host end of tap1" test "$(guest_value net ping1)" = ok
check "net: $MIB MiB host -> guest over TCP, checksum matches" \
	test "$(guest_value net down)" = "$to_guest_sum"
check "net: $MIB MiB guest -> host over TCP, checksum matches" \
	test "$(guest_value net up)" = "$(cat "$T/from-guest.sum" 2>/dev/null)"
check "net: the log names each TAP and MAC" contains "$T/net.err" "TAP tap1, MAC 52:54:00:ab:cd:ef"
tap_done
