#!/usr/bin/env bash
# Linux layer, guest memory on huge pages (docs/memory.md): with 2 MiB
# pages reserved in the host (vm.nr_hugepages), Debian's kernel boots on
# --memory 256M,hugepages=2M,prefault; while it runs the host's
# HugePages_Free is lower by exactly the guest's size (prefault faulted
# every page in), and the pages go back to the pool when it ends.
#
# time-limit: 360 (seconds for one run, emulated host included: tests/linux/run)
set -u
. "$(dirname "$0")/lib.sh"
linux_prereqs

MIB=256
PAGES=$((MIB / 2))
POOL=/proc/sys/vm/nr_hugepages
OLD_POOL=$(cat "$POOL")
trap 'echo "$OLD_POOL" >"$POOL"; rm -rf "$T"' EXIT
meminfo() { sed -n "s/^$1: *\([0-9]*\).*/\1/p" /proc/meminfo; }

echo $((OLD_POOL + PAGES)) >"$POOL"
free0=$(meminfo HugePages_Free)
if [ "$((free0 - $(meminfo HugePages_Rsvd)))" -lt "$PAGES" ]; then
	echo "Bail out! could not reserve $PAGES huge pages (HugePages_Free $free0)"
	exit 1
fi

# The guest reports its memory and stays up a few seconds; the host
# samples its pool meanwhile and keeps the lowest free count.
guest_boot huge --memory "${MIB}M,hugepages=2M,prefault" -- \
	'echo memtotal_kb=$(sed -n "s/^MemTotal: *\([0-9]*\) kB/\1/p" /proc/meminfo); sleep 3' &
boot=$!
low=$free0
while kill -0 "$boot" 2>/dev/null; do
	f=$(meminfo HugePages_Free)
	[ "$f" -lt "$low" ] && low=$f
	sleep 0.2
done
wait "$boot"

check_guest_ran huge
kb=$(guest_value huge memtotal_kb)
check "the guest on 2 MiB pages sees its memory (MemTotal ${kb:-?} kB of ${MIB} MiB)" \
	test "${kb:-0}" -le $((MIB * 1024)) -a "${kb:-0}" -ge $((MIB * 1024 * 80 / 100))
check "HugePages_Free dropped by the guest's size ($PAGES pages: $free0 -> $low)" \
	test "$((free0 - low))" -eq "$PAGES"
check "the pages went back to the pool when the VM ended" test "$(meminfo HugePages_Free)" -eq "$free0"
tap_done
