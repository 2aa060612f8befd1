#!/usr/bin/env bash
# KVM layer, seccomp: each thread role makes a forbidden call on request
# (banyan-test-hooks, BANYAN_SECCOMP_TEST=ROLE): the process must end with
# status 148 and one log line naming the role and the call. --seccomp log
# and off let the same call through; the installed binary has no hook; and
# tools/seccomp-audit finds every call of a tiny guest's run in its list.
# Usage: test_seccomp.sh BANYAN BANYAN_TEST_HOOKS GUEST_DIR AUDIT
set -u
. "$(dirname "$0")/../lib/tap.sh"

BANYAN=$1
HOOKS=$2
GUESTS=$3
AUDIT=$4
T=$(mktemp -d)
NS=banyan-seccomp-$$
trap 'ip netns del "$NS" 2>/dev/null; rm -rf "$T"' EXIT
truncate -s 1M "$T/disk.img"

# run NAME ROLE BINARY ARGS...: BANYAN_SECCOMP_TEST=ROLE; $T/NAME.{out,err,rc}
run() {
	local name=$1 role=$2 bin=$3
	shift 3
	BANYAN_SECCOMP_TEST=$role timeout -s KILL 60 "$bin" run --kernel "$GUESTS/hello.elf" "$@" \
		</dev/null >"$T/$name.out" 2>"$T/$name.err"
	echo $? >"$T/$name.rc"
}
rc() { cat "$T/$1.rc"; }

# role ROLE ARGS...: the role's forbidden call ends the process and is named
role() {
	local r=$1
	shift
	run "$r" "$r" "$HOOKS" "$@"
	check "$r: a forbidden call ends the process with 148" status_is 148 "$(rc "$r")"
	check "$r: one line names the role and the call" \
		grep -q "(role $r) made a forbidden system call: getitimer (36)" "$T/$r.err"
	check "$r: only one such line" test "$(grep -c 'forbidden system call' "$T/$r.err")" = 1
}

if [ ! -w /dev/kvm ]; then
	skip "seccomp roles" "no /dev/kvm"
	tap_done
	exit 0
fi

role main
role vcpu
role writer
role virtio-blk --disk "path=$T/disk.img"
role virtio-rng --rng
role virtio-vsock --vsock "cid=3,socket=$T/v.sock"
role api --api-socket "$T/api.sock"
role api-reaper --api-socket "$T/api2.sock"
role api-exec --api-socket "$T/api3.sock"
# The metrics file's writer starts with the file (here from --config).
cat >"$T/metrics.json" <<EOF
{"boot-source": {"kernel_image_path": "$GUESTS/hello.elf"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 32},
 "metrics": {"metrics_path": "$T/metrics.out"}}
EOF
BANYAN_SECCOMP_TEST=metrics timeout -s KILL 60 "$HOOKS" run --config "$T/metrics.json" \
	--api-socket "$T/api4.sock" </dev/null >"$T/metrics.log" 2>"$T/metrics.err"
check "metrics: a forbidden call ends the process with 148" status_is 148 $?
check "metrics: one line names the role and the call" \
	grep -q "(role metrics) made a forbidden system call: getitimer (36)" "$T/metrics.err"
BANYAN_RUNTIME_DIR="$T/rt" role console-sock --name sc
BANYAN_AIO=threads role aio --disk "path=$T/disk.img"
if ip netns add "$NS" 2>/dev/null && ip netns exec "$NS" ip tuntap add tap0 mode tap; then
	BANYAN_SECCOMP_TEST=virtio-net timeout -s KILL 60 ip netns exec "$NS" "$HOOKS" run \
		--kernel "$GUESTS/hello.elf" --net tap=tap0 </dev/null >"$T/virtio-net.out" \
		2>"$T/virtio-net.err"
	echo $? >"$T/virtio-net.rc"
	check "virtio-net: a forbidden call ends the process with 148" status_is 148 "$(rc virtio-net)"
	check "virtio-net: one line names the role and the call" \
		grep -q "(role virtio-net) made a forbidden system call: getitimer" "$T/virtio-net.err"
else
	skip "virtio-net role" "no network namespace for a TAP"
fi

# The other modes let the call through; without the hook nothing is made.
run logmode vcpu "$HOOKS" --seccomp log
check "--seccomp log: the call is allowed (kernel audit log), the guest runs" \
	status_is 0 "$(rc logmode)"
check "--seccomp log: the guest ran" grep -q "hello from a banyan test guest" "$T/logmode.out"
run offmode vcpu "$HOOKS" --seccomp off
check "--seccomp off: nothing is filtered" status_is 0 "$(rc offmode)"
run nohook vcpu "$BANYAN"
check "the installed binary has no test hook" status_is 0 "$(rc nohook)"
check "...and runs sandboxed" grep -q "hello from a banyan test guest" "$T/nohook.out"
run badmode "" "$BANYAN" --seccomp sometimes
check "--seccomp takes strict, log or off: exit 2" status_is 2 "$(rc badmode)"
check "...and says so" contains "$T/badmode.err" "strict, log or off"

# A restart builds the VM again under the main thread's filter.
timeout -s KILL 60 "$BANYAN" run --kernel "$GUESTS/reset.elf" --on-reboot restart \
	</dev/null >"$T/restart.out" 2>"$T/restart.err" &
pid=$!
sleep 3
kill -TERM $pid
wait $pid
check "reboots under the sandbox (restart, stopped by SIGTERM: 143)" status_is 143 "$?"
check "...more than one boot" test "$(grep -c 'restarting the VM' "$T/restart.err")" -ge 1

# Every call of a run with a disk, entropy and the API, in its thread's list.
if command -v strace >/dev/null; then
	"$AUDIT" -- "$BANYAN" run --kernel "$GUESTS/hello.elf" --disk "path=$T/disk.img" --rng \
		--api-socket "$T/audit.sock" </dev/null >"$T/audit.out" 2>"$T/audit.err"
	check "seccomp-audit: every call in its role's list" status_is 0 "$?"
	check "seccomp-audit: the threads were seen" grep -q "threads, [0-9]* calls checked" "$T/audit.out"
else
	skip "seccomp-audit" "no strace"
fi
tap_done
