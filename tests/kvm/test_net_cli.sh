#!/usr/bin/env bash
# KVM layer, network and vsock options: bad --net/--vsock values, a missing,
# busy or non-TAP interface and an existing vsock socket path must end
# `banyan run` with exit status 2 and a clear message before the guest
# starts; good ones boot a tiny guest. TAPs live in a private network
# namespace. Usage: test_net_cli.sh BANYAN GUEST_DIR
set -u
. "$(dirname "$0")/../lib/tap.sh"

BANYAN=$1
GUESTS=$2
HELLO=$GUESTS/hello.elf
T=$(mktemp -d)
NS=banyan-netcli-$$
trap 'ip netns del "$NS" 2>/dev/null; kill $holder 2>/dev/null; rm -rf "$T"' EXIT
holder=

# run NAME ARGS...: stdout/stderr/status in $T/NAME.{out,err,rc}; in the namespace when it exists
run() {
	local name=$1
	shift
	local pre=()
	[ -e "/run/netns/$NS" ] && pre=(ip netns exec "$NS")
	timeout -s KILL 60 "${pre[@]}" "$BANYAN" run "$@" </dev/null >"$T/$name.out" 2>"$T/$name.err"
	echo $? >"$T/$name.rc"
}
rc() { cat "$T/$1.rc"; }

# Option errors: refused while parsing, nothing opened.
run badmac --kernel "$HELLO" --net tap=tap0,mac=52:54:00:zz:00:01
check "--net bad MAC: exit 2" status_is 2 "$(rc badmac)"
check "--net bad MAC: says so" contains "$T/badmac.err" "not a unicast MAC address"
run mcast --kernel "$HELLO" --net tap=tap0,mac=01:00:5e:00:00:01
check "--net multicast MAC: exit 2" status_is 2 "$(rc mcast)"
run notap --kernel "$HELLO" --net mac=52:54:00:00:00:01
check "--net without tap=: exit 2" status_is 2 "$(rc notap)"
check "--net without tap=: says so" contains "$T/notap.err" "needs tap=NAME"
run twice --kernel "$HELLO" --net tap0 --net tap=tap0
check "--net the same TAP twice: exit 2" status_is 2 "$(rc twice)"
run cid2 --kernel "$HELLO" --vsock cid=2,socket="$T/v.sock"
check "--vsock cid=2: exit 2" status_is 2 "$(rc cid2)"
check "--vsock cid=2: says so" contains "$T/cid2.err" "from 3 to"
run cidbad --kernel "$HELLO" --vsock cid=lots,socket="$T/v.sock"
check "--vsock cid=lots: exit 2" status_is 2 "$(rc cidbad)"
run nosock --kernel "$HELLO" --vsock cid=3
check "--vsock without socket=: exit 2" status_is 2 "$(rc nosock)"

if [ ! -w /dev/kvm ] || ! ip netns add "$NS" 2>/dev/null; then
	for n in "missing TAP" "busy TAP" "not a TAP" "good TAP" "vsock socket exists" \
		"vsock dead socket" "vsock live socket refused" "vsock live socket message" "vsock"; do
		skip "$n" "needs /dev/kvm and network namespaces (root)"
	done
	tap_done
	exit
fi
ip netns exec "$NS" ip tuntap add tap0 mode tap
ip netns exec "$NS" ip tuntap add tap1 mode tap

run missing --kernel "$HELLO" --net tap=nosuch0
check "missing TAP: exit 2" status_is 2 "$(rc missing)"
check "missing TAP: names it" contains "$T/missing.err" "cannot open TAP nosuch0: no such network interface"
check "missing TAP: not created behind the operator's back" \
	bash -c "! ip netns exec $NS ip link show nosuch0 >/dev/null 2>&1"
run notatap --kernel "$HELLO" --net tap=lo
check "not a TAP (lo): exit 2" status_is 2 "$(rc notatap)"
check "not a TAP (lo): says so" contains "$T/notatap.err" "not a TAP device"

# Another process holds tap1.
export T
ip netns exec "$NS" /usr/bin/python3 -c '
import fcntl, os, struct, time
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", b"tap1", 0x0002 | 0x1000 | 0x4000))
open(os.environ["T"] + "/held", "w").close()
time.sleep(60)' &
holder=$!
for _ in $(seq 1 100); do [ -e "$T/held" ] && break; sleep 0.1; done
run busy --kernel "$HELLO" --net tap=tap1
check "busy TAP: exit 2" status_is 2 "$(rc busy)"
check "busy TAP: says so" contains "$T/busy.err" "busy"
kill $holder 2>/dev/null

run good --kernel "$HELLO" --net tap=tap0
check "good TAP: the guest runs (exit 0)" status_is 0 "$(rc good)"
mac1=$(grep -o 'MAC [0-9a-f:]*' "$T/good.err" | cut -c5-)
run good2 --kernel "$HELLO" --net tap=tap0
mac2=$(grep -o 'MAC [0-9a-f:]*' "$T/good2.err" | cut -c5-)
check "good TAP: the generated MAC is stable" bash -c "[ -n '$mac1' ] && [ '$mac1' = '$mac2' ]"
check "good TAP: the generated MAC is locally administered unicast" \
	test $((0x${mac1:0:2} & 3)) = 2

touch "$T/exists.sock"
run exists --kernel "$HELLO" --vsock cid=3,socket="$T/exists.sock"
check "vsock socket exists: exit 2" status_is 2 "$(rc exists)"
check "vsock socket exists: says so" contains "$T/exists.err" "it exists"
# What a VMM killed with SIGKILL leaves: a socket file nobody listens on.
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/dead.sock"
run dead --kernel "$HELLO" --vsock cid=3,socket="$T/dead.sock"
check "vsock: a dead socket (its VMM killed) is replaced: the guest runs (exit 0)" \
	status_is 0 "$(rc dead)"
python3 -c 'import socket, sys, time; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])
s.listen(1); time.sleep(120)' "$T/live.sock" &
live=$!
for _ in $(seq 1 50); do [ -S "$T/live.sock" ] && break; sleep 0.1; done
run live --kernel "$HELLO" --vsock cid=3,socket="$T/live.sock"
kill "$live"
check "vsock: a socket another process listens on is refused: exit 2" status_is 2 "$(rc live)"
check "vsock: ... and says so" contains "$T/live.err" "another process listens"
run vsock --kernel "$HELLO" --vsock cid=3,socket="$T/v.sock"
check "vsock: the guest runs (exit 0) and the socket is removed" \
	bash -c "[ $(rc vsock) = 0 ] && [ ! -e '$T/v.sock' ]"
tap_done
