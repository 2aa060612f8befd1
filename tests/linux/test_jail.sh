#!/usr/bin/env bash
# Linux layer, `banyan jail`: one boot of the rig's guest under the jail, as
# an unprivileged uid/gid, pid 1 of its own PID namespace, in its own mount
# namespace (only the jail's files) and in a network namespace holding its
# TAP, with a cgroup v2 limit (cgroup2 is mounted by the jail when the host
# has none). The guest writes and reads back a disk, pings the host end of
# the TAP and sends a line over vsock to a host listener in the jail's /run.
#
# time-limit: 480 (seconds for one run, emulated host included: tests/linux/run)
set -u
GUEST_TIMEOUT=${GUEST_TIMEOUT:-300}
. "$(dirname "$0")/lib.sh"
linux_prereqs

VSOCK_TOOL=${VSOCK_TOOL:-$(dirname "$BANYAN")/tests/linux/vsock-tool}
U=64123
NS=banyan-jail-$$
# Sockets cannot live on the emulated host's 9p /tmp: the roots go on /run (tmpfs).
BASE=/run/banyan-jail-$$
ROOT=$BASE/banyan/vm1/root
jail_pid=
cleanup() {
	[ -n "$jail_pid" ] && kill -9 "$jail_pid" 2>/dev/null
	kill "${sock_pid:-}" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	rmdir /sys/fs/cgroup/banyan/vm1 2>/dev/null
	rm -rf "$BASE" "$T"
}
trap cleanup EXIT
in_ns() { ip netns exec "$NS" "$@"; }

ip netns add "$NS" || { echo "Bail out! cannot create a network namespace"; exit 1; }
in_ns ip link set lo up
in_ns ip tuntap add tap0 mode tap user $U group $U
in_ns ip addr add 10.0.3.1/24 dev tap0
in_ns ip link set tap0 up

mkdir -p "$BASE" "$T/tools"
cp "$VSOCK_TOOL" "$T/tools/vsock-tool"
mke2fs -q -t ext4 -d "$T/tools" "$BASE/tools.ext4" 16M >/dev/null
truncate -s 16M "$BASE/data.img"
chown $U:$U "$BASE/data.img"

guest_script() {
	printf 'eval "$(echo %s | base64 -d | gunzip)"' "$(gzip -9c | base64 -w0)"
}
cmd=$(guest_script <<'EOF2'
mkdir -p /mnt && mount -o ro /dev/vda /mnt
head -c 4194304 /dev/urandom >/tmp/blk
dd if=/tmp/blk of=/dev/vdb bs=1M count=4 conv=fsync 2>/dev/null
echo 3 >/proc/sys/vm/drop_caches
echo blk_w=$(sha256sum </tmp/blk | cut -d' ' -f1)
echo blk_r=$(head -c 4194304 /dev/vdb | sha256sum | cut -d' ' -f1)
ip link set eth0 up; ip addr add 10.0.3.2/24 dev eth0
ping -c 3 -W 5 10.0.3.1 >/dev/null && echo ping=ok
for i in $(seq 1 30); do
	echo hello-from-the-jail | /mnt/vsock-tool connect 2 6000 pipe >/dev/null 2>&1 && break
	sleep 1
done
echo vsock_rc=$?
EOF2
)

timeout -s KILL "$GUEST_TIMEOUT" "$BANYAN" jail --id vm1 --uid $U --gid $U \
	--chroot-base "$BASE" --netns "/run/netns/$NS" --new-pid-ns --cgroup pids.max=128 \
	-- --kernel "$KERNEL" --initrd "$INITRD" --memory 512M \
	--disk "path=$BASE/tools.ext4,ro" --disk "$BASE/data.img" --net tap=tap0 \
	--vsock "cid=42,socket=$BASE/v.sock" \
	--cmdline "console=ttyS0 quiet panic=-1 -- $cmd" \
	</dev/null >"$T/jail.out" 2>"$T/jail.err" &
jail_pid=$!

# The guest's vsock peer: a listener in the jail's /run once the root exists.
for _ in $(seq 1 300); do [ -S "$ROOT/run/v.sock" ] && break; sleep 0.2; done
socat -u "UNIX-LISTEN:$ROOT/run/v.sock_6000,mode=666" "OPEN:$T/vsock.out,creat" &
sock_pid=$!
# $! is timeout's; its child is the jail, whose child is the VMM (pid 1 of its namespace).
child() { tr -d ' ' <"/proc/$1/task/$1/children" 2>/dev/null; }
vmm=$(child "$(child "$jail_pid")")
cat "/proc/$vmm/status" >"$T/status" 2>/dev/null
ls "/proc/$vmm/root" >"$T/rootls" 2>&1
vmm_net=$(readlink "/proc/$vmm/ns/net")
ns_ino=$(stat -L -c %i "/run/netns/$NS")
wait $jail_pid
echo $? >"$T/jail.rc"
jail_pid=
tr -d '\r' <"$T/jail.out" >"$T/jail.console"

check_guest_ran jail
check "jail: the VMM ran as uid $U" grep -Eq "^Uid:\s+$U\s+$U\s+$U\s+$U$" "$T/status"
check "jail: the VMM had no_new_privs" grep -Eq "^NoNewPrivs:\s+1$" "$T/status"
check "jail: the VMM was pid 1 of its PID namespace" grep -Eq "^NSpid:\s+[0-9]+\s+1$" "$T/status"
check "jail: the VMM's root held only the jail's files" \
	test "$(tr '\n' ' ' <"$T/rootls")" = "banyan dev disk0 disk1 etc initrd kernel lib lib64 run "
check "jail: the VMM was in the jail's network namespace" test "$vmm_net" = "net:[$ns_ino]"
check "jail: cgroup v2 used" contains "$T/jail.err" "cgroup v2 /sys/fs/cgroup/banyan/vm1"
check "jail: disk write and read back (4 MiB)" \
	test -n "$(guest_value jail blk_w)" -a "$(guest_value jail blk_w)" = "$(guest_value jail blk_r)"
check "jail: the write reached the operator's image" test "$(head -c 4194304 "$BASE/data.img" |
	sha256sum | cut -d' ' -f1)" = "$(guest_value jail blk_w)"
check "jail: ping over the TAP in the namespace" test "$(guest_value jail ping)" = ok
check "jail: vsock to a host listener" contains "$T/vsock.out" "hello-from-the-jail"
tap_done
