#!/usr/bin/env bash
# Linux layer, snapshots: one Linux guest boots and works (a counter loop,
# a marker file per tick in its tmpfs, the count written to and read back
# from its virtio-blk disk, a ping to the host over its virtio-net card
# (a TAP), the previous count read from a second disk that
# has a copy-on-write overlay, its generation ID read from /dev/mem); it is
# snapshotted mid-workload (full, then two diffs) and stopped. New
# processes restore it: it continues counting, its disk still works, files
# made after the snapshot are gone (rollback), the diff chain composes, ten
# clones run at once with distinct generation IDs, MACs and vsock CIDs (as
# their guests see them) and share their memory, the overlay disk rolls
# back with the VM (each tick reads the one before), and damaged snapshots
# are refused.
#
# Snapshot under load: the host streams a test pattern to the guest over
# TCP through the TAP and over a vsock connection while the VM is
# snapshotted (and left paused); the VMM is then killed (SIGKILL: its vsock
# socket stays behind) and the snapshot restored. The TCP transfer spanning
# the snapshot completes intact; the vsock stream (reset at restore by
# design) arrived exact up to the snapshot; a new vsock connection works.
#
# time-limit: 1200 (seconds for one run, emulated host included: tests/linux/run)
set -u
. "$(dirname "$0")/lib.sh"
linux_prereqs

vsock_tools_disk

# The VM and its clones get TAPs (bsnap, bsnap-0..9) in a network namespace
# of their own; every banyan command runs in it.
NS=banyan-snap-$$
cleanup_ns() { ip netns del "$NS" 2>/dev/null; rm -rf "$T"; }
trap cleanup_ns EXIT
ip netns add "$NS" || { echo "Bail out! cannot create a network namespace"; exit 1; }
for tap in bsnap bsnap-{0..9}; do ip netns exec "$NS" ip tuntap add "$tap" mode tap; done
ip netns exec "$NS" ip addr add 10.0.2.1/24 dev bsnap
ip netns exec "$NS" ip link set bsnap up
printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$NS" "$BANYAN" >"$T/banyan-ns"
chmod +x "$T/banyan-ns"
BANYAN=$T/banyan-ns

# The workload, gzip'ed and base64-encoded: the kernel refuses more than 32
# words for init and 2 KiB of command line. On a new generation ID the
# guest rebinds its network driver, which reads the card's MAC afresh (a
# clone's is new); its vsock driver learns a new CID by itself.
LOOP=$(gzip -9c <<'EOF' | base64 -w0
mkdir -p /mnt && mount -o ro /dev/vdc /mnt
/mnt/vsock-tool listen 5100 check >/tmp/vck 2>&1 &
/mnt/vsock-tool listen 5101 echo 64 >/dev/null 2>&1 &
(/mnt/vsock-tool listen 5102 echo && /mnt/vsock-tool tcp 10.0.2.1 7000) >/tmp/tcp 2>&1 &
i=0
lastg=
while :; do
	i=$((i+1))
	touch /tmp/mark.$i
	echo 3 >/proc/sys/vm/drop_caches
	p=$(dd if=/dev/vdb bs=512 count=1 2>/dev/null | tr -d '\0' | head -n1)
	echo $i | dd of=/dev/vdb bs=512 conv=sync,fsync 2>/dev/null
	echo $i | dd of=/dev/vda bs=512 conv=sync,fsync 2>/dev/null
	echo 3 >/proc/sys/vm/drop_caches
	d=$(dd if=/dev/vda bs=512 count=1 2>/dev/null | tr -d '\0' | head -n1)
	g=$(dd if=/dev/mem bs=16 skip=61440 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')
	if [ -n "$lastg" ] && [ "$g" != "$lastg" ]; then
		n=$(basename "$(readlink /sys/class/net/eth0/device)")
		echo "$n" >/sys/bus/virtio/drivers/virtio_net/unbind
		echo "$n" >/sys/bus/virtio/drivers/virtio_net/bind
	fi
	lastg=$g
	ip addr add 10.0.2.2/24 dev eth0 2>/dev/null
	ip link set eth0 up
	net=no
	ping -c 1 -W 2 10.0.2.1 >/dev/null 2>&1 && net=ok
	m=$(cat /sys/class/net/eth0/address 2>/dev/null)
	c=$(/mnt/vsock-tool cid 2>&1 | tail -n 1 | tr ' ' _)
	s="vck=$(echo $(cat /tmp/vck) | tr ' ' _) tcp=$(echo $(cat /tmp/tcp) | tr ' ' _)"
	echo "tick=$i files=$(ls /tmp/mark.* | wc -l) disk=$d gen=$g prev=${p:-0} mac=$m cid=$c $s net=$net"
	sleep 0.3
done
EOF
)

truncate -s 8M "$T/disk.img" "$T/disk2.img"
"$BANYAN" run --kernel "$KERNEL" --initrd "$INITRD" --memory 256M --api-socket "$T/api.sock" \
	--disk path="$T/disk.img" --disk path="$T/disk2.img",overlay="$T/vm.overlay" \
	--disk path="$T/tools.ext4",ro --net tap=bsnap,mac=52:54:00:aa:00:01 \
	--vsock cid=7,socket="$T/v.sock" \
	--cmdline "console=ttyS0 quiet -- echo $LOOP | base64 -d | gunzip | sh" </dev/null \
	>"$T/orig.out" 2>"$T/orig.err" &
vm=$!
ctl() {
	"$BANYAN" ctl --api-socket "$T/api.sock" "$@" || {
		local rc=$?
		echo "banyan ctl exit $rc; the VMM's log:"
		tail -n 5 "$T/orig.err"
		return $rc
	}
}
# wait_tick FILE N: until the guest printed tick N (GUEST_TIMEOUT at most)
wait_tick() {
	for _ in $(seq 1 $((GUEST_TIMEOUT * 5))); do
		grep -q "^tick=$2 " "$1" 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}
# field FILE KEY [first|last]: a field of the first or last complete tick line
# (a VM stopped while printing leaves its last line cut short)
field() {
	tr -d '\r' <"$1" | grep -E '^tick=.* net=(ok|no)$' | { [ "${3:-first}" = first ] && head -n1 || tail -n1; } |
		tr ' ' '\n' | sed -n "s/^$2=//p"
}

same() { [ -n "$1" ] && [ "$1" = "$2" ]; }
differ() { [ -n "$1" ] && [ -n "$2" ] && [ "$1" != "$2" ]; }

wait_tick "$T/orig.out" 5 || { echo "Bail out! the guest did not start its loop"; tail -20 "$T/orig.out"; exit 1; }
mkdir -p "$T/store"
check "snapshot mid-workload (full)" ctl snapshot create "$T/store/base"
base_tick=$(field "$T/orig.out" tick last)
wait_tick "$T/orig.out" $((base_tick + 3))
check "diff snapshot (child)" ctl snapshot create --diff "$T/store/child"
wait_tick "$T/orig.out" $((base_tick + 6))
check "diff snapshot (grandchild)" ctl snapshot create --diff "$T/store/grand"
wait_tick "$T/orig.out" $((base_tick + 9))
orig_gen=$(field "$T/orig.out" gen last)

# Snapshot under load (see the top). The host's TCP peer lives on after the
# VMM; the original stays paused after the snapshot, so the restored guest
# is the only one that ever continues that connection.
KIBPS=${FLOOD_KIBPS:-256}
rm -f "$T/tcp.stop"
ip netns exec "$NS" python3 "$HOST_PY" tcp-flood 10.0.2.1 7000 "$T/tcp.host" "$T/tcp.stop" "$KIBPS" &
tcp_pid=$!
# Only now the guest starts its TCP client (port 5102's echo is the signal):
# a client retrying since boot would be in every restore and clone of the
# earlier snapshots, holding the card while their guests rebind it.
check "vsock before the snapshot: the guest's echo answers" \
	same "$(python3 "$HOST_PY" echo-check "$T/v.sock" 5102)" "echo=ok"
python3 "$HOST_PY" flood "$T/v.sock" 5100 "$T/vsock.host" "$KIBPS" &
vflood_pid=$!
hostv() { sed -n "s/^$2=//p" "$1" 2>/dev/null; }
flowing() { [ "$(hostv "$T/tcp.host" bytes)" -gt 1048576 ] 2>/dev/null &&
	[ "$(hostv "$T/vsock.host" bytes)" -gt 1048576 ] 2>/dev/null; }
for _ in $(seq 1 $((60 * SLOW))); do flowing && break; sleep 1; done
check "both floods carry data before the snapshot" flowing
check "snapshot while the host floods the TAP and a vsock connection" \
	ctl snapshot create --paused "$T/store/flood"
kill -KILL "$vm"
wait "$vm" 2>/dev/null
check "a VMM killed with SIGKILL leaves its vsock socket behind" test -S "$T/v.sock"
orig_last=$(field "$T/orig.out" tick last)
check "the original ran on past the snapshots" test "$orig_last" -gt $((base_tick + 6))

timeout -s TERM $((90 * SLOW)) "$BANYAN" restore --snapshot "$T/store/flood" \
	--overlay-prefix "$T/rf" </dev/null \
	>"$T/rf.out" 2>"$T/rf.err" &
rf=$!
ticks() { tr -d '\r' <"$1" | grep -cE '^tick=.* net=(ok|no)$'; }
for _ in $(seq 1 $((30 * SLOW))); do [ "$(ticks "$T/rf.out")" -ge 2 ] && break; sleep 1; done
check "restore under load: the guest runs (the killed VMM's stale vsock socket was replaced)" \
	test "$(ticks "$T/rf.out")" -ge 2
echo_res=$(python3 "$HOST_PY" echo-check "$T/v.sock" 5101)
touch "$T/tcp.stop" # the host ends its TCP stream; the guest reports once it read it all
for _ in $(seq 1 $((60 * SLOW))); do
	[ -n "$(field "$T/rf.out" tcp last)" ] && [ -n "$(field "$T/rf.out" vck last)" ] && break
	sleep 1
done
kill "$rf" 2>/dev/null
wait "$rf"
wait_bounded 30 "$tcp_pid" "$vflood_pid"
tcp_got=$(field "$T/rf.out" tcp last)
vck=$(field "$T/rf.out" vck last)
vsent=$(hostv "$T/vsock.host" bytes)
echo "# TCP: host sent $(hostv "$T/tcp.host" bytes), guest read $tcp_got; vsock: host sent $vsent, guest read $vck"
[ -n "$tcp_got" ] && [ -n "$vck" ] || { tail -n 5 "$T/rf.err"; tail -n 3 "$T/rf.out"; } | sed 's/^/# /'
check "restore under load: the TCP transfer spanning the snapshot completed intact" \
	same "$tcp_got" "$(hostv "$T/tcp.host" bytes)_ok"
vck_ok() { case "$vck" in [1-9]*_ok) [ "${vck%_ok}" -le "${vsent:-0}" ] ;; *) false ;; esac; }
check "restore under load: the vsock stream arrived exact up to the snapshot, then was reset" vck_ok
check "restore under load: a new vsock connection works" same "$echo_res" "echo=ok"
check "restore under load: the guest pings the host" same "$(field "$T/rf.out" net last)" ok

# in_step FILE: every tick read the previous tick back from the overlay disk
# (a disk that did not roll back with the VM shows a later count)
in_step() {
	tr -d '\r' <"$1" | grep '^tick=' | sed 's/^tick=\([0-9]*\) .* prev=\([0-9]*\).*/\1 \2/' |
		awk 'NF == 2 { n++; if ($2 != $1 - 1) bad++ } END { exit !(n > 1 && !bad) }'
}

# restore NAME SNAPSHOT SECONDS [options]
restore() {
	local name=$1 snap=$2 secs=$3
	shift 3
	timeout -s TERM "$secs" "$BANYAN" restore --snapshot "$snap" "$@" </dev/null \
		>"$T/$name.out" 2>"$T/$name.err"
	grep -q '^tick=' "$T/$name.out" || { tail -n 5 "$T/$name.err"; tail -n 5 "$T/$name.out"; } |
		sed 's/^/# /'
}
# The first restore after the snapshot under load: the emulated host is still
# busy. A plain restore writes the disk's overlay where the operator says (its
# --overlay-prefix), never at the path the snapshot recorded.
vm_ovl_sum=$(sha256sum <"$T/vm.overlay")
# ... while the host watches the TAP for gratuitous ARPs (sender IP = target
# IP), which the guest sends when the restored card asks it to announce itself.
ip netns exec "$NS" timeout $((30 * SLOW)) python3 -c '
import socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.bind(("bsnap", 0))
out = open(sys.argv[1], "w")
while True:
    f = s.recv(2048)
    if len(f) >= 42:
        op, sha, spa, tha, tpa = struct.unpack("!6xH6s4s6s4s", f[14:42])
        if spa == tpa:
            print("garp op=%d mac=%s ip=%s" % (op, sha.hex(":"), socket.inet_ntoa(spa)), file=out, flush=True)
' "$T/garp" &
garp_pid=$!
# (python3 starts slowly in a loaded emulated host: wait for its socket)
for _ in $(seq 1 $((150 * SLOW))); do [ -e "$T/garp" ] && break; sleep 0.1; done
restore r1 "$T/store/base" $((8 * SLOW)) --overlay-prefix "$T/r1"
kill "$garp_pid" 2>/dev/null
t1=$(field "$T/r1.out" tick)
check "restore: the guest continues counting (not from 1)" test "${t1:-0}" -gt 3
check "restore: it continues from the snapshot, not the end" test "${t1:-0}" -le $((base_tick + 2))
check "restore: it keeps counting" test "$(field "$T/r1.out" tick last)" -gt "${t1:-0}"
check "rollback: files made after the snapshot are gone" \
	same "$(field "$T/r1.out" files last)" "$(field "$T/r1.out" tick last)"
check "restore: the disk still works (reads back what it wrote)" \
	same "$(field "$T/r1.out" disk last)" "$(field "$T/r1.out" tick last)"
check "restore: a new generation ID" differ "$(field "$T/r1.out" gen last)" "$orig_gen"
check "the original guest has its MAC and CID" \
	same "$(field "$T/orig.out" mac last) $(field "$T/orig.out" cid last)" "52:54:00:aa:00:01 7"
check "restore: the guest keeps its MAC and CID (a plain restore is the same VM)" \
	same "$(field "$T/r1.out" mac last) $(field "$T/r1.out" cid last)" "52:54:00:aa:00:01 7"
check "the original guest pings the host through its TAP" same "$(field "$T/orig.out" net last)" ok
check "restore: the network still works (the guest pings the host)" \
	same "$(field "$T/r1.out" net last)" ok
check "restore: the card asks the guest to announce itself (GUEST_ANNOUNCE)" \
	contains "$T/r1.err" "asks the guest to announce itself"
check "restore: the guest announced itself on the TAP (a gratuitous ARP from its MAC)" \
	contains "$T/garp" "mac=52:54:00:aa:00:01 ip=10.0.2.2"
check "the original read each previous tick from its overlay disk" in_step "$T/orig.out"
check "rollback: the overlay disk went back to the snapshot too" in_step "$T/r1.out"
check "the snapshot holds a small copy of the overlay" \
	test -f "$T/store/base/disk-vdb.overlay" -a "$(du -k "$T/store/base/disk-vdb.overlay" | cut -f1)" -lt 1024
restore r2 "$T/store/base" $((5 * SLOW)) --overlay-prefix "$T/r2"
check "rollback: the same snapshot restores to the same point" same "$(field "$T/r2.out" tick)" "$t1"
restore rg "$T/store/grand" $((5 * SLOW)) --overlay-prefix "$T/rg"
tg=$(field "$T/rg.out" tick)
check "diff chain: the grandchild continues after the base" test "${tg:-0}" -gt $((t1 + 3))
check "diff chain: files match the count" \
	same "$(field "$T/rg.out" files last)" "$(field "$T/rg.out" tick last)"
check "diff chain: the overlay disk is the grandchild's" in_step "$T/rg.out"
check "restores left the original's overlay as it stopped" \
	test "$(sha256sum <"$T/vm.overlay")" = "$vm_ovl_sum"
base_kb=$(du -k "$T/store/base" | cut -f1)
child_kb=$(du -k "$T/store/child" | cut -f1)
check "diff chain: a diff is far smaller than the full snapshot ($child_kb vs $base_kb KiB)" \
	test "$child_kb" -lt $((base_kb / 4))

# Ten clones at once; memory measured while they all run. Each writes its
# own copy-on-write overlay of the disk; the image itself must not change.
disk_sum=$(sha256sum <"$T/disk.img")
(cd "$T" && timeout --preserve-status -k 30 -s TERM $((20 * SLOW)) "$BANYAN" restore \
	--snapshot "$T/store/base" --clones 10 --console "$T/clone" </dev/null \
	>"$T/clones.out" 2>"$T/clones.err") &
sup=$!
sleep $((12 * SLOW))
pss=0
rss=0
for pid in $(sed -n 's/^clone [0-9]*: pid \([0-9]*\).*/\1/p' "$T/clones.out"); do
	p=$(awk '/^Pss:/ {print $2}' /proc/$pid/smaps_rollup 2>/dev/null)
	r=$(awk '/^Rss:/ {print $2}' /proc/$pid/smaps_rollup 2>/dev/null)
	pss=$((pss + ${p:-0}))
	rss=$((rss + ${r:-0}))
done
wait "$sup"
running=0
disks=0
for i in $(seq 0 9); do
	last=$(field "$T/clone.$i" tick last)
	[ "${last:-0}" -gt "${t1:-0}" ] 2>/dev/null && running=$((running + 1))
	same "$(field "$T/clone.$i" disk last)" "$last" && [ -s "$T/clone.$i.vda.overlay" ] &&
		disks=$((disks + 1))
done
[ "$running" = 10 ] || {
	# (the clones' TAPs are down: each clone's first refused frame is expected)
	grep -E "error|warn|crash" "$T/clones.err" | grep -v "TAP refused a frame" | head -n 20
	grep -E "^clone [0-9]+:" "$T/clones.out"
	for i in $(seq 0 9); do
		[ "$(field "$T/clone.$i" tick last)" -gt "${t1:-0}" ] 2>/dev/null ||
			{ echo "clone $i:"; tail -n 5 "$T/clone.$i"; }
	done
} | sed 's/^/# /'
check "ten clones ran and counted ($running of 10)" test "$running" = 10
check "each clone's disk works, through its own overlay ($disks of 10)" test "$disks" = 10
check "the clones left the snapshot's disk image unchanged" \
	test "$(sha256sum <"$T/disk.img")" = "$disk_sum"
steps=0
for i in $(seq 0 9); do in_step "$T/clone.$i" && steps=$((steps + 1)); done
check "each clone starts from the snapshot's overlay disk ($steps of 10)" test "$steps" = 10
zeroes() { [ "$(tr -d '\0' <"$1" | wc -c)" = 0 ]; }
check "no VM ever wrote the overlay disk's base image" zeroes "$T/disk2.img"
gens=$(for i in $(seq 0 9); do field "$T/clone.$i" gen last; done | sort -u | grep -c .)
check "each clone has its own generation ID ($gens distinct)" test "$gens" = 10
macs=$(for i in $(seq 0 9); do field "$T/clone.$i" mac last; done | grep -v 52:54:00:aa:00:01 |
	sort -u | grep -c :)
check "each clone's guest has its own MAC, not the original's ($macs distinct)" test "$macs" = 10
cids=
for i in $(seq 0 9); do
	c=$(field "$T/clone.$i" cid last)
	cids="$cids $c"
	# A clone whose tool failed printed the tool's error in place of the CID.
	case "$c" in
	"" | *[!0-9]*) echo "# clone $i:" && tail -n 3 "$T/clone.$i" | sed 's/^/#   /' ;;
	esac
done
cids=$(printf '%s\n' $cids | sort -n | xargs) # word splitting drops the empty ones
check "each clone's guest has its own vsock CID (${cids:-none})" test "$cids" = "$(seq 8 17 | xargs)"
echo "# clones: summed PSS ${pss} KiB, summed RSS ${rss} KiB, ten copies of RAM $((10 * 262144)) KiB"
check "clones share memory: summed PSS below a third of ten copies" \
	test "$pss" -gt 0 -a "$pss" -lt $((10 * 262144 / 3))

# Damaged snapshots: refused, nothing started.
bad() { rm -rf "$T/d"; cp -a "$T/store/base" "$T/d"; }
refused() {
	timeout 60 "$BANYAN" restore --snapshot "$T/d" --overlay-prefix "$T/bad" </dev/null \
		>"$T/bad.out" 2>"$T/bad.err"
	[ $? = 2 ] && ! grep -q tick= "$T/bad.out"
}
bad
printf '\x55' | dd of="$T/d/devices.state" bs=1 seek=40 conv=notrunc status=none
check "corrupt section refused" refused
bad
truncate -s 64M "$T/d/memory"
check "truncated memory refused" refused
bad
sed -i 's/"version":1/"version":7/' "$T/d/manifest.json"
check "newer format version refused" refused
check "the reason names the version" contains "$T/bad.err" "newer"

tap_done
