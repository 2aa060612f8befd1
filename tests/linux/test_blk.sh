#!/usr/bin/env bash
# Linux layer, virtio block and entropy: Debian boots from a Banyan disk and
# keeps what it writes; read-only disks refuse writes; disks carry their ids;
# discard punches holes in the image; /dev/hwrng gives entropy; bad disk
# files fail before the guest starts. Both I/O engines (io_uring and the
# worker pool) serve a guest.
#
# The initramfs has no udev, so the /dev/disk/by-id/virtio-<serial> links
# are made here by the guest command from /sys/block/vdX/serial, exactly as
# udev's rule does (docs/virtio.md).
#
# time-limit: 600 (seconds for one run, emulated host included: tests/linux/run)
set -u
. "$(dirname "$0")/lib.sh"
linux_prereqs

ROOTFS=$GUEST_DIR/rootfs.ext4
if [ ! -e "$ROOTFS" ]; then
	echo "Bail out! missing $ROOTFS (build it with tools/guest-image)"
	exit 1
fi

# The kernel command line holds 2 KiB and at most 32 words after "--":
# a guest script travels gzip'ed and base64-encoded as a single word.
guest_script() {
	printf 'eval "$(echo %s | base64 -d | gunzip)"' "$(gzip -9c | base64 -w0)"
}

blocks() { stat -c %b "$1"; }

# --- 1. Boot from a copy of the Debian root file system ---------------------
cp --sparse=always "$ROOTFS" "$T/rootfs.ext4"
# A scratch disk full of data, for discard and write-zeroes.
head -c $((32 << 20)) /dev/urandom >"$T/scratch.img"
sync "$T/scratch.img"
scratch_before=$(blocks "$T/scratch.img")
rootfs_before=$(blocks "$T/rootfs.ext4")
MARK="banyan-persist-$(date +%s%N)-$RANDOM$RANDOM"

cmd=$(guest_script <<EOF
echo root=\$(awk '\$2 == "/" { print \$1 }' /proc/mounts | tail -n 1)
echo $MARK >/root/banyan-marker.txt
sync
mkdir -p /dev/disk/by-id
for b in /sys/block/vd*; do ln -sf ../../\${b##*/} /dev/disk/by-id/virtio-\$(cat \$b/serial); done
echo byid=\$(ls /dev/disk/by-id | xargs)
echo byid_target=\$(readlink -f /dev/disk/by-id/virtio-scratch-disk)
echo rng=\$(cat /sys/class/misc/hw_random/rng_current)
echo hwrng_bytes=\$(head -c 4096 /dev/hwrng | wc -c)
echo hwrng_distinct=\$(head -c 4096 /dev/hwrng | od -An -v -tx1 | tr ' ' '\n' | grep . | sort -u | wc -l)
echo discard_max=\$(cat /sys/block/vdb/queue/discard_max_bytes)
blkdiscard -o 0 -l 16777216 /dev/vdb && echo blkdiscard=ok
blkdiscard -z -o 16777216 -l 1048576 /dev/vdb && echo zeroout=ok
head -c 33554432 /dev/urandom >/root/big && sync
rm /root/big && sync
fstrim -v / && echo fstrim=ok
EOF
)
BOOT_ARGS="banyan.root=/dev/vda panic=-1" guest_boot root --memory 512M --rng \
	--disk "path=$T/rootfs.ext4,id=banyan-root" --disk "path=$T/scratch.img,id=scratch-disk" \
	-- "$cmd"
check_guest_ran root
check "root: / is /dev/vda (booted from the Banyan disk)" test "$(guest_value root root)" = /dev/vda
check "root: the file written and synced is in the image on the host" \
	grep -qaF "$MARK" "$T/rootfs.ext4"
check "root: both disks under /dev/disk/by-id with their ids" \
	test "$(guest_value root byid)" = "virtio-banyan-root virtio-scratch-disk"
check "root: by-id link of the second disk is /dev/vdb" test "$(guest_value root byid_target)" = /dev/vdb
check "root: the io_uring engine served the disks" contains "$T/root.err" "read-write, cache=writeback, io_uring"
check "root: virtio-rng is the current hwrng" test "$(guest_value root rng)" = virtio_rng.0
check "root: /dev/hwrng yields 4096 bytes" test "$(guest_value root hwrng_bytes)" = 4096
check "root: /dev/hwrng bytes look random (> 200 distinct values)" \
	test "$(guest_value root hwrng_distinct)" -gt 200
check "root: the guest sees discard support" test "$(guest_value root discard_max)" -gt 0
check "root: blkdiscard succeeds" test "$(guest_value root blkdiscard)" = ok
check "root: blkdiscard frees >= 15 MiB in the host file" \
	test $((scratch_before - $(blocks "$T/scratch.img"))) -ge $((15 << 11))
check "root: discarded range reads as zeroes on the host" \
	cmp -n $((16 << 20)) "$T/scratch.img" /dev/zero
check "root: blkdiscard -z (write zeroes) succeeds" test "$(guest_value root zeroout)" = ok
check "root: the zeroed range is zero on the host" \
	cmp -n $((1 << 20)) -i $((16 << 20)):0 "$T/scratch.img" /dev/zero
check "root: data after the zeroed range is intact" \
	bash -c "! cmp -s -n 4096 -i $((17 << 20)):0 '$T/scratch.img' /dev/zero"
check "root: fstrim on the root file system succeeds" test "$(guest_value root fstrim)" = ok
# The guest wrote 32 MiB (65536 host blocks) into a file, deleted it and ran
# fstrim: without discard reaching the host file it would have grown by that.
check "root: fstrim gives the deleted file's 32 MiB back to the host file" \
	test $(($(blocks "$T/rootfs.ext4") - rootfs_before)) -lt 8192

# --- 2. A read-only disk, the worker-pool engine, cache=none -----------------
mkdir -p "$T/rotree"
echo "read-only contents" >"$T/rotree/hello.txt"
truncate -s 16M "$T/ro.ext4"
mkfs.ext4 -q -F -d "$T/rotree" "$T/ro.ext4"
ro_sum=$(sha256sum <"$T/ro.ext4")
# cache=none needs a file system with O_DIRECT (tmpfs before Linux 6.6 has
# none): the first of these directories that has it holds the image.
has_direct() {
	truncate -s 8M "$1/direct.img" 2>/dev/null &&
		dd if=/dev/zero of="$1/direct.img" bs=4096 count=1 oflag=direct conv=notrunc 2>/dev/null
}
tmp_direct=0
has_direct "$T" && tmp_direct=1
DIRECT=$T/direct.img
direct_ok=0
direct_opts=()
for d in "$T" ${BANYAN_SCRATCH:+"$BANYAN_SCRATCH"} "$TOP/build"; do
	if has_direct "$d"; then
		DIRECT=$d/direct.img
		direct_ok=1
		direct_opts=(--disk "path=$DIRECT,cache=none")
		break
	fi
done

cmd=$(guest_script <<'EOF'
mkdir -p /mnt
mount -o ro /dev/vda /mnt && echo content=$(cat /mnt/hello.txt | tr ' ' _)
echo ro_flag=$(cat /sys/block/vda/ro)
touch /mnt/new 2>&1 | grep -q 'Read-only file system' && echo touch=EROFS
mount -o remount,rw /mnt 2>/dev/null; echo remount_rc=$?
dd if=/dev/zero of=/dev/vda bs=512 count=1 2>/dev/null; echo dd_rc=$?
umount /mnt
if [ -b /dev/vdb ]; then
	printf 'direct-io-ok' | dd of=/dev/vdb bs=4096 conv=sync,fsync 2>/dev/null
	echo direct_read=$(head -c 12 /dev/vdb)
fi
EOF
)
BANYAN_AIO=threads BOOT_ARGS="panic=-1" guest_boot ro --disk "path=$T/ro.ext4,ro" "${direct_opts[@]}" -- "$cmd"
check_guest_ran ro
check "ro: the worker-pool engine served the disk" contains "$T/ro.err" "read-only, cache=writeback, threads"
check "ro: the guest reads the disk" test "$(guest_value ro content)" = read-only_contents
check "ro: the block device is read-only in the guest" test "$(guest_value ro ro_flag)" = 1
check "ro: writing a file gives EROFS" test "$(guest_value ro touch)" = EROFS
check "ro: remounting read-write fails" test "$(guest_value ro remount_rc)" != 0
check "ro: raw writes to the device fail" test "$(guest_value ro dd_rc)" != 0
check "ro: the image is unchanged (sha256)" test "$(sha256sum <"$T/ro.ext4")" = "$ro_sum"
if [ "$direct_ok" = 1 ]; then
	check "ro: a cache=none disk reads back what the guest wrote" \
		test "$(guest_value ro direct_read)" = direct-io-ok
	check "ro: cache=none data is in the host file" \
		test "$(head -c 12 "$DIRECT")" = direct-io-ok
else
	skip "ro: a cache=none disk reads back what the guest wrote" "no O_DIRECT on $T"
	skip "ro: cache=none data is in the host file" "no O_DIRECT on $T"
fi

# --- 3. Bad disk files fail before the guest starts, with exit status 2 ------
# disk_error NAME EXPECTED-TEXT [banyan run options...]; RUNNER prefixes the command.
RUNNER=()
disk_error() {
	local name=$1 text=$2
	shift 2
	"${RUNNER[@]}" "$BANYAN" run --kernel "$KERNEL" --initrd "$INITRD" "$@" \
		</dev/null >"$T/$name.out" 2>"$T/$name.err"
	echo $? >"$T/$name.rc"
	check "$name: exit status 2" status_is 2 "$(cat "$T/$name.rc")"
	check "$name: clear error" contains "$T/$name.err" "$text"
	check "$name: the guest never ran (no console output)" test ! -s "$T/$name.out"
}
disk_error missing "cannot read disk $T/missing.img: No such file or directory" \
	--disk "path=$T/missing.img"
disk_error directory "$T/rotree is not a regular file or block device" --disk "path=$T/rotree"
echo data >"$T/unreadable.img"
chmod 000 "$T/unreadable.img"
# As root, drop the capabilities that bypass file permissions.
RUNNER=(setpriv --bounding-set -dac_override,-dac_read_search)
disk_error unreadable "cannot read disk $T/unreadable.img" --disk "path=$T/unreadable.img,ro"
RUNNER=()
check "unreadable: says why" contains "$T/unreadable.err" "Permission denied"
disk_error badopt "--disk: unknown or incomplete 'cache=sometimes'" \
	--disk "path=$T/ro.ext4,cache=sometimes"
if [ "$tmp_direct" = 0 ]; then
	disk_error nodirect "refuses O_DIRECT" --disk "path=$T/direct.img,cache=none"
fi
[ "$DIRECT" = "$T/direct.img" ] || rm -f "$DIRECT"
truncate -s 4096 "$T/small.overlay"
disk_error overlay_size "overlay $T/small.overlay is 4096 bytes, its base disk" \
	--disk "path=$T/ro.ext4,overlay=$T/small.overlay"
disk_error overlay_ro "ro and overlay= exclude each other" \
	--disk "path=$T/ro.ext4,ro,overlay=$T/x.overlay"

# --- 4. Boot through a copy-on-write overlay: the image never changes -------
# The Debian image from part 1 is the base; the guest's writes (a marker, a
# 4 MiB file, ext4's journal and metadata) all land in the overlay, which a
# second boot reopens and reads as it was left.
base_stat=$(stat -c '%s %Y %Z' "$T/rootfs.ext4")
base_head=$(head -c $((16 << 20)) "$T/rootfs.ext4" | sha256sum)
MARK2="banyan-overlay-$(date +%s%N)-$RANDOM"
# boot_overlay NAME <SCRIPT: boot Debian from the image through root.overlay
boot_overlay() {
	local cmd
	cmd=$(guest_script)
	BOOT_ARGS="banyan.root=/dev/vda panic=-1" guest_boot "$1" \
		--disk "path=$T/rootfs.ext4,overlay=$T/root.overlay" -- "$cmd"
	check_guest_ran "$1"
}
boot_overlay ovl1 <<EOF
echo root=\$(awk '\$2 == "/" { print \$1 }' /proc/mounts | tail -n 1)
echo $MARK2 >/root/overlay-marker.txt
head -c 4194304 /dev/urandom >/root/overlay-big
sync
echo 3 >/proc/sys/vm/drop_caches
echo big=\$(md5sum </root/overlay-big | cut -c1-32)
EOF
check "overlay: Debian boots from the image through the overlay" \
	test "$(guest_value ovl1 root)" = /dev/vda
check "overlay: the log names the overlay" contains "$T/ovl1.err" "read-write through overlay $T/root.overlay"
boot_overlay ovl2 <<EOF
echo marker=\$(cat /root/overlay-marker.txt)
echo big=\$(md5sum </root/overlay-big | cut -c1-32)
EOF
check "overlay: a second boot through the same overlay finds the marker" \
	test "$(guest_value ovl2 marker)" = "$MARK2"
check "overlay: ... and the 4 MiB file, byte for byte" \
	test -n "$(guest_value ovl1 big)" -a "$(guest_value ovl2 big)" = "$(guest_value ovl1 big)"
check "overlay: the base image was never written (size, times, first 16 MiB)" \
	test "$(stat -c '%s %Y %Z' "$T/rootfs.ext4") $(head -c $((16 << 20)) "$T/rootfs.ext4" | sha256sum)" \
	= "$base_stat $base_head"
ovl_kb=$(du -k "$T/root.overlay" | cut -f1)
check "overlay: it holds only what the guest wrote ($ovl_kb KiB allocated of $(($(stat -c %s "$T/rootfs.ext4") >> 10)))" \
	test "$ovl_kb" -gt 4096 -a "$ovl_kb" -lt 65536

tap_done
