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

CMD='f=/sys/firmware/qemu_fw_cfg/by_name/opt/banyan/greeting/raw;
echo fwcfg=$(cat $f 2>/dev/null || echo missing);
echo clocksources=$(cat /sys/devices/system/clocksource/clocksource0/available_clocksource | tr " " ,);
flags=$(grep -m1 "^flags" /proc/cpuinfo);
case " ${flags#*:} " in *" epb "*) echo epb=yes ;; *) echo epb=no ;; esac;
case " ${flags#*:} " in *" cx16 "*) echo cx16=yes ;; *) echo cx16=no ;; esac'
guest_boot guests --memory 256M --device fw-cfg --fw-cfg name=opt/banyan/greeting,string=hello-fw-cfg \
	--cpu-template "$T/tmpl.json" -- "$CMD"
check_guest_ran guests
check "fw_cfg: the guest reads the user file" test "$(guest_value guests fwcfg)" = hello-fw-cfg
check "PM timer: acpi_pm is among the guest's clocksources" \
	grep -q acpi_pm <<<"$(guest_value guests clocksources)"
check "CPU template: the guest sees the bit it sets (epb)" test "$(guest_value guests epb)" = yes
check "CPU template: ...and not the bit it clears (cx16)" test "$(guest_value guests cx16)" = no
tap_done
