#!/usr/bin/env bash
# KVM layer, start-up, restore and clone fan-out: what their speed rests on,
# checked as behaviour, never as timings (bench/startup measures those).
# A VM starts and its guest runs; vm_create registers guest memory before
# the irqchip and PIT exist, asks KVM for its supported CPUID once per
# process and sets the boot MSRs in one call per vCPU; a snapshot restores
# and runs; its clones all run, each vCPU seeing the CPUID the original's
# saw, and no clone asks KVM for it again (the supervisor asked before
# forking); the binary links neither libmicrohttpd nor GnuTLS, a VMM
# serving the API loads the former, on a thread of its own while the VM is
# built, and one without an API maps neither; a VMM whose API cannot serve
# never runs its guest.
# A restore's sandbox warm-up makes glibc's one-time read of
# vm.overcommit_memory happen. The ioctl checks run under strace
# and are skipped without it. Usage: test_startup.sh BANYAN GUEST_DIR
set -u
. "$(dirname "$0")/../lib/tap.sh"

BANYAN=$(realpath "$1")
GUESTS=$(cd "$2" && pwd)
T=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

if [ ! -c /dev/kvm ] || [ ! -w /dev/kvm ]; then
	skip "start-up, restore and clones" "no usable /dev/kvm"
	tap_done
	exit
fi

# cpuid_lines FILE: the complete "L leaf subleaf eax ebx ecx edx" lines guests/cpuid.S printed, once each.
cpuid_lines() { grep -aE '^L( [0-9a-f]{8}){6}$' "$1" | sort -u; }
# full FILE: every one of the guest's nine leaves printed whole at least once.
full() { [ "$(cpuid_lines "$1" | wc -l)" -ge 9 ]; }
wait_full() { # wait_full FILE...: up to 20 s for each
	for f in "$@"; do
		for _ in $(seq 1 200); do full "$f" 2>/dev/null && break; sleep 0.1; done
		full "$f" 2>/dev/null || return 1
	done
}
# same_cpuid A B: the two consoles show the same CPUID, leaf by leaf.
same_cpuid() { diff <(cpuid_lines "$1") <(cpuid_lines "$2"); }
# Under emulation (tools/emulated-host) everything runs several times slower.
SECS=${BANYAN_EMULATED_HOST:+10}
SECS=${SECS:-3}

# The original: boots, prints its CPUID, is snapshotted and stopped.
"$BANYAN" run --kernel "$GUESTS/cpuid.elf" --api-socket "$T/api.sock" </dev/null \
	>"$T/vm.out" 2>"$T/vm.err" &
vm=$!
PIDS+=($vm)
check "a VM starts and its guest runs (prints CPUID)" wait_full "$T/vm.out"
check "CPUID: the KVM signature passes through" contains "$T/vm.out" "L 40000000 00000000"
# maps PID NAME: the process has a shared object whose path contains NAME mapped.
maps() { grep -q "$2" "/proc/$1/maps"; }
not_maps() { ! maps "$@"; }
check "the API's process loaded libmicrohttpd (at run time, not linked)" maps $vm libmicrohttpd
links() { readelf -d "$BANYAN" | grep NEEDED | grep -q "$1"; }
not_links() { ! links "$1"; }
check "the binary links neither libmicrohttpd nor GnuTLS" not_links 'libmicrohttpd\|libgnutls'
check "ctl snapshot create" "$BANYAN" ctl --api-socket "$T/api.sock" snapshot create "$T/snap"
# The clones' helper is the binary run afresh, not a fork, and ends with the VMM.
helper=$(pgrep -P $vm -f "clones-helper")
check "the API's clone helper runs (banyan clones-helper, exec'd)" test -n "$helper"
kill -KILL $vm
wait $vm 2>/dev/null
gone() { for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; return 1; }
check "... and ends when the VMM is killed" gone "${helper:-0}"

# A VMM whose API cannot serve (its library lacks MHD's calls) never runs the guest.
if command -v cc >/dev/null; then
	mkdir "$T/nomhd"
	echo 'int not_mhd;' | cc -shared -fPIC -x c -o "$T/nomhd/libmicrohttpd.so.12" -
	LD_LIBRARY_PATH=$T/nomhd "$BANYAN" run --kernel "$GUESTS/cpuid.elf" \
		--api-socket "$T/nomhd.sock" </dev/null >"$T/nomhd.out" 2>"$T/nomhd.err"
	check "an API that cannot serve: exit 2" status_is 2 "$?"
	check "... saying why" contains "$T/nomhd.err" "cannot serve the API on"
	check "... and the guest never ran" test ! -s "$T/nomhd.out"
	check "... nor is the socket left behind" test ! -e "$T/nomhd.sock"
else
	skip "an API that cannot serve" "no C compiler to build a stand-in library"
fi

# One restore, in the foreground: it runs, and its vCPU keeps the CPUID.
# Without an API it maps neither the HTTP server nor GnuTLS (read while it runs).
"$BANYAN" restore --snapshot "$T/snap" </dev/null >"$T/restore.out" 2>"$T/restore.err" &
rs=$!
PIDS+=($rs)
wait_full "$T/restore.out"
check "a VMM without an API maps neither libmicrohttpd nor GnuTLS" \
	not_maps $rs 'libmicrohttpd\|libgnutls'
sleep $SECS
kill -TERM $rs
wait $rs
check "a restore runs (until SIGTERM)" status_is 143 "$?"
check "a restore says when it ran" contains "$T/restore.err" "VM running"
check "a restored vCPU sees the original's CPUID" same_cpuid "$T/vm.out" "$T/restore.out"

# Clones: every one runs and sees the original's CPUID.
(cd "$T" && exec "$BANYAN" restore --snapshot "$T/snap" --clones 3 --console "$T/clone" \
	</dev/null >"$T/clones.out" 2>"$T/clones.err") &
sup=$!
PIDS+=($sup)
check "3 clones all run" wait_full "$T/clone.0" "$T/clone.1" "$T/clone.2"
for i in 0 1 2; do
	check "clone $i's vCPU sees the original's CPUID" same_cpuid "$T/vm.out" "$T/clone.$i"
done
kill -TERM $sup
wait $sup
check "the clones stop on SIGTERM" status_is 143 "$?"

if ! command -v strace >/dev/null; then
	skip "the KVM calls of a boot, a restore and clones" "no strace"
	tap_done
	exit
fi
# line_of FILE IOCTL: the line number of IOCTL's first call in an strace log (0: none).
line_of() { grep -n -m1 "ioctl([0-9]*, $2" "$1" | cut -d: -f1 | grep . || echo 0; }
count_of() { grep -c "ioctl([0-9]*, $2" "$1"; }
# before FILE A B: A is called, and before B.
before() {
	local a b
	a=$(line_of "$1" "$2")
	b=$(line_of "$1" "$3")
	[ "$a" -gt 0 ] && [ "$a" -lt "$b" ] || { echo "$2 at line $a, $3 at line $b"; return 1; }
}
calls() { # calls FILE IOCTL N: exactly N calls
	local n
	n=$(count_of "$1" "$2")
	[ "$n" = "$3" ] || { echo "$2 called $n times, expected $3"; return 1; }
}
traced() { # traced NAME SECONDS banyan-arguments...: under strace -f, stopped with SIGTERM
	local name=$1 secs=$2
	shift 2
	(cd "$T" && timeout -s TERM "$secs" strace -f -qq -e trace=ioctl,openat -o "$T/$name.strace" \
		"$BANYAN" "$@" </dev/null >"$T/$name.out" 2>"$T/$name.err")
}

traced boot $((SECS * 2)) run --kernel "$GUESTS/cpuid.elf" --cpus 2
check "boot: the guest ran under strace" full "$T/boot.out"
check "boot: guest memory is registered before the irqchip" \
	before "$T/boot.strace" KVM_SET_USER_MEMORY_REGION KVM_CREATE_IRQCHIP
check "boot: ... and before the PIT" \
	before "$T/boot.strace" KVM_SET_USER_MEMORY_REGION KVM_CREATE_PIT2
check "boot: KVM_GET_SUPPORTED_CPUID once for 2 vCPUs" calls "$T/boot.strace" KVM_GET_SUPPORTED_CPUID 1
check "boot: the boot MSRs in one KVM_SET_MSRS per vCPU" calls "$T/boot.strace" KVM_SET_MSRS 2

traced restore $((SECS * 2)) restore --snapshot "$T/snap"
check "restore: the guest ran under strace" full "$T/restore.out"
check "restore: guest memory is registered before the irqchip" \
	before "$T/restore.strace" KVM_SET_USER_MEMORY_REGION KVM_CREATE_IRQCHIP
# glibc reads vm.overcommit_memory once, when a thread's heap first shrinks;
# the sandbox's warm-up makes that happen in a thread of its own before any
# filter (a later shrink in a thread without openat would end the VMM),
# also in a restore, whose 1 MiB read buffer raised glibc's trim threshold.
shrunk_in_thread() {
	grep overcommit_memory "$1" | cut -d' ' -f1 | grep -qvx "$(head -n1 "$1" | cut -d' ' -f1)"
}
if readelf -d "$BANYAN" | grep -q 'NEEDED.*libasan'; then
	skip "restore: a thread's heap shrank before the filters" \
		"the sanitizer's allocator replaces glibc's malloc"
else
	check "restore: a thread's heap shrank (glibc's one-time read) before the filters" \
		shrunk_in_thread "$T/restore.strace"
fi

# The API's library is mapped on a thread of its own while the VM is built.
traced api $((SECS * 2)) run --kernel "$GUESTS/cpuid.elf" --api-socket "$T/tapi.sock"
check "API: the guest ran under strace" full "$T/api.out"
check "API: libmicrohttpd is mapped on a thread, not on the thread that builds the VM" \
	test "$(grep -m1 'libmicrohttpd' "$T/api.strace" | cut -d' ' -f1)" != \
	"$(grep -m1 KVM_CREATE_VM "$T/api.strace" | cut -d' ' -f1)"

traced clones $((SECS * 4)) restore --snapshot "$T/snap" --clones 3 --console "$T/tclone"
check "clones: all ran under strace" wait_full "$T/tclone.0" "$T/tclone.1" "$T/tclone.2"
check "clones: 3 VMs created" calls "$T/clones.strace" KVM_CREATE_VM 3
check "clones: KVM_GET_SUPPORTED_CPUID once, before the fork, for all 3" \
	calls "$T/clones.strace" KVM_GET_SUPPORTED_CPUID 1
check "clones: ... by the supervisor" \
	test "$(grep -m1 KVM_GET_SUPPORTED_CPUID "$T/clones.strace" | cut -d' ' -f1)" = \
	"$(head -n1 "$T/clones.strace" | cut -d' ' -f1)"
tap_done
