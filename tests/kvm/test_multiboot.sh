#!/usr/bin/env bash
# KVM layer, multiboot kernels and the test devices: the kernels in
# tests/kvm/multiboot check what Banyan hands them and report through
# debug-exit, status (V << 1) | 1: 65 is a pass, any other odd status names
# the failed check (2N + 1). Bad images must be refused before anything runs.
# Usage: test_multiboot.sh BANYAN BUILD_DIR
set -u
. "$(dirname "$0")/../lib/tap.sh"

BANYAN=$1
K=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
PASS=65

run() {
	local name=$1 secs=$2
	shift 2
	timeout -s KILL "$secs" "$BANYAN" run "$@" </dev/null >"$T/$name.out" 2>"$T/$name.err"
	echo $? >"$T/$name.rc"
}
rc() { cat "$T/$1.rc"; }

# craft KIND FILE: a bad multiboot image (python3 writes the bytes).
craft() {
	python3 - "$1" "$2" <<'PY'
import struct, sys
kind, path = sys.argv[1], sys.argv[2]
M = 0x1badb002
def hdr(flags, *addrs):
    return struct.pack('<III', M, flags, (-(M + flags)) & 0xffffffff) + struct.pack('<%dI' % len(addrs), *addrs)
def aout(load, size, entry):
    # header at offset 0: header_addr = load_addr = load
    return hdr(0x10000, load, load, load + size, load + size, entry) + b'\xf4' * (size - 32)
if kind == 'truncated':
    data = hdr(0x10000, 0x100000, 0x100000)  # address fields cut short
elif kind == 'overram':
    data = aout(0x10000000, 4096, 0x10000000)  # 256 MiB, the VM has 64
elif kind == 'hole':
    data = aout(0xbffff000, 8192, 0xbffff000)  # crosses into the device hole
elif kind == 'elf64':
    data = bytearray(open(sys.argv[2] + '.in', 'rb').read())
    data[0x400:0x40c] = hdr(0)
elif kind == 'overlap':
    eh = b'\x7fELF\x01\x01\x01' + bytes(9) + struct.pack('<HHIIIIIHHHHHH', 2, 3, 1, 0x100000, 52, 0, 0, 52, 32, 2, 40, 0, 0)
    ph1 = struct.pack('<8I', 1, 0x1000, 0x100000, 0x100000, 0x1000, 0x1000, 5, 0x1000)
    ph2 = struct.pack('<8I', 1, 0x1000, 0x100800, 0x100800, 0x1000, 0x1000, 5, 0x1000)
    data = (eh + ph1 + ph2).ljust(0x1000, b'\0') + hdr(0) + b'\xf4' * (0x1000 - 12)
open(path, 'wb').write(bytes(data))
PY
}

# Bad images: a clear error, exit 2, nothing started.
craft truncated "$T/truncated.mb"
run truncated 20 --kernel "$T/truncated.mb"
check "truncated header: exit 2" status_is 2 "$(rc truncated)"
check "truncated header: says so" contains "$T/truncated.err" "truncated multiboot header"
craft overram "$T/overram.mb"
run overram 20 --kernel "$T/overram.mb" --memory 64
check "load address over RAM: exit 2" status_is 2 "$(rc overram)"
check "load address over RAM: says so" contains "$T/overram.err" "beyond the end of guest RAM"
craft hole "$T/hole.mb"
run hole 20 --kernel "$T/hole.mb" --memory 4G
check "load address in the device hole: exit 2" status_is 2 "$(rc hole)"
check "load address in the device hole: says so" contains "$T/hole.err" "device hole"
cp "$K/hello.elf" "$T/elf64.mb.in"
craft elf64 "$T/elf64.mb"
run elf64 20 --kernel "$T/elf64.mb"
check "ELF64 with a multiboot header: exit 2" status_is 2 "$(rc elf64)"
check "ELF64 with a multiboot header: says so" contains "$T/elf64.err" "64-bit ELF with a multiboot header"
craft overlap "$T/overlap.mb"
run overlap 20 --kernel "$T/overlap.mb"
check "overlapping segments: exit 2" status_is 2 "$(rc overlap)"
check "overlapping segments: says so" contains "$T/overlap.err" "overlap"
printf MODULE0 >"$T/mod0"
printf MODULE1 >"$T/mod1"
truncate -s 40M "$T/big"
run bigmod 20 --kernel "$K/mb_info.elf" --memory 32 --initrd "$T/big"
check "module too large: exit 2" status_is 2 "$(rc bigmod)"
check "module too large: says so" contains "$T/bigmod.err" "does not fit"
run linuxmods 20 --kernel "$K/hello.elf" --initrd "$T/mod0" --initrd "$T/mod1"
check "several --initrd for a Linux kernel: exit 2" status_is 2 "$(rc linuxmods)"
run baddev 20 --kernel "$K/mb_info.elf" --device frobnicator
check "unknown --device: exit 2" status_is 2 "$(rc baddev)"
run badsize 20 --kernel "$K/mb_info.elf" --device debug-exit,iosize=3
check "debug-exit iosize=3: exit 2" status_is 2 "$(rc badsize)"
run fwname 20 --kernel "$K/mb_info.elf" --fw-cfg name=etc/x,string=y
check "fw_cfg name outside opt/: exit 2" status_is 2 "$(rc fwname)"
check "fw_cfg name outside opt/: says so" contains "$T/fwname.err" "opt/"

names=("info structure and modules: pass" "info structure, 4 GiB: pass"
	"info structure: a wrong expectation fails check 6" "testdev: pass"
	"testdev absent: check 1 fails" "debug-exit moved: port 0xf4 is nothing"
	"fw_cfg: items, directory, a user file by DMA: pass" "fw_cfg: a file from the host: pass"
	"fw_cfg: a wrong CPU count fails check 3" "fw_cfg absent: check 1 fails"
	"CPU template: the guest sees the bit it sets and not the one it clears"
	"no CPU template: the bit is clear (check 1 fails)"
	"CPU template setting only: the cleared bit is set (check 2 fails)"
	"CPU template asking for a feature KVM lacks: refused, named"
	"x86-64-v3: avx2 shown and avx512f not, or refused naming what is missing"
	"SMP: 1 vCPU, no AP to start: pass" "SMP: 4 vCPUs started with INIT/SIPI: pass"
	"SMP: 8 vCPUs: pass" "SMP: a wrong CPU count fails check 2")
if [ ! -c /dev/kvm ] || [ ! -w /dev/kvm ]; then
	for n in "${names[@]}"; do
		skip "$n" "no usable /dev/kvm"
	done
	tap_done
	exit
fi

MODS=(--initrd "$T/mod0,cmdline=first-module" --initrd "$T/mod1")
run info 60 --kernel "$K/mb_info.elf" --memory 128 --device debug-exit "${MODS[@]}" \
	--cmdline "nmods=2 upper=$(((128 - 1) * 1024))"
check "${names[0]}" status_is $PASS "$(rc info)"
run info4g 60 --kernel "$K/mb_info.elf" --memory 4G --device debug-exit "${MODS[@]}" \
	--cmdline "nmods=2 upper=$(((3072 - 1) * 1024))"
check "${names[1]}" status_is $PASS "$(rc info4g)"
run infobad 60 --kernel "$K/mb_info.elf" --memory 128 --device debug-exit "${MODS[@]}" \
	--cmdline "nmods=2 upper=1"
check "${names[2]}" status_is 13 "$(rc infobad)"
run testdev 60 --kernel "$K/mb_testdev.elf" --device debug-exit --device testdev
check "${names[3]}" status_is $PASS "$(rc testdev)"
run notestdev 60 --kernel "$K/mb_testdev.elf" --device debug-exit
check "${names[4]}" status_is 3 "$(rc notestdev)"
run moved 60 --kernel "$K/mb_testdev.elf" --device debug-exit,iobase=0x500 --no-irqchip
check "${names[5]}" status_is 4 "$(rc moved)"
run fwcfg 60 --kernel "$K/mb_fwcfg.elf" --device debug-exit --cpus 3 --memory 96 \
	--fw-cfg "name=opt/banyan/test,string=banyan fw_cfg test" --cmdline "cpus=3 mib=96"
check "${names[6]}" status_is $PASS "$(rc fwcfg)"
printf 'banyan fw_cfg test' >"$T/fwfile"
run fwfile 60 --kernel "$K/mb_fwcfg.elf" --device debug-exit --device fw-cfg \
	--fw-cfg "name=opt/banyan/test,file=$T/fwfile" --cmdline "cpus=1 mib=256"
check "${names[7]}" status_is $PASS "$(rc fwfile)"
run fwbad 60 --kernel "$K/mb_fwcfg.elf" --device debug-exit --cpus 2 --device fw-cfg \
	--cmdline "cpus=3 mib=256"
check "${names[8]}" status_is 7 "$(rc fwbad)"
run nofw 60 --kernel "$K/mb_fwcfg.elf" --device debug-exit --cmdline "cpus=1 mib=256"
check "${names[9]}" status_is 3 "$(rc nofw)"

# CPU templates (Firecracker's custom format): set CPUID.6:ECX bit 3, which
# KVM leaves clear, and clear CPUID.1:ECX bit 13 (CMPXCHG16B), which it shows.
SETCLR="sl=6 ss=0 sr=2 sb=3 cl=1 cs=0 cr=2 cb=13"
cat >"$T/tmpl.json" <<'EOF2'
{"kvm_capabilities": ["!56"],
 "cpuid_modifiers": [
  {"leaf": "0x6", "subleaf": "0x0", "flags": 0,
   "modifiers": [{"register": "ecx", "bitmap": "0b1xxx"}]},
  {"leaf": "0x1", "subleaf": "0x0", "flags": 0,
   "modifiers": [{"register": "ecx", "bitmap": "0b0x_xxxx_xxxx_xxxx"}]}],
 "msr_modifiers": []}
EOF2
head -n 4 "$T/tmpl.json" | sed '$s/,$//' >"$T/setonly.json"
echo ']}' >>"$T/setonly.json"
run tmpl 60 --kernel "$K/mb_cpuid.elf" --device debug-exit --cpu-template "$T/tmpl.json" \
	--cmdline "$SETCLR"
check "${names[10]}" status_is $PASS "$(rc tmpl)"
run notmpl 60 --kernel "$K/mb_cpuid.elf" --device debug-exit --cmdline "$SETCLR"
check "${names[11]}" status_is 3 "$(rc notmpl)"
run setonly 60 --kernel "$K/mb_cpuid.elf" --device debug-exit --cpu-template "$T/setonly.json" \
	--cmdline "$SETCLR"
check "${names[12]}" status_is 5 "$(rc setonly)"
# XOP (CPUID.80000001:ECX bit 11): neither Intel nor AMD's current cores have it.
echo '{"cpuid_modifiers": [{"leaf": "0x80000001", "subleaf": "0x0", "flags": 0,
 "modifiers": [{"register": "ecx", "bitmap": "0b1000_0000_0000"}]}]}' >"$T/xop.json"
run xop 60 --kernel "$K/mb_cpuid.elf" --device debug-exit --cpu-template "$T/xop.json" \
	--cmdline "$SETCLR"
check "${names[13]}" contains "$T/xop.err" "host lacks: ? (CPUID.80000001:ECX bit 11)"
run v3 60 --kernel "$K/mb_cpuid.elf" --device debug-exit --cpu-template x86-64-v3 \
	--cmdline "sl=7 ss=0 sr=1 sb=5 cl=7 cs=0 cr=1 cb=16"
if grep -q "x86-64-v3 asks for features this host lacks: .*avx2" "$T/v3.err"; then
	check "${names[14]}" status_is 2 "$(rc v3)"
else
	check "${names[14]}" status_is $PASS "$(rc v3)"
fi

# SMP: the APs come up through INIT/SIPI, as many as fw_cfg says.
i=15
for n in 1 4 8; do
	run "smp$n" 60 --kernel "$K/mb_smp.elf" --device debug-exit --device fw-cfg --cpus $n \
		--cmdline "cpus=$n"
	check "${names[i]}" status_is $PASS "$(rc "smp$n")"
	i=$((i + 1))
done
run smpbad 60 --kernel "$K/mb_smp.elf" --device debug-exit --device fw-cfg --cpus 4 \
	--cmdline "cpus=3"
check "${names[18]}" status_is 5 "$(rc smpbad)"
tap_done
