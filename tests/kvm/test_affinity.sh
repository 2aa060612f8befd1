#!/usr/bin/env bash
# KVM layer, --cpu-affinity: bad roles, lists and CPUs the host lacks end
# `banyan run` with status 2; a good placement pins each vCPU thread and
# the device threads, leaves the main thread alone and shows in
# GET /vm/config. Usage: test_affinity.sh BANYAN GUEST_DIR
set -u
. "$(dirname "$0")/../lib/tap.sh"

BANYAN=$1
GUESTS=$(cd "$2" && pwd)
T=$(mktemp -d)
vmm=
trap '[ -n "$vmm" ] && kill -9 $vmm 2>/dev/null; rm -rf "$T"' EXIT

run() {
	local name=$1
	shift
	timeout -s KILL 30 "$BANYAN" run --kernel "$GUESTS/hello.elf" "$@" </dev/null \
		>"$T/$name.out" 2>"$T/$name.err"
	echo $? >"$T/$name.rc"
}
rc() { cat "$T/$1.rc"; }

run norole --cpu-affinity 0
check "a list without a role: exit 2" status_is 2 "$(rc norole)"
run badrole --cpu-affinity gpu=0
check "an unknown role: exit 2" status_is 2 "$(rc badrole)"
check "an unknown role: says so" contains "$T/badrole.err" "a role is vcpu, vcpuN"
run badlist --cpu-affinity vcpu=1-0
check "a descending range: exit 2" status_is 2 "$(rc badlist)"
run nocpu --cpu-affinity vcpu=1023
check "a CPU the host lacks: exit 2" status_is 2 "$(rc nocpu)"
check "a CPU the host lacks: names it" contains "$T/nocpu.err" "CPU 1023 is not one"
run vcpuN --cpu-affinity vcpu1=0
check "vcpu1 of a 1-vCPU machine: exit 2" status_is 2 "$(rc vcpuN)"
run twice --cpus 2 --cpu-affinity vcpu0=0,vcpu0=0
check "a role twice: exit 2" status_is 2 "$(rc twice)"

if [ ! -w /dev/kvm ]; then
	skip "pinned threads" "needs /dev/kvm"
	tap_done
	exit
fi
last=$(($(nproc) - 1))
"$BANYAN" run --kernel "$GUESTS/counter.elf" --cpus 2 --rng \
	--cpu-affinity "vcpu=0,vcpu1=$last,io=$last" --api-socket "$T/api.sock" \
	</dev/null >"$T/c.out" 2>"$T/c.err" &
vmm=$!
for _ in $(seq 1 100); do grep -q tick "$T/c.out" 2>/dev/null && break; sleep 0.1; done
cpus() { awk '/^Cpus_allowed_list/ {print $2}' "/proc/$vmm/task/$1/status"; }
thread() { grep -lx "$1" /proc/$vmm/task/*/comm | head -n 1 | cut -d/ -f5; }
check "vcpu0 on CPU 0 (role vcpu)" test "$(cpus "$(thread vcpu0)")" = 0
check "vcpu1 on CPU $last (its own list)" test "$(cpus "$(thread vcpu1)")" = "$last"
check "the main thread keeps its CPUs" test "$(cpus $vmm)" = "$(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status)"
n=0
for t in /proc/$vmm/task/*; do
	case "$(cat "$t/comm")" in vcpu*) continue ;; esac
	[ "$(cpus "${t##*/}")" = "$last" ] && n=$((n + 1))
done
check "the device threads on CPU $last" test "$n" -ge 1
"$BANYAN" ctl --api-socket "$T/api.sock" config 2>&1 | tr -d ' \n' >"$T/config.json"
check "GET /vm/config shows the placement" \
	contains "$T/config.json" "\"cpu_affinity\":{\"vcpu\":\"0\",\"vcpu1\":\"$last\",\"io\":\"$last\"}"
kill -TERM $vmm
wait $vmm
vmm=
tap_done
