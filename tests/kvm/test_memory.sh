#!/usr/bin/env bash
# KVM layer, guest memory backing and accounting (docs/memory.md): --memory
# refusals, a guest on 2 MiB huge pages (this test reserves them with
# vm.nr_hugepages and puts the old value back), its snapshot restored into
# huge pages, the clear refusal on a host short of them, prefault, KSM's
# mergeable flag, and the /metrics memory figures against /proc/PID/status.
# Usage: test_memory.sh BANYAN GUEST_DIR
set -u
. "$(dirname "$0")/../lib/tap.sh"

BANYAN=$(realpath "$1")
GUESTS=$2
T=$(mktemp -d)
PIDS=()
POOL=/proc/sys/vm/nr_hugepages
OLD_POOL=$(cat "$POOL" 2>/dev/null || echo "")
cleanup() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	[ -n "$OLD_POOL" ] && [ "$(cat "$POOL")" != "$OLD_POOL" ] && echo "$OLD_POOL" >"$POOL"
	rm -rf "$T"
}
trap cleanup EXIT

# run NAME ARGS...: banyan run, output in $T/NAME.out/.err, status in $T/NAME.rc
run() {
	local name=$1
	shift
	timeout -s KILL 60 "$BANYAN" run "$@" </dev/null >"$T/$name.out" 2>"$T/$name.err"
	echo $? >"$T/$name.rc"
}
rc() { cat "$T/$1.rc"; }
not_contains() { ! grep -qF -- "$2" "$1"; }

# Refusals need no KVM: the option is checked before anything starts.
run odd --kernel "$GUESTS/hello.elf" --memory 63M,hugepages=2M
check "hugepages with 63M: exit 2" status_is 2 "$(rc odd)"
check "... says the size must be whole huge pages" contains "$T/odd.err" "multiple of 2"
run pagesize --kernel "$GUESTS/hello.elf" --memory 64M,hugepages=1G
check "hugepages=1G: exit 2" status_is 2 "$(rc pagesize)"
check "... unsupported page size" contains "$T/pagesize.err" "unsupported page size"
run ksmhuge --kernel "$GUESTS/hello.elf" --memory 64M,hugepages=2M,mergeable
check "hugepages with mergeable: exit 2" status_is 2 "$(rc ksmhuge)"
check "... KSM never merges huge pages" contains "$T/ksmhuge.err" "KSM"
run word --kernel "$GUESTS/hello.elf" --memory 64M,hugepagez=2M
check "an unknown word: exit 2" status_is 2 "$(rc word)"
check "... named" contains "$T/word.err" "hugepagez"
run nosize --kernel "$GUESTS/hello.elf" --memory prefault
check "no size first: exit 2" status_is 2 "$(rc nosize)"

if [ ! -c /dev/kvm ] || [ ! -w /dev/kvm ]; then
	skip "memory tests with a guest" "no usable /dev/kvm"
	tap_done
	exit
fi

wait_for() { # wait_for FILE TEXT: up to 10 s
	for _ in $(seq 1 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
# start NAME ARGS...: banyan run in the background with an API at $T/NAME.sock; $VM is its pid
start() {
	local name=$1
	shift
	"$BANYAN" run --api-socket "$T/$name.sock" "$@" </dev/null >"$T/$name.out" 2>"$T/$name.err" &
	VM=$!
	PIDS+=("$VM")
}
stop() { kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
ctl() { local s=$1; shift; "$BANYAN" ctl --api-socket "$T/$s.sock" "$@"; }
# api_at NAME METHOD PATH BODY: the HTTP status; the body in $T/api.body
api_at() { curl -s -o "$T/api.body" -w '%{http_code}' --unix-socket "$T/$1.sock" -X "$2" "http://localhost$3" -d "$4"; }
api() { api_at api "$@"; }
# metric SOCKET KIND: banyan_process_memory_bytes{kind=KIND} from GET /metrics
metric() { ctl "$1" metrics | sed -n "s/^banyan_process_memory_bytes{kind=\"$2\"} //p"; }
# status_kb PID FIELD: a field of /proc/PID/status, in kB
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
# guest_vmflags PID BYTES: the VmFlags of the mapping of exactly BYTES (guest RAM)
guest_vmflags() {
	local first rest size=0
	while read -r first rest; do
		case $first in
		*-*) size=$((16#${first#*-} - 16#${first%-*})) ;;
		# Ordinary RAM is two mappings: the first 2 MiB without THP, then the rest.
		VmFlags:) [ "$size" = "$2" ] || [ "$size" = $(($2 - (2 << 20))) ] &&
			{ echo "$first $rest "; return; } ;;
		esac
	done <"/proc/$1/smaps"
}
# near A B: A within 10% (or 4 MiB) of B, both bytes
near() {
	local a=${1:-0} b=${2:-0} d
	d=$((a > b ? a - b : b - a))
	[ "$d" -le $((4 << 20)) ] || [ "$d" -le $((b / 10)) ] || { echo "$a vs $b"; return 1; }
}
ge() { [ "${1:-0}" -ge "$2" ] || { echo "$1 < $2"; return 1; }; }
lt() { [ "${1:-0}" -lt "$2" ] || { echo "$1 >= $2"; return 1; }; }

MIB64=$((64 << 20))

# Ordinary memory: the /metrics figures are the kernel's own for the process.
start plain --kernel "$GUESTS/counter.elf" --memory 64M
wait_for "$T/plain.out" "tick 0000000000000003"
rss=$(metric plain rss)
vmrss=$(($(status_kb "$VM" VmRSS) << 10))
check "metrics rss is /proc/PID/status VmRSS" near "$rss" "$vmrss"
check "metrics pss is there and at most rss" test -n "$(metric plain pss)" -a "$(metric plain pss)" -le "$((rss + (4 << 20)))"
check "metrics private_dirty at most rss" test "$(metric plain private_dirty)" -le "$((rss + (4 << 20)))"
g=$(metric plain guest_resident)
v=$(metric plain vmm_resident)
check "guest_resident + vmm_resident is rss" near "$((g + v))" "$rss"
check "an idle 64M guest has not faulted its RAM in" lt "$g" "$((32 << 20))"
flags=$(guest_vmflags "$VM" "$MIB64")
check "guest RAM found in smaps" test -n "$flags"
check "not mergeable by default (no 'mg')" test "${flags/ mg/}" = "$flags"
# The metrics file's "memory" group: gauges, the same figures.
api_at plain PUT /metrics "{\"metrics_path\": \"$T/metrics.json\"}" >/dev/null
check "FlushMetrics: 204" status_is 204 "$(api_at plain PUT /actions '{"action_type": "FlushMetrics"}')"
mline=$(tail -n 1 "$T/metrics.json")
mjson() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])["memory"][sys.argv[2]])' "$mline" "$1"; }
check "metrics file: memory.rss_bytes is VmRSS" near "$(mjson rss_bytes)" "$(($(status_kb "$VM" VmRSS) << 10))"
check "metrics file: memory.guest_size_bytes is the guest's" status_is "$MIB64" "$(mjson guest_size_bytes)"
check "metrics file: vmm_resident_bytes = rss less guest RAM's" near \
	"$(($(mjson vmm_resident_bytes) + $(mjson guest_resident_bytes)))" "$(mjson rss_bytes)"
# The writer thread's own last line at the end reads the figures under its sandbox.
kill -TERM "$VM"
wait "$VM"
check "SIGTERM with a metrics file: exit 143 (not 148, a forbidden call)" status_is 143 "$?"
mline=$(tail -n 1 "$T/metrics.json")
check "the last metrics line, from the writer thread, has the memory group" test "$(mjson rss_bytes)" -gt 0

# prefault: every page resident before the guest runs.
start pre --kernel "$GUESTS/counter.elf" --memory 64M,prefault
wait_for "$T/pre.out" "tick 0000000000000001"
check "prefault: guest_resident reaches the guest's size" ge "$(metric pre guest_resident)" "$MIB64"
check "prefault: VmRSS of the VMM covers the guest" ge "$(($(status_kb "$VM" VmRSS) << 10))" "$MIB64"
check "machine-config reports mem_prefault" contains <(ctl pre config) '"mem_prefault":true'
stop "$VM"

# mergeable: KSM's flag on guest RAM.
start ksm --kernel "$GUESTS/counter.elf" --memory 64M,mergeable
wait_for "$T/ksm.out" "tick 0000000000000001"
flags=$(guest_vmflags "$VM" "$MIB64")
check "mergeable: guest RAM has VmFlags mg" contains <(echo "$flags") " mg"
stop "$VM"

# A host short of 2 MiB pages: refused before the VM starts, naming the knob.
free_pages=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages 2>/dev/null || echo 0)
resv_pages=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/resv_hugepages 2>/dev/null || echo 0)
short=$(((free_pages - resv_pages + 1) * 2))
[ "$short" -lt 64 ] && short=64
if [ "$short" -le 4096 ]; then
	run short --kernel "$GUESTS/hello.elf" --memory "${short}M,hugepages=2M"
	check "too few free huge pages: refused (exit 2)" status_is 2 "$(rc short)"
	check "... naming vm.nr_hugepages" contains "$T/short.err" "vm.nr_hugepages"
	check "... before the guest ran" not_contains "$T/short.out" "hello from"
	# The same through the API: InstanceStart answers 400 with the reason.
	"$BANYAN" run --api-socket "$T/api.sock" </dev/null >"$T/api.out" 2>"$T/api.err" &
	VM=$!
	PIDS+=("$VM")
	for _ in $(seq 1 50); do [ -S "$T/api.sock" ] && break; sleep 0.1; done
	api PUT /boot-source "{\"kernel_image_path\": \"$GUESTS/hello.elf\"}" >/dev/null
	check "PUT /machine-config huge_pages 2M: 204" status_is 204 \
		"$(api PUT /machine-config "{\"vcpu_count\": 1, \"mem_size_mib\": $short, \"huge_pages\": \"2M\"}")"
	check "InstanceStart without the huge pages: 400" status_is 400 \
		"$(api PUT /actions '{"action_type": "InstanceStart"}')"
	check "... naming vm.nr_hugepages" contains "$T/api.body" "vm.nr_hugepages"
	stop "$VM"
else
	skip "too few free huge pages: refused" "the host has $free_pages free 2 MiB pages"
fi

# Huge pages: reserve 64 (128 MiB) more, enough for two 64 MiB guests.
NEED=64
if [ -n "$OLD_POOL" ] && echo $((OLD_POOL + NEED)) >"$POOL" 2>/dev/null &&
	[ "$(($(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages) -
		$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/resv_hugepages)))" -ge "$NEED" ]; then
	run huge --kernel "$GUESTS/hello.elf" --memory 64M,hugepages=2M
	check "a guest on 2 MiB pages runs" contains "$T/huge.out" "hello from a banyan test guest"
	check "... and powers off (exit 0)" status_is 0 "$(rc huge)"

	start hm --kernel "$GUESTS/memcount.elf" --memory 64M,hugepages=2M
	wait_for "$T/hm.out" "count 0000000000000003"
	check "machine-config reports huge_pages 2M" contains <(ctl hm config) '"huge_pages":"2M"'
	check "metrics hugetlb: the huge pages the guest touched, at most 64 MiB" \
		test "$(metric hm hugetlb)" -le "$MIB64" -a "$(metric hm hugetlb)" -gt 0
	check "metrics guest_resident counts them" \
		test "$(metric hm guest_resident)" -ge "$(metric hm hugetlb)"
	check "metrics hugetlb is /proc/PID/status HugetlbPages" \
		test "$(metric hm hugetlb)" = "$(($(status_kb "$VM" HugetlbPages) << 10))"
	check "guest RAM is a hugetlb mapping (VmFlags ht)" contains <(guest_vmflags "$VM" "$MIB64") " ht"
	check "snapshot of a huge-page guest" ctl hm snapshot create "$T/snap"
	stop "$VM"
	# The restore copies the snapshot into freshly reserved huge pages.
	"$BANYAN" restore --snapshot "$T/snap" </dev/null >"$T/r.out" 2>"$T/r.err" &
	R=$!
	PIDS+=("$R")
	wait_for "$T/r.out" "count" && sleep 0.5
	h=$(status_kb "$R" HugetlbPages)
	stop "$R"
	first=$(grep -m1 '^count ' "$T/r.out" | cut -d' ' -f2)
	check "the restored huge-page guest continues counting" test "$((16#${first:-0}))" -gt 3
	check "... on huge pages (HugetlbPages of the restored VMM)" test "${h:-0}" -gt 0
	echo "$OLD_POOL" >"$POOL"
	if [ "$((OLD_POOL))" -lt 32 ]; then
		timeout -s KILL 20 "$BANYAN" restore --snapshot "$T/snap" </dev/null >"$T/r2.out" 2>"$T/r2.err"
		check "restoring it without free huge pages: refused (exit 2)" status_is 2 "$?"
		check "... naming vm.nr_hugepages" contains "$T/r2.err" "vm.nr_hugepages"
	fi
else
	skip "a guest on 2 MiB pages" "cannot reserve $NEED huge pages (vm.nr_hugepages)"
fi
tap_done
