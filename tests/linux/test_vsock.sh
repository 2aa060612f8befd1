#!/usr/bin/env bash
# Linux layer, virtio-vsock with Unix sockets on the host (Firecracker's
# model), in one boot: host-to-guest and guest-to-host echo over several
# connections at once, 100 MiB each way with matching checksums, closes
# seen by the other side, and resets for ports nobody listens on.
#
# The guest side is tests/linux/guest-tools/vsock-tool (busybox has no
# AF_VSOCK), static, on a small read-only ext4 disk; the host side is
# tests/linux/vsock_host.py.
#
# time-limit: 480 (seconds for one run, emulated host included: tests/linux/run)
set -u
. "$(dirname "$0")/lib.sh"
linux_prereqs

HERE=$(cd "$(dirname "$0")" && pwd)
VSOCK_TOOL=${VSOCK_TOOL:-$(dirname "$BANYAN")/tests/linux/vsock-tool}
HOST=$HERE/vsock_host.py
if [ ! -x "$VSOCK_TOOL" ]; then
	echo "Bail out! missing $VSOCK_TOOL (built by meson)"
	exit 1
fi

MIB=100
UDS=$T/v.sock
mkdir -p "$T/tools"
cp "$VSOCK_TOOL" "$T/tools/vsock-tool"
mke2fs -q -t ext4 -d "$T/tools" "$T/tools.ext4" 16M >/dev/null

# Host listeners the guest connects to: PATH_6000 echoes, PATH_6001 sinks.
"$HOST" serve-echo "${UDS}_6000" &
echo_pid=$!
"$HOST" serve-sink "${UDS}_6001" "$T/sink.out" &
sink_pid=$!
stop_host() { kill "$echo_pid" "$sink_pid" "${to_guest_pid:-}" 2>/dev/null; rm -rf "$T"; }
trap stop_host EXIT

guest_script() {
	printf 'eval "$(echo %s | base64 -d | gunzip)"' "$(gzip -9c | base64 -w0)"
}
cmd=$(guest_script <<EOF
mkdir -p /mnt && mount -o ro /dev/vda /mnt
V=/mnt/vsock-tool
# host -> guest: 4 echo connections at once on 5000, a big sink on 5001
\$V listen 5000 echo 4 & e=\$!
\$V listen 5001 sink 2>/tmp/sink.err | sha256sum | cut -d' ' -f1 >/tmp/sink.sum & s=\$!
# guest -> host: 4 echo connections at once
for i in 1 2 3 4; do
	head -c \$((200000 + i)) /dev/urandom >/tmp/e\$i
	( \$V connect 2 6000 pipe </tmp/e\$i | cmp -s - /tmp/e\$i && echo g2h_echo\$i=ok ) &
done
wait \$e; echo h2g_echo_rc=\$?
wait \$s; echo h2g_sum=\$(cat /tmp/sink.sum); echo h2g_eof=\$(cut -d' ' -f1 /tmp/sink.err)
wait
head -c $((MIB << 20)) /dev/urandom >/tmp/big
echo g2h_sum=\$(sha256sum </tmp/big | cut -d' ' -f1)
\$V connect 2 6001 pipe </tmp/big; echo g2h_rc=\$?
\$V connect 2 7777 pipe </dev/null 2>/tmp/refused.err; echo refused_rc=\$?
echo refused_err=\$(tr ' ' _ </tmp/refused.err)
EOF
)

# The host-initiated part runs alongside the boot; it waits for the guest's listeners.
"$HOST" to-guest "$UDS" "$T/to-guest.out" "$MIB" &
to_guest_pid=$!
BOOT_ARGS="panic=-1" guest_boot vsock --memory 512M --disk "path=$T/tools.ext4,ro" \
	--vsock "cid=42,socket=$UDS" -- "$cmd"
wait_bounded 120 "$to_guest_pid" "$sink_pid"

hv() { sed -n "s/^$1=//p" "$T/to-guest.out" 2>/dev/null; }
sv() { sed -n "s/^$1=//p" "$T/sink.out" 2>/dev/null; }

check_guest_ran vsock
for i in 0 1 2 3; do
	check "vsock: host -> guest echo, connection $i of 4 at once (and the guest's close seen)" \
		test "$(hv echo$i)" = ok
done
check "vsock: the guest's echo server served all 4" test "$(guest_value vsock h2g_echo_rc)" = 0
check "vsock: host -> guest got OK with a host port >= 2^30" test "$(hv hostport)" -ge 1073741824
check "vsock: $MIB MiB host -> guest, checksum matches" \
	test "$(guest_value vsock h2g_sum)" = "$(hv sent_sha256)"
check "vsock: the host's close is seen by the guest (EOF)" test "$(guest_value vsock h2g_eof)" = eof
for i in 1 2 3 4; do
	check "vsock: guest -> host echo, connection $i of 4 at once" \
		test "$(guest_value vsock g2h_echo$i)" = ok
done
check "vsock: $MIB MiB guest -> host, checksum matches" \
	test "$(guest_value vsock g2h_sum)" = "$(sv sha256)"
check "vsock: the guest's close is seen by the host (EOF, $MIB MiB)" \
	test "$(sv bytes)" = $((MIB << 20))
check "vsock: the guest saw the host close its end" test "$(guest_value vsock g2h_rc)" = 0
check "vsock: guest connect to a host port nobody listens on is reset" \
	test "$(guest_value vsock refused_rc)" = 1
check "vsock: host CONNECT to a guest port nobody listens on is closed without OK" \
	test "$(hv noport)" = closed
check "vsock: the socket is removed when the VM ends" test ! -e "$UDS"
tap_done
