#!/usr/bin/env bash
# Linux layer, the VMM core: Debian's cloud kernel boots unmodified, as a
# bzImage (64-bit boot protocol) and as an ELF vmlinux (PVH entry), with the
# vCPUs, memory and command line asked for; the RTC tells the right time;
# power-off and reboot give the documented exit statuses.
#
# time-limit: 480 (seconds for one run, emulated host included: tests/linux/run)
set -u
. "$(dirname "$0")/lib.sh"
linux_prereqs

# What every boot reports about itself.
REPORT='echo nproc=$(nproc); echo memtotal_kb=$(sed -n "s/^MemTotal: *\([0-9]*\) kB/\1/p" /proc/meminfo);
echo cmdline=$(cat /proc/cmdline); echo date=$(date +%s);
echo rtc=$(cat /sys/class/rtc/rtc0/since_epoch 2>/dev/null);
echo clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource);
echo serial_irqs=$(awk "/ttyS0/ {s=0; for (i=2; i<=NF; i++) if (\$i ~ /^[0-9]+$/) s+=\$i; print s}" /proc/interrupts)'

# memory_matches NAME MIB: MemTotal is what was asked for, less what the
# kernel keeps for itself (its image, page structs, reserved low memory).
memory_matches() {
	local kb asked=$(($2 * 1024))
	kb=$(guest_value "$1" memtotal_kb)
	[ -n "$kb" ] && [ "$kb" -le "$asked" ] && [ "$kb" -ge $((asked * 85 / 100)) ] ||
		{ echo "MemTotal ${kb:-?} kB for --memory $2M"; return 1; }
}

# 1. bzImage, 2 vCPUs, 512 MiB, a marker on the command line.
BOOT_ARGS="banyan.test=cmdline-arrives" guest_boot bz2 --cpus 2 --memory 512M -- "$REPORT"
host_now=$(date +%s)
check_guest_ran bz2
check "bz2: nproc is 2" test "$(guest_value bz2 nproc)" = 2
check "bz2: MemTotal matches 512M" memory_matches bz2 512
check "bz2: the command line arrives" contains "$T/bz2.console" "banyan.test=cmdline-arrives"
check "bz2: RTC time within a minute of the host's" within "$(guest_value bz2 rtc)" "$host_now" 60
check "bz2: system time within a minute of the host's" within "$(guest_value bz2 date)" "$host_now" 60
check "bz2: the UART works by interrupts (ttyS0 IRQs > 0)" test "$(guest_value bz2 serial_irqs)" -gt 0
check "bz2: kvmclock is the clocksource" test "$(guest_value bz2 clocksource)" = kvm-clock

# 2. ELF vmlinux through the PVH entry, 4 vCPUs, 5 GiB (RAM above 4 GiB).
guest_boot pvh4 --kernel "$GUEST_DIR/vmlinux" --cpus 4 --memory 5G -- "$REPORT"
check_guest_ran pvh4
check "pvh4: nproc is 4" test "$(guest_value pvh4 nproc)" = 4
check "pvh4: MemTotal matches 5G" memory_matches pvh4 5120

# 3. bzImage, 1 vCPU, default memory; keyboard input reaches the guest
# through the UART's receive interrupt.
mkfifo "$T/in"
(
	exec 3>"$T/in"
	for _ in $(seq 1 600); do
		grep -q '^@@BANYAN-BEGIN@@' "$T/in1.console" 2>/dev/null && break
		tr -d '\r' <"$T/in1.out" 2>/dev/null >"$T/in1.console"
		sleep 0.5
	done
	sleep 1
	printf 'typed-by-the-host\n' >&3
	sleep 30
) &
feeder=$!
GUEST_STDIN=$T/in guest_boot in1 -- 'echo nproc=$(nproc); read -r line; echo got=$line'
kill $feeder 2>/dev/null
check_guest_ran in1
check "in1: nproc is 1" test "$(guest_value in1 nproc)" = 1
check "in1: console input reaches the guest" test "$(guest_value in1 got)" = typed-by-the-host

# 4. A guest reboot ends banyan with status 0 (default --on-reboot exit).
guest_boot reboot -- 'reboot -f'
check "reboot: exit status 0" status_is 0 "$(vmm_rc reboot)"
check "reboot: reported as a reboot" contains "$T/reboot.err" "VM stopped (reboot)"

# 5. Every system call of a real kernel's boot (vCPU exits, the UART, the
# RTC, the entropy device, a read-only disk) is in its thread's seccomp
# list: banyan runs under tools/seccomp-audit (strace). Powers off at once.
if command -v strace >/dev/null; then
	printf '#!/bin/sh\nexec "%s" --banyan "%s" --report "%s" -- "%s" "$@"\n' \
		"$TOP/tools/seccomp-audit" "$BANYAN" "$T/audit.txt" "$BANYAN" >"$T/audited"
	chmod +x "$T/audited"
	BANYAN=$T/audited GUEST_TIMEOUT=240 guest_boot audit --rng \
		--disk "path=$KERNEL,ro" -- 'head -c 4096 /dev/hwrng >/dev/null; echo audited=yes'
	check "audit: the guest ran under strace" test "$(guest_value audit audited)" = yes
	check "audit: every call in its thread's seccomp list" \
		bash -c "grep -q 'calls checked' '$T/audit.txt' && ! grep 'not allowed' '$T/audit.txt'"
else
	skip "audit: every call in its thread's seccomp list" "no strace"
fi

tap_done
