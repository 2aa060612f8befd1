#!/usr/bin/env bash
# Linux layer, guest compatibility: in one boot, a Debian guest with
# --device fw-cfg and a custom CPU template (Firecracker's format)
# - reads a user file through QEMU's firmware interface under
#   /sys/firmware/qemu_fw_cfg (the qemu_fw_cfg driver binds to the DSDT's
#   QEMU0002 device);
# - lists acpi_pm among its clocksources (the FADT's PM timer);
# - sees in /proc/cpuinfo the CPUID bit the template sets (CPUID.6:ECX bit 3,
#   "epb", which KVM leaves clear) and not the one it clears (CPUID.1:ECX
#   bit 13, "cx16", which the host shows).
#
# time-limit: 600 (seconds for one run, emulated host included: tests/linux/run)
set -u
. "$(dirname "$0")/lib.sh"
linux_prereqs

cat >"$T/tmpl.json" <<'JSON'
{"cpuid_modifiers": [
  {"leaf": "0x6", "subleaf": "0x0", "flags": 0,
   "modifiers": [{"register": "ecx", "bitmap": "0b1xxx"}]},
  {"leaf": "0x1", "subleaf": "0x0", "flags": 0,
   "modifiers": [{"register": "ecx", "bitmap": "0b0x_xxxx_xxxx_xxxx"}]}],
 "msr_modifiers": []}
JSON

# Few words: the kernel passes at most 32 arguments to init.
CMD='cat /sys/firmware/qemu_fw_cfg/by_name/opt/banyan/greeting/raw;echo;cat /sys/devices/system/clocksource/clocksource0/available_clocksource;grep -m1 ^flags /proc/cpuinfo'
guest_boot guests --memory 256M --device fw-cfg --fw-cfg name=opt/banyan/greeting,string=hello-fw-cfg \
	--cpu-template "$T/tmpl.json" -- "$CMD"
check_guest_ran guests
out=$(guest_output guests)
flags=" $(grep '^flags' <<<"$out" | sed 's/^[^:]*://') "
check "fw_cfg: the guest reads the user file" grep -qx hello-fw-cfg <<<"$out"
check "PM timer: acpi_pm is among the guest's clocksources" grep -q acpi_pm <<<"$out"
check "CPU template: the guest sees the bit it sets (epb)" grep -q " epb " <<<"$flags"
check "CPU template: ...and not the bit it clears (cx16)" test -n "${flags##* cx16 *}"
tap_done
