#!/usr/bin/env bash
# Linux layer, virtio-balloon (docs/memory.md), one guest boot: memory the
# guest frees goes back to the host by free page reporting (the VMM's RSS
# falls), statistics arrive at the set interval, and PATCH /balloon
# inflates the balloon (the guest's available memory falls by it) and
# deflates it again. deflate_on_oom under memory pressure is not checked.
#
# time-limit: 400 (seconds for one run, emulated host included: tests/linux/run)
set -u
. "$(dirname "$0")/lib.sh"
linux_prereqs

# The guest prints step=N as it goes and sleeps between steps, so the host
# measures at each one.
GUEST=$(cat <<'EOF'
m() { awk "/^$1:/ {print \$2}" /proc/meminfo; }
echo driver=$(ls /sys/bus/virtio/drivers | grep -c balloon)
mkdir -p /mnt/t && mount -t tmpfs -o size=400m tmpfs /mnt/t
dd if=/dev/zero of=/mnt/t/a bs=1M count=200 2>/dev/null
echo step=1
sleep 6
rm /mnt/t/a
echo step=2
sleep 45
echo step=3
sleep 2
EOF
)

# Unix sockets cannot live on the emulated host's 9p /tmp: /run is a tmpfs.
BAL_API=$(mktemp -u /run/banyan-balloon.XXXXXX)
trap 'rm -rf "$T" "$BAL_API"' EXIT
"$BANYAN" run --kernel "$KERNEL" --initrd "$INITRD" --memory 512M --api-socket "$BAL_API" \
	--balloon=deflate_on_oom,stats=1 \
	--cmdline "console=ttyS0 quiet -- $(printf 'eval "$(echo %s | base64 -d | gunzip)"' "$(printf '%s' "$GUEST" | gzip -9c | base64 -w0)")" \
	</dev/null >"$T/bal.out" 2>"$T/bal.err" &
vm=$!

api() { curl -s --max-time 30 --unix-socket "$BAL_API" -X "$1" -H 'Content-Type: application/json' \
	${3:+-d "$3"} "http://localhost$2"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$vm/status" 2>/dev/null; }
wait_step() {
	for _ in $(seq 1 $((GUEST_TIMEOUT * 5))); do
		tr -d '\r' <"$T/bal.out" | grep -q "^step=$1\$" && return 0
		kill -0 $vm 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}
value() { tr -d '\r' <"$T/bal.out" | sed -n "s/^$1=//p" | tail -n 1; }

wait_step 1 || { echo "Bail out! the guest did not reach its first step"; tail -n 20 "$T/bal.out" "$T/bal.err" 2>&1 | sed "s/^/# /"; exit 1; }
check "the guest bound the balloon driver" test "$(value driver)" = 1
rss_full=$(rss_kib)
wait_step 2
# Reporting waits ~2 s in the guest, then hands over 2 MiB blocks: give it 15 s.
for _ in $(seq 1 30); do
	rss_freed=$(rss_kib)
	[ "$rss_freed" -lt $((rss_full - 150 * 1024)) ] && break
	sleep 0.5
done
check "reporting: the VMM's RSS fell by >= 150 MiB after the guest freed 200 MiB ($rss_full -> $rss_freed KiB)" \
	test "$rss_freed" -lt $((rss_full - 150 * 1024))
stats=$(api GET /balloon/statistics)
check "statistics arrive (free_memory, total_memory): $stats" \
	sh -c "echo '$stats' | grep -q free_memory && echo '$stats' | grep -q total_memory"
stat() { api GET /balloon/statistics | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
until_stat() { # until_stat KEY VALUE: within 20 s
	for _ in $(seq 1 40); do
		[ "$(stat "$1")" = "$2" ] && return 0
		sleep 0.5
	done
	echo "$1 is $(stat "$1"), not $2"
	return 1
}
# With deflate_on_oom Linux keeps its total and counts the balloon as used.
avail0=$(stat available_memory)
check "inflate: PATCH /balloon 128 MiB" test -z "$(api PATCH /balloon '{"amount_mib": 128}')"
check "inflate: the guest gives 128 MiB (actual_mib)" until_stat actual_mib 128
sleep 2
avail1=$(stat available_memory)
check "inflate: the guest's available memory fell by >= 100 MiB ($avail0 -> $avail1)" \
	test $(((${avail0:-0} - ${avail1:-0}) >> 20)) -ge 100
check "deflate: PATCH /balloon 0" test -z "$(api PATCH /balloon '{"amount_mib": 0}')"
check "deflate: the guest takes its pages back (actual_mib 0)" until_stat actual_mib 0
check "the VMM is still running" kill -0 $vm
wait_step 3
wait_bounded 60 $vm
check "the guest powered off cleanly" grep -q "^@@BANYAN-END rc=0@@" "$T/bal.out"
tap_done
