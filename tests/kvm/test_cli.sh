#!/usr/bin/env bash
# KVM layer, command-line contract: tiny guests through `banyan run`, the
# exit statuses they must produce, and the errors bad input must produce.
# Usage: test_cli.sh BANYAN GUEST_DIR
set -u
. "$(dirname "$0")/../lib/tap.sh"

BANYAN=$1
GUESTS=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# run NAME TIMEOUT ARGS...: stdout in $T/NAME.out, stderr in $T/NAME.err, status in $T/NAME.rc
run() {
	local name=$1 secs=$2
	shift 2
	timeout -s KILL "$secs" "$BANYAN" run "$@" </dev/null >"$T/$name.out" 2>"$T/$name.err"
	echo $? >"$T/$name.rc"
}
rc() { cat "$T/$1.rc"; }

# Bad input needs no KVM: it must be refused before anything starts.
run missing 20 --kernel "$T/no-such-kernel"
check "missing kernel: exit 2" status_is 2 "$(rc missing)"
check "missing kernel: clear message" contains "$T/missing.err" "no-such-kernel"
printf 'this is not a kernel\n' >"$T/not-a-kernel"
run notkernel 20 --kernel "$T/not-a-kernel"
check "non-kernel file: exit 2" status_is 2 "$(rc notkernel)"
check "non-kernel file: says so" contains "$T/notkernel.err" "not a kernel"
run badflag 20 --kernel "$GUESTS/hello.elf" --frobnicate
check "unknown flag: exit 2" status_is 2 "$(rc badflag)"
check "unknown flag: named" contains "$T/badflag.err" "--frobnicate"
run cpus0 20 --kernel "$GUESTS/hello.elf" --cpus 0
check "--cpus 0: exit 2" status_is 2 "$(rc cpus0)"
run cpusbig 20 --kernel "$GUESTS/hello.elf" --cpus 100000
check "--cpus 100000: exit 2" status_is 2 "$(rc cpusbig)"
run memtiny 20 --kernel "$GUESTS/hello.elf" --memory 1K
check "--memory 1K: exit 2" status_is 2 "$(rc memtiny)"
run membad 20 --kernel "$GUESTS/hello.elf" --memory lots
check "--memory lots: exit 2" status_is 2 "$(rc membad)"
run missinginitrd 20 --kernel "$GUESTS/hello.elf" --initrd "$T/no-such-initrd"
check "missing initrd: exit 2" status_is 2 "$(rc missinginitrd)"

if [ ! -c /dev/kvm ] || [ ! -w /dev/kvm ]; then
	for n in "hello: console output" "hello: power-off exit 0" "hello with 4 vCPUs, 1G: exit 0" \
		"hello with 64 vCPUs: exit 0" "hello with 5G (memory above 4 GiB): exit 0" "ACPI reset: exit 0" "ACPI reset: logged as reboot" \
		"i8042 reset: exit 0" "triple fault: exit 1" "triple fault: diagnostic" "triple fault: reported as a crash" \
		"HLT without irqchip: exit 4" "on-reboot restart boots again" "SIGTERM: exit 143"; do
		skip "$n" "no usable /dev/kvm"
	done
	tap_done
	exit
fi

run hello 60 --kernel "$GUESTS/hello.elf"
check "hello: console output" contains "$T/hello.out" "hello from a banyan test guest"
check "hello: power-off exit 0" status_is 0 "$(rc hello)"
run hello4 60 --kernel "$GUESTS/hello.elf" --cpus 4 --memory 1G
check "hello with 4 vCPUs, 1G: exit 0" status_is 0 "$(rc hello4)"
run hello64 120 --kernel "$GUESTS/hello.elf" --cpus 64
check "hello with 64 vCPUs: exit 0" status_is 0 "$(rc hello64)"
run hello5g 60 --kernel "$GUESTS/hello.elf" --memory 5G
check "hello with 5G (memory above 4 GiB): exit 0" status_is 0 "$(rc hello5g)"
run reset 60 --kernel "$GUESTS/reset.elf"
check "ACPI reset: exit 0" status_is 0 "$(rc reset)"
check "ACPI reset: logged as reboot" contains "$T/reset.err" "reboot"
run kbd 60 --kernel "$GUESTS/kbd_reset.elf"
check "i8042 reset: exit 0" status_is 0 "$(rc kbd)"
run triple 60 --kernel "$GUESTS/triple_fault.elf"
check "triple fault: exit 1" status_is 1 "$(rc triple)"
# A triple fault is KVM_EXIT_SHUTDOWN on VT-x/AMD-V; PVM reports its
# emulation failure instead. Either way: a crash with the registers.
check "triple fault: diagnostic" contains "$T/triple.err" "rip=0x"
check "triple fault: reported as a crash" contains "$T/triple.err" "(crash)"
run halt 60 --kernel "$GUESTS/halt.elf" --no-irqchip
check "HLT without irqchip: exit 4" status_is 4 "$(rc halt)"

# The boot timer (Firecracker's): the guest's first store, 123 at
# 0xc0000000, is logged with the time since start; without the device, not.
run btimer 20 --kernel "$GUESTS/boottimer.elf" --device boot-timer
check "boot timer: the guest runs to power-off" status_is 0 "$(rc btimer)"
check "boot timer: the guest's signal is timed" contains "$T/btimer.err" "Guest-boot-time = "
run nobtimer 20 --kernel "$GUESTS/boottimer.elf"
check "no boot timer device: no boot time" bash -c "! grep -q Guest-boot-time \"$T/nobtimer.err\""
check "no boot timer device: the write is ignored" status_is 0 "$(rc nobtimer)"
printf '{"boot-source": {"kernel_image_path": "%s"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 64}}\n' \
	"$GUESTS/boottimer.elf" >"$T/fc.json"
ln -s "$(readlink -f "$BANYAN")" "$T/firecracker"
timeout -s KILL 20 "$T/firecracker" --no-api --config-file "$T/fc.json" --boot-timer \
	</dev/null >"$T/fcbt.out" 2>"$T/fcbt.err"
check "firecracker --boot-timer: the guest's signal is timed" contains "$T/fcbt.err" "Guest-boot-time = "

# --on-reboot restart: the guest prints "boot" and resets; a restarted VM
# prints it again. Stop it with SIGTERM once it booted three times.
"$BANYAN" run --kernel "$GUESTS/reset.elf" --on-reboot restart </dev/null >"$T/restart.out" 2>"$T/restart.err" &
pid=$!
for _ in $(seq 1 200); do
	[ "$(grep -c boot "$T/restart.out")" -ge 3 ] && break
	sleep 0.1
done
# banyan run maps only what a VMM needs: libcurl (banyan ctl's HTTP client)
# is loaded by ctl alone, so neither it nor its TLS libraries are here.
cp "/proc/$pid/maps" "$T/restart.maps" 2>/dev/null
kill -TERM $pid
wait $pid
echo $? >"$T/restart.rc"
check "a running VM has its maps" contains "$T/restart.maps" "libc.so"
check "a running VM does not map libcurl" bash -c "! grep -q libcurl \"$T/restart.maps\""
check "on-reboot restart boots again" test "$(grep -c boot "$T/restart.out")" -ge 3
check "SIGTERM: exit 143" status_is 143 "$(rc restart)"
tap_done
