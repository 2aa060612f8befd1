#!/usr/bin/env bash
# Linux layer, the metadata service: a guest reaches MMDS through its
# virtio-net card, configured over the API, as Firecracker's guests do.
# Boot 1, V1 at 169.254.169.254: plain GETs (a leaf, a listing, JSON on
# Accept, a missing path). Boot 2, V2 at 169.254.170.2: a GET without a
# token is refused (401), a token from PUT /latest/api/token opens the
# data, a wrong one does not, and PATCH /mmds before boot shows. The guest
# speaks HTTP with busybox nc (see req below).
#
# The TAP lives in a private network namespace and has no address: the
# guest's frames for the MMDS address never reach it (lwIP answers inside
# banyan); a packet socket on the TAP counts what did arrive.
#
# time-limit: 600 (seconds for one run, emulated host included: tests/linux/run)
set -u
GUEST_TIMEOUT=${GUEST_TIMEOUT:-300}
. "$(dirname "$0")/lib.sh"
linux_prereqs

NS=banyan-mmds-$$
SOCK=/run/banyan-mmds-$$.sock
cleanup() { ip netns del "$NS" 2>/dev/null; rm -f "$SOCK"; rm -rf "$T"; }
trap cleanup EXIT
in_ns() { ip netns exec "$NS" "$@"; }
ip netns add "$NS" || { echo "Bail out! cannot create a network namespace"; exit 1; }
in_ns ip tuntap add tap0 mode tap
in_ns ip link set tap0 up

api() { # api METHOD PATH [BODY]: prints the body, then the status
	curl -s --max-time 60 --unix-socket "$SOCK" -X "$1" -H 'Content-Type: application/json' \
		${3:+--data "$3"} -w ' %{http_code}' "http://localhost$2"
}
api_ok() {
	local out
	out=$(api "$@")
	case "${out##* }" in 2??) return 0 ;; esac
	echo "$1 $2 -> $out"
	return 1
}

guest_script() {
	printf 'eval "$(echo %s | base64 -d | gunzip)"' "$(gzip -9c | base64 -w0)"
}

# boot NAME MMDS_CONFIG SCRIPT: configure over the API, start, wait for power-off
boot() {
	local name=$1 mmds_cfg=$2 args
	args=$(printf 'console=ttyS0 quiet panic=-1 -- %s' "$3" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')
	rm -f "$SOCK"
	timeout -s KILL "$GUEST_TIMEOUT" ip netns exec "$NS" "$BANYAN" run --api-socket "$SOCK" \
		</dev/null >"$T/$name.out" 2>"$T/$name.err" &
	local pid=$!
	for _ in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
	check "$name: PUT /machine-config" api_ok PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 512}'
	check "$name: PUT /boot-source" api_ok PUT /boot-source \
		"{\"kernel_image_path\": \"$KERNEL\", \"initrd_path\": \"$INITRD\", \"boot_args\": $args}"
	check "$name: PUT /network-interfaces/eth0" api_ok PUT /network-interfaces/eth0 \
		'{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "52:54:00:12:34:56"}'
	check "$name: PUT /mmds/config" api_ok PUT /mmds/config "$mmds_cfg"
	check "$name: PUT /mmds" api_ok PUT /mmds \
		'{"latest": {"meta-data": {"ami-id": "ami-banyan-1", "tags": {"role": "test"}}}}'
	[ -n "${PATCH:-}" ] && check "$name: PATCH /mmds" api_ok PATCH /mmds "$PATCH"
	check "$name: InstanceStart" api_ok PUT /actions '{"action_type": "InstanceStart"}'
	wait "$pid"
	echo $? >"$T/$name.rc"
	tr -d '\r' <"$T/$name.out" >"$T/$name.console"
}

# Every frame the guest's card sends to the TAP, counted on the host side:
# all of them, and those that are ARP or IPv4 (MMDS's, had they escaped).
# The counts are written after every frame, and the capture records its own
# pid: in_ns may run it under a subshell, whose pid is not the capture's.
in_ns python3 -c '
import os, signal, socket, sys
d = sys.argv[1]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(("tap0", 0))
n = [0, 0]
def save():
    open(d + "/cap.all", "w").write(str(n[0]))
    open(d + "/cap.v4", "w").write(str(n[1]))
def done(*_):
    save()
    sys.exit(0)
signal.signal(signal.SIGTERM, done)
save()
open(d + "/cap.pid", "w").write(str(os.getpid()))
while True:
    f, addr = s.recvfrom(65536)
    if addr[2] == socket.PACKET_OUTGOING:
        continue
    n[0] += 1
    n[1] += f[12:14] in (b"\x08\x00", b"\x08\x06")
    save()
' "$T" &
cap_pid=$!
for _ in $(seq 1 50); do [ -s "$T/cap.pid" ] && break; sleep 0.1; done

# req METHOD PATH HEADERS: one HTTP request with busybox nc (the rig's
# initramfs has no curl, and its static busybox wget crashes there: glibc's
# NSS without its libraries); the status into /tmp/s, the body into /tmp/b.
PRELUDE='ip link set eth0 up; ip addr add 10.0.0.2/24 dev eth0; ip route add $A dev eth0
req() { (printf "$1 $2 HTTP/1.1\r\nHost: mmds\r\n$3\r\n"; sleep 5) | timeout 20 nc $A 80 >/tmp/r
  sed -n "1s/^HTTP\/1.1 \([0-9]*\).*/\1/p" /tmp/r >/tmp/s; sed "1,/^\r\$/d" /tmp/r >/tmp/b; }'

v1=$( { echo A=169.254.169.254; echo "$PRELUDE"; cat <<'EOF'
req GET /latest/meta-data/ami-id ''; echo ami=$(cat /tmp/b)
req GET /latest/meta-data/ ''; echo list=$(tr '\n' , </tmp/b)
req GET /latest/meta-data/tags 'Accept: application/json\r\n'; echo json=$(cat /tmp/b)
req GET /latest/nothing ''; echo missing=$(cat /tmp/s)
EOF
} | guest_script)
boot v1 '{"network_interfaces": ["eth0"]}' "$v1"
check_guest_ran v1
check "v1: a leaf is its text" test "$(guest_value v1 ami)" = ami-banyan-1
check "v1: an object lists its keys, '/' after sub-objects" test "$(guest_value v1 list)" = "ami-id,tags/"
check "v1: Accept: application/json gives JSON" test "$(guest_value v1 json)" = '{"role":"test"}'
check "v1: a missing path is 404" test "$(guest_value v1 missing)" = 404
check "v1: the log names the card serving MMDS" contains "$T/v1.err" "eth0: serves the metadata service"

v2=$( { echo A=169.254.170.2; echo "$PRELUDE"; cat <<'EOF'
req GET /latest/meta-data/ami-id ''; echo notoken=$(cat /tmp/s)
req PUT /latest/api/token 'X-metadata-token-ttl-seconds: 60\r\n'; tok=$(cat /tmp/b); echo toklen=${#tok}
req GET /latest/meta-data/ami-id "X-metadata-token: $tok\r\n"; echo ami=$(cat /tmp/b)
req GET /latest/meta-data/extra "X-metadata-token: $tok\r\n"; echo patched=$(cat /tmp/b)
req GET /latest/meta-data/ami-id "X-metadata-token: x$tok\r\n"; echo badtoken=$(cat /tmp/s)
EOF
} | guest_script)
PATCH='{"latest": {"meta-data": {"extra": "patched"}}}' \
	boot v2 '{"version": "V2", "network_interfaces": ["eth0"], "ipv4_address": "169.254.170.2"}' "$v2"
check_guest_ran v2
check "v2: a GET without a token is refused (401)" test "$(guest_value v2 notoken)" = 401
check "v2: PUT /latest/api/token gives a token" test "$(guest_value v2 toklen)" -ge 32
check "v2: a GET with the token gets the data" test "$(guest_value v2 ami)" = ami-banyan-1
check "v2: PATCH /mmds before boot shows" test "$(guest_value v2 patched)" = patched
check "v2: a wrong token is refused (401)" test "$(guest_value v2 badtoken)" = 401
kill "$(cat "$T/cap.pid" 2>/dev/null)" 2>/dev/null
wait "$cap_pid" 2>/dev/null
check "the TAP saw the guest's frames ($(cat "$T/cap.all" 2>/dev/null) in all)" \
	test "$(cat "$T/cap.all" 2>/dev/null || echo 0)" -gt 0
check "no ARP or IPv4 frame reached the TAP: MMDS never left banyan" \
	test "$(cat "$T/cap.v4" 2>/dev/null)" = 0
tap_done
