#!/usr/bin/env bash
# KVM layer, snapshots: a guest counting in memory is snapshotted (full and
# diff), restored in new processes (it continues, rollback repeats, the diff
# chain composes), cloned, and damaged snapshots are refused; with disks,
# an overlay's copy travels in the snapshot and clones get their own; a
# running VM is branched into clones through the API (banyan ctl clone).
# Usage: test_snapshot.sh BANYAN GUEST_DIR
set -u
. "$(dirname "$0")/../lib/tap.sh"

BANYAN=$(realpath "$1")
GUESTS=$2
T=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

# The offline checks need no KVM.
mkdir -p "$T/fake"
run_bad() { timeout 20 "$BANYAN" restore --snapshot "$1" </dev/null >"$T/bad.out" 2>"$T/bad.err"; echo $?; }
check "no snapshot there: exit 2" status_is 2 "$(run_bad "$T/nothing")"
check "no snapshot there: says so" contains "$T/bad.err" "not a snapshot"
echo '{"format":"banyan-snapshot","version":' >"$T/fake/manifest.json"
check "truncated manifest: exit 2" status_is 2 "$(run_bad "$T/fake")"
check "truncated manifest: says so" contains "$T/bad.err" "truncated"
mkdir -p "$T/fifo"
mkfifo "$T/fifo/manifest.json"
check "a FIFO as the manifest: exit 2 (not a hang)" status_is 2 "$(run_bad "$T/fifo")"
check "... saying it is not a regular file" contains "$T/bad.err" "not a regular file"

if [ ! -c /dev/kvm ] || [ ! -w /dev/kvm ]; then
	skip "snapshot tests with a guest" "no usable /dev/kvm"
	tap_done
	exit
fi

# first_count FILE: the first counter value the guest printed, in decimal.
first_count() { local v; v=$(grep -m1 '^count ' "$1" | cut -d' ' -f2); echo $((16#${v:-0})); }
# last_count FILE: the last complete counter value (a VM stopped mid-line leaves a partial one).
last_count() { local v; v=$(grep '^count [0-9a-f]\{16\}$' "$1" | tail -1 | cut -d' ' -f2); echo $((16#${v:-0})); }
not_contains() { ! grep -qF -- "$2" "$1"; }
wait_for() { # wait_for FILE TEXT [SECS]: up to SECS (10) s
	for _ in $(seq 1 $((${3:-10} * 10))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
ctl() { "$BANYAN" ctl --api-socket "$T/api.sock" "$@"; }
# Under emulation (tools/emulated-host) everything runs several times slower.
RESTORE_SECS=${BANYAN_EMULATED_HOST:+6}

# One VM: a full snapshot, then two diffs, then it is stopped.
"$BANYAN" run --kernel "$GUESTS/memcount.elf" --api-socket "$T/api.sock" </dev/null \
	>"$T/vm.out" 2>"$T/vm.err" &
PIDS+=($!)
wait_for "$T/vm.out" "count 0000000000000005"
mkdir -p "$T/store"
check "ctl snapshot create (full)" ctl snapshot create "$T/store/base"
sleep 0.3
check "ctl snapshot create --diff" ctl snapshot create --diff "$T/store/child"
sleep 0.3
check "ctl snapshot create --diff (grandchild)" ctl snapshot create --diff "$T/store/grand"
check "ctl snapshot create --paused" ctl snapshot create --paused "$T/store/paused"
n1=$(last_count "$T/vm.out")
sleep 0.3
n2=$(last_count "$T/vm.out")
check "--paused leaves the VM paused" test "$n1" = "$n2"

# Only an absent path, or with --overwrite a snapshot, is written; a
# refusal touches nothing.
manifest_id() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]+"/manifest.json"))["id"])' "$1"; }
mkdir -p "$T/store/mine/sub"
echo keep >"$T/store/mine/file.txt"
chmod 755 "$T/store/mine"
ctl snapshot create "$T/store/mine" >/dev/null 2>"$T/refuse.err"
check "snapshot onto a directory that is no snapshot: exit 1" status_is 1 "$?"
check "... saying why" contains "$T/refuse.err" "is not a snapshot"
ctl snapshot create --overwrite "$T/store/mine" >/dev/null 2>"$T/refuse.err"
check "... refused with --overwrite too" status_is 1 "$?"
check "... its file, subdirectory and mode untouched" test -f "$T/store/mine/file.txt" -a \
	-d "$T/store/mine/sub" -a "$(stat -c %a "$T/store/mine")" = 755
check "... and no temporary directory left" test -z "$(ls -a "$T/store" | grep tmp)"
echo data >"$T/store/afile"
ctl snapshot create "$T/store/afile" >/dev/null 2>"$T/refuse.err"
check "snapshot onto a file: exit 1, the file untouched" \
	test "$?" = 1 -a "$(cat "$T/store/afile")" = data
id_paused=$(manifest_id "$T/store/paused")
ctl snapshot create "$T/store/paused" >/dev/null 2>"$T/refuse.err"
check "snapshot onto a snapshot without --overwrite: exit 1" status_is 1 "$?"
check "... saying so, the snapshot kept" \
	test "$(manifest_id "$T/store/paused")" = "$id_paused" -a -n "$(grep -F -- --overwrite "$T/refuse.err")"
check "snapshot --overwrite replaces a snapshot" ctl snapshot create --overwrite "$T/store/paused"
check "... with a new one" test "$(manifest_id "$T/store/paused")" != "$id_paused"
id_base=$(manifest_id "$T/store/base")
ctl snapshot create --overwrite "$T/store/base" >/dev/null 2>"$T/refuse.err"
check "replacing a snapshot diffs depend on is refused, as delete is" status_is 1 "$?"
check "... saying why" contains "$T/refuse.err" "diff snapshot depending on it (child)"
check "... the snapshot kept" test "$(manifest_id "$T/store/base")" = "$id_base"
# A temporary left by a writer killed with -9 (its pid is gone) is removed
# by the next snapshot written there; one whose writer lives is kept.
sh -c true &
dead=$!
wait "$dead"
mkdir "$T/store/old.tmp-$dead-Ab1234" "$T/store/new.tmp-$$-Ab1234"
echo x >"$T/store/old.tmp-$dead-Ab1234/memory"
echo x >"$T/store/new.tmp-$$-Ab1234/memory"
check "snapshot after a killed writer" ctl snapshot create "$T/store/later"
check "... removed the dead writer's temporary" test ! -e "$T/store/old.tmp-$dead-Ab1234"
check "... and kept the live one's" test -f "$T/store/new.tmp-$$-Ab1234/memory"
rm -rf "$T/store/new.tmp-$$-Ab1234" "$T/store/mine" "$T/store/afile" "$T/store/later"
if command -v curl >/dev/null; then
	api_put() { curl -s --unix-socket "$T/api.sock" -X PUT "http://localhost$1" -d "$2"; }
	echo precious >"$T/precious"
	api_put /snapshot/create '{"snapshot_path": "'"$T"'/store/ml", "mem_file_path": "'"$T"'/precious"}' >"$T/ml.out"
	check "mem_file_path naming an existing file: 400" contains "$T/ml.out" "already exists"
	check "... the file untouched, no snapshot written" \
		test "$(cat "$T/precious")" = precious -a ! -e "$T/store/ml"
	api_put /snapshot/create '{"snapshot_path": "'"$T"'/store/ml", "mem_file_path": "'"$T"'/ml.mem"}' >"$T/ml.out"
	check "mem_file_path naming a new file: a link to the memory file" \
		test "$(stat -c %i "$T/ml.mem")" = "$(stat -c %i "$T/store/ml/memory")"
	api_put /snapshot/create '{"snapshot_path": "'"$T"'/store/ml", "overwrite": "yes"}' >"$T/ml.out"
	check "overwrite must be a boolean: 400" contains "$T/ml.out" "overwrite booleans"
	rm -rf "$T/store/ml" "$T/ml.mem"
else
	skip "mem_file_path refusals" "no curl"
fi
ctl resume >/dev/null
ctl stop >/dev/null
wait "${PIDS[0]}"
stop_count=$(last_count "$T/vm.out")

check "full snapshot is a directory with a manifest" test -f "$T/store/base/manifest.json"
check "memory is sparse (far below 256 MiB on disk)" \
	test "$(du -k "$T/store/base/memory" | cut -f1)" -lt 4096
check "no temporary directories left" test -z "$(ls "$T/store" | grep tmp)"

# restore NAME SNAPSHOT: run it for a second, stdout in $T/NAME.out
restore() {
	local name=$1
	shift
	timeout -s TERM "${RESTORE_SECS:-1.5}" "$BANYAN" restore --snapshot "$@" </dev/null >"$T/$name.out" 2>"$T/$name.err"
}
restore r1 "$T/store/base"
restore r2 "$T/store/base"
b1=$(first_count "$T/r1.out")
b2=$(first_count "$T/r2.out")
check "restore continues counting (not from 1)" test "${b1:-0}" -gt 5
check "restore continues from before the stop" test "${b1:-0}" -le "$stop_count"
check "restoring twice runs from the same point (rollback)" test "${b1:-0}" = "${b2:-x}"
check "the restored VM keeps counting" test "$(last_count "$T/r1.out")" -gt "${b1:-0}"
# A relative path: its lineage's realpath asks getcwd, after the filters.
(cd "$T/store" && restore rrel base)
check "a snapshot named by a relative path restores (seccomp on)" \
	test "$(first_count "$T/rrel.out")" = "${b1:-x}"
restore rc "$T/store/child"
restore rg "$T/store/grand"
c=$(first_count "$T/rc.out")
g=$(first_count "$T/rg.out")
check "diff child continues after its parent's point" test "${c:-0}" -gt "${b1:-0}"
check "diff grandchild continues after the child's point" test "${g:-0}" -gt "${c:-0}"
check "diff is smaller than the full snapshot" \
	test "$(du -k "$T/store/child" | cut -f1)" -lt "$(du -k "$T/store/base" | cut -f1)"

# The store: tree, refusal to delete a needed parent, merge.
"$BANYAN" snapshot --store "$T/store" tree >"$T/tree.out"
check "tree shows the chain" grep -q -- "-- grand" "$T/tree.out"
"$BANYAN" snapshot --store "$T/store" delete child >/dev/null 2>"$T/del.err"
check "delete of a needed parent is refused" contains "$T/del.err" "--merge"
check "delete --merge folds the child into its diffs" \
	"$BANYAN" snapshot --store "$T/store" delete --merge child
restore rg2 "$T/store/grand"
check "grandchild restores the same after the merge" test "$(first_count "$T/rg2.out")" = "$g"
check "snapshot verify checks the memory too" "$BANYAN" snapshot verify "$T/store/grand"

# The config section is the machine's JSON document (version byte 3), and
# a snapshot written with the binary config of version 2 still restores.
check "config.state is version 3 with the machine's JSON document" python3 - "$T/store/base/config.state" \
	"$GUESTS/memcount.elf" <<'EOF'
import json, sys
b = open(sys.argv[1], "rb").read()
doc = json.loads(b[1:])
sys.exit(not (b[0] == 3 and doc["boot-source"]["kernel_image_path"] == sys.argv[2]
              and doc["machine-config"]["vcpu_count"] == 1))
EOF
cp -a "$T/store/base" "$T/v2"
python3 - "$T/v2" "$GUESTS/memcount.elf" <<'EOF'
import json, struct, sys, zlib
d, kernel = sys.argv[1], sys.argv[2].encode()
m = json.load(open(d + "/manifest.json"))
s = lambda b: struct.pack("<I", len(b)) + b
none = struct.pack("<I", 0xffffffff)
sec = (struct.pack("<BIQBB", 2, m["vcpus"], m["memory"]["size"], 0, 0) + s(kernel) + none
       + s(b"console=ttyS0 v2") + struct.pack("<BBBI", 0, 0, 0, 0) + none)
open(d + "/config.state", "wb").write(sec)
for e in m["sections"]:
    if e["name"] == "config":
        e["size"], e["crc32"] = len(sec), zlib.crc32(sec)
json.dump(m, open(d + "/manifest.json", "w"))
EOF
restore rv2 "$T/v2" --api-socket "$T/v2.sock" &
rv2=$!
wait_for "$T/rv2.out" "^count "
"$BANYAN" ctl --api-socket "$T/v2.sock" config >"$T/v2.json" 2>&1
wait "$rv2"
check "a snapshot with config version 2 restores and continues" test "$(first_count "$T/rv2.out")" = "$b1"
check "... and GET /vm/config shows its machine" grep -q '"boot_args": *"console=ttyS0 v2"' "$T/v2.json"

# A restored VM logs dirty pages from its first instruction (its memslots
# are registered logged): a diff of it carries the counter page the guest
# wrote after the restore, and the restore says how long it took.
"$BANYAN" restore --snapshot "$T/store/base" --api-socket "$T/rd.sock" </dev/null \
	>"$T/rd.out" 2>"$T/rd.err" &
rd=$!
wait_for "$T/rd.out" "^count "
sleep 0.3
check "a diff of a restored VM" "$BANYAN" ctl --api-socket "$T/rd.sock" snapshot create --diff "$T/store/rdiff"
kill "$rd"
wait "$rd"
check "the restore logs its wall and CPU time" grep -q "ms after the restore began (.* ms of CPU)" "$T/rd.err"
restore rdr "$T/store/rdiff"
check "... carries what the guest counted after the restore" \
	test "$(first_count "$T/rdr.out")" -gt "$(first_count "$T/rd.out")"

# Damaged snapshots are refused before anything runs.
damaged() { rm -rf "$T/d"; cp -a "$T/store/base" "$T/d"; }
damaged
printf '\x55' | dd of="$T/d/vcpus.state" bs=1 seek=100 conv=notrunc status=none
check "corrupt section: exit 2" status_is 2 "$(run_bad "$T/d")"
check "corrupt section: says corrupt" contains "$T/bad.err" "corrupt"
damaged
truncate -s 1M "$T/d/memory"
check "truncated memory: exit 2" status_is 2 "$(run_bad "$T/d")"
check "truncated memory: says truncated" contains "$T/bad.err" "truncated"
damaged
dd if=/dev/urandom of="$T/d/memory" bs=4096 count=1 seek=$((0x300)) conv=notrunc status=none
check "corrupt memory: exit 2" status_is 2 "$(run_bad "$T/d")"
damaged
sed -i 's/"version":1/"version":99/' "$T/d/manifest.json"
check "newer format version: exit 2" status_is 2 "$(run_bad "$T/d")"
check "newer format version: says so" contains "$T/bad.err" "newer"
check "nothing ran for a bad snapshot" not_contains "$T/bad.out" "count"
damaged
rm "$T/d/memory"
mkfifo "$T/d/memory"
check "a FIFO as the memory file: exit 2 (not a hang)" status_is 2 "$(run_bad "$T/d")"
check "... saying it is not a regular file" contains "$T/bad.err" "not a regular file"
# refit DIR FILE: the manifest's size and CRC of FILE made to match it again
# (or, with a third argument, its section dropped from the manifest).
refit() {
	python3 - "$@" <<'PY'
import json, sys, zlib
d, f = sys.argv[1], sys.argv[2]
m = json.load(open(d + '/manifest.json'))
if len(sys.argv) > 3:
    m['sections'] = [s for s in m['sections'] if s['file'] != f]
else:
    data = open(d + '/' + f, 'rb').read()
    for s in m['sections']:
        if s['file'] == f:
            s['size'], s['crc32'] = len(data), zlib.crc32(data)
json.dump(m, open(d + '/manifest.json', 'w'))
PY
}
run_bad_nv() { timeout 20 "$BANYAN" restore --no-verify-memory --snapshot "$1" </dev/null >"$T/bad.out" 2>"$T/bad.err"; echo $?; }
# A diff whose memory bitmap is missing or of the wrong size (memory not
# verified): refused at open, never a crash.
for i in 1 2 3; do
	rm -rf "$T/nomap"
	cp -a "$T/store/grand" "$T/nomap"
	refit "$T/nomap" memory.map.state drop
	check "a diff without its memory bitmap ($i): exit 2, no crash" status_is 2 "$(run_bad_nv "$T/nomap")"
done
check "... naming memory.map" contains "$T/bad.err" "memory.map"
rm -rf "$T/nomap"
cp -a "$T/store/grand" "$T/nomap"
truncate -s 8 "$T/nomap/memory.map.state"
refit "$T/nomap" memory.map.state
check "a diff whose bitmap has the wrong size: exit 2, no crash" status_is 2 "$(run_bad_nv "$T/nomap")"
check "... saying so" contains "$T/bad.err" "memory.map has the wrong size"
# A devices section with a byte after its last device: the failure says so
# (the error text was left unwritten).
damaged
printf '\x00' >>"$T/d/devices.state"
refit "$T/d" devices.state
timeout 20 "$BANYAN" restore --snapshot "$T/d" </dev/null >"$T/bad.out" 2>"$T/bad.err"
check "a devices section with trailing bytes: refused" test "$?" != 0 -a "$?" != 124
check "... with a reason" contains "$T/bad.err" "the devices section has bytes after its last device"
check "... and nothing ran" not_contains "$T/bad.out" "count"

# Clones: three processes from one snapshot, each with its own console.
(cd "$T" && timeout --preserve-status -s TERM 2 "$BANYAN" restore --snapshot "$T/store/base" --clones 3 \
	--console "$T/clone" </dev/null >"$T/clones.out" 2>"$T/clones.err")
check "clones exit cleanly on SIGTERM" status_is 143 "$?"
for i in 0 1 2; do
	check "clone $i continues counting" test "$(first_count "$T/clone.$i")" = "$b1"
done

# Disks: the counting guest gets a plain disk (vda) and one with an overlay
# (vdb). It never touches them, so the host plays the guest's writes into
# the overlay file (a written cluster is an allocated one).
truncate -s 1M "$T/plain.img" "$T/base2.img"
printf 'BASE' | dd of="$T/base2.img" conv=notrunc status=none
sums() { sha256sum "$T/plain.img" "$T/base2.img" | cut -d' ' -f1 | xargs; }
sums_before=$(sums)
"$BANYAN" run --kernel "$GUESTS/memcount.elf" --api-socket "$T/api2.sock" \
	--disk "path=$T/plain.img" --disk "path=$T/base2.img,overlay=$T/vm.overlay" </dev/null \
	>"$T/vm2.out" 2>"$T/vm2.err" &
vm2=$!
PIDS+=($vm2)
wait_for "$T/vm2.out" "count 0000000000000005"
printf 'GUEST-WROTE' | dd of="$T/vm.overlay" conv=notrunc status=none
check "snapshot of a VM with an overlay disk" \
	"$BANYAN" ctl --api-socket "$T/api2.sock" snapshot create "$T/store/disks"
printf 'AFTER' | dd of="$T/vm.overlay" bs=4096 seek=16 conv=notrunc status=none
check "the snapshot holds a copy of the overlay (vdb) and none for the plain disk" \
	test -f "$T/store/disks/disk-vdb.overlay" -a ! -e "$T/store/disks/disk-vda.overlay"
check "the copy holds what was written before the snapshot" \
	test "$(head -c 11 "$T/store/disks/disk-vdb.overlay")" = GUEST-WROTE
# While the original runs, its plain disk is locked: clones would read a
# disk that is still changing, so they refuse.
(cd "$T" && timeout -s TERM 10 "$BANYAN" restore --snapshot "$T/store/disks" --clones 2 \
	--console "$T/busy" </dev/null >"$T/busy.out" 2>"$T/busy.err")
check "clones refuse while a VM writes their base disk: exit 2" status_is 2 "$?"
check "... saying why" contains "$T/busy.err" "is in use by a VM that writes to it"
# Through the API the same case is refused before anything is written.
"$BANYAN" ctl --api-socket "$T/api2.sock" clone "$T/store/live" --count 2 --console "$T/live" \
	--snapshot-now >/dev/null 2>"$T/live.err"
check "ctl clone --snapshot-now of a VM writing a plain disk: exit 1" status_is 1 "$?"
check "... naming the disk" contains "$T/live.err" "disk $T/plain.img is written by this running VM"
check "... and no snapshot or clone was made" test ! -e "$T/store/live" -a ! -e "$T/live.0"
kill "$vm2"
wait "$vm2" 2>/dev/null
# A plain restore never writes the overlay path the snapshot recorded: the
# operator names where the restored disk's overlay goes (--overlay-prefix).
ovl_sum=$(sha256sum <"$T/vm.overlay")
timeout 10 "$BANYAN" restore --snapshot "$T/store/disks" </dev/null >"$T/r7.out" 2>"$T/r7.err"
check "restore of a snapshot carrying an overlay, without --overlay-prefix: exit 2" status_is 2 "$?"
check "... saying what to give" contains "$T/r7.err" "--overlay-prefix PREFIX"
check "... and the recorded overlay is untouched" test "$(sha256sum <"$T/vm.overlay")" = "$ovl_sum"
timeout --preserve-status -s TERM 3 "$BANYAN" restore --snapshot "$T/store/disks" \
	--overlay-prefix "$T/rest" </dev/null >"$T/r3.out" 2>"$T/r3.err"
check "restore with an overlay disk runs (until SIGTERM)" status_is 143 "$?"
check "the restored overlay is the snapshot's (the write after the snapshot is not there)" \
	test "$(head -c 11 "$T/rest.vdb.overlay")" = GUEST-WROTE -a \
	"$(dd if="$T/rest.vdb.overlay" bs=4096 skip=16 count=1 status=none | tr -d '\0')" = ""
check "... and the recorded overlay is untouched" test "$(sha256sum <"$T/vm.overlay")" = "$ovl_sum"
# A damaged copy is refused before it could replace the overlay.
cp -a "$T/store/disks" "$T/disks-bad"
truncate -s 4096 "$T/disks-bad/disk-vdb.overlay"
rest_sum=$(sha256sum <"$T/rest.vdb.overlay")
timeout 10 "$BANYAN" restore --snapshot "$T/disks-bad" --overlay-prefix "$T/rest" </dev/null \
	>"$T/r6.out" 2>"$T/r6.err"
check "a truncated overlay copy: exit 2" status_is 2 "$?"
check "... saying so" contains "$T/r6.err" "disk vdb's overlay is 4096 bytes, the disk 1048576"
check "... and the disk's overlay is untouched" test "$(sha256sum <"$T/rest.vdb.overlay")" = "$rest_sum"

# craft SRC DST PYTHON: DST is a copy of snapshot SRC whose sections PYTHON
# rewrites (sec[name] is a section's bytes), with sizes and CRCs recomputed
# so that it passes every check: what anyone who can write a snapshot can do.
craft() {
	rm -rf "$2"
	cp -a "$1" "$2"
	python3 - "$2" "$3" <<'PY'
import json, struct, sys, zlib
d, code = sys.argv[1], sys.argv[2]
m = json.load(open(d + "/manifest.json"))
sec = {s["name"]: open(d + "/" + s["file"], "rb").read() for s in m["sections"]}
def swap(blob, old, new):  # a state string: u32 length, then its bytes
	o, n = old.encode(), new.encode()
	return blob.replace(struct.pack("<I", len(o)) + o, struct.pack("<I", len(n)) + n)
exec(code)
for s in m["sections"]:
	open(d + "/" + s["file"], "wb").write(sec[s["name"]])
	s["size"], s["crc32"] = len(sec[s["name"]]), zlib.crc32(sec[s["name"]])
json.dump(m, open(d + "/manifest.json", "w"))
PY
}
# A crafted snapshot whose configuration names a host file as the disk's
# overlay: a restore must never replace that file (it used to copy the
# snapshot's overlay over it before anything else).
printf 'PRECIOUS HOST FILE' >"$T/precious"
precious_id=$(stat -c %i "$T/precious")
craft "$T/store/disks" "$T/crafted" "sec['config'] = swap(sec['config'], '$T/vm.overlay', '$T/precious')"
timeout --preserve-status -s TERM 1 "$BANYAN" restore --snapshot "$T/crafted" </dev/null \
	>"$T/r8.out" 2>"$T/r8.err"
check "a snapshot naming a host file as an overlay: the file is untouched" \
	test "$(cat "$T/precious")" = "PRECIOUS HOST FILE" -a "$(stat -c %i "$T/precious")" = "$precious_id"
timeout --preserve-status -s TERM 1 "$BANYAN" restore --snapshot "$T/crafted" \
	--overlay-prefix "$T/crafted-run" </dev/null >"$T/r9.out" 2>"$T/r9.err"
check "... restoring it with --overlay-prefix runs (until SIGTERM)" status_is 143 "$?"
check "... and still leaves the file untouched" \
	test "$(cat "$T/precious")" = "PRECIOUS HOST FILE" -a "$(stat -c %i "$T/precious")" = "$precious_id"
# Files are written only once every check passed: a snapshot whose vCPU
# state is damaged (found after the disks were opened) replaces nothing.
craft "$T/store/disks" "$T/late-bad" "sec['vcpus'] = sec['vcpus'][:6]"
printf 'OLD' >"$T/late.vdb.overlay"
timeout 10 "$BANYAN" restore --snapshot "$T/late-bad" --overlay-prefix "$T/late" </dev/null \
	>"$T/r10.out" 2>"$T/r10.err"
check "a damaged vcpus section: exit 2" status_is 2 "$?"
check "... saying so" contains "$T/r10.err" "the vcpus section is malformed"
check "... the overlay at the prefix is untouched, and no staged copy is left" \
	test "$(cat "$T/late.vdb.overlay")" = OLD -a -z "$(ls "$T" | grep 'late.vdb.overlay.')"
# One VM per overlay: a second restore of the same snapshot is refused meanwhile.
"$BANYAN" restore --snapshot "$T/store/disks" --overlay-prefix "$T/rest" </dev/null \
	>"$T/r4.out" 2>"$T/r4.err" &
r4=$!
PIDS+=($r4)
wait_for "$T/r4.out" "count"
timeout 10 "$BANYAN" restore --snapshot "$T/store/disks" --overlay-prefix "$T/rest" </dev/null \
	>"$T/r5.out" 2>"$T/r5.err"
check "a second restore while the first runs: exit 2" status_is 2 "$?"
check "... saying its disks are in use" grep -qE "in use by another VM|another VM uses it" "$T/r5.err"
kill "$r4"
wait "$r4" 2>/dev/null
(cd "$T" && timeout --preserve-status -s TERM 2 "$BANYAN" restore --snapshot "$T/store/disks" \
	--clones 3 --console "$T/dc" </dev/null >"$T/dc.out" 2>"$T/dc.err")
check "clones of a VM with disks run (until SIGTERM)" status_is 143 "$?"
for i in 0 1 2; do
	check "clone $i: counted, with an empty overlay for the plain disk and a copy for the other" \
		test "$(first_count "$T/dc.$i")" -gt 0 -a "$(stat -c %s "$T/dc.$i.vda.overlay")" = 1048576 \
		-a "$(du -k "$T/dc.$i.vda.overlay" | cut -f1)" = 0 \
		-a "$(head -c 11 "$T/dc.$i.vdb.overlay")" = GUEST-WROTE
done
check "no VM wrote the disk images themselves" test "$(sums)" = "$sums_before"

# Clones through the API: PUT /banyan/v1/clones (banyan ctl clone
# --snapshot-now) snapshots a running VM and branches it into three clones
# run by a supervisor that is not the VMM's child; SIGTERM to the
# supervisor stops them all, and the original goes on.
alive() { local s; s=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) && [ -n "$s" ] && [ "$s" != Z ]; }
gone_within() { # gone_within SECS PID...: every PID has exited
	local secs=$1 p left
	shift
	for _ in $(seq 1 $((secs * 10))); do
		left=0
		for p in "$@"; do alive "$p" && left=1; done
		[ "$left" = 0 ] && return 0
		sleep 0.1
	done
	echo "still running: $(for p in "$@"; do alive "$p" && echo "$p"; done | xargs)"
	return 1
}
"$BANYAN" run --kernel "$GUESTS/memcount.elf" --api-socket "$T/api3.sock" </dev/null \
	>"$T/vm3.out" 2>"$T/vm3.err" &
vm3=$!
PIDS+=($vm3)
wait_for "$T/vm3.out" "count 0000000000000005"
ctl3() { "$BANYAN" ctl --api-socket "$T/api3.sock" "$@"; }
ctl3 clone "$T/store/api" --count 3 --console "$T/apiclone" --snapshot-now \
	>"$T/apiclone.out" 2>"$T/apiclone.err"
check "ctl clone --snapshot-now: exit 0" status_is 0 "$?"
sup=$(sed -n 's/^supervisor pid \([0-9]*\), log .*/\1/p' "$T/apiclone.out")
check "ctl clone prints the supervisor's pid" test -n "$sup"
check "ctl clone prints one line per clone" \
	test "$(grep -c "^clone [0-2]: console $T/apiclone\.[0-2]\$" "$T/apiclone.out")" = 3
check "the supervisor runs, detached from the VMM" \
	test -n "$sup" -a "$(awk '{print $4}' "/proc/${sup:-0}/stat" 2>/dev/null)" != "$vm3"
check "the supervisor is alive" alive "${sup:-0}"
wait_for "$T/apiclone.log" "clone 2: pid"
clones=$(sed -n 's/^clone [0-2]: pid \([0-9]*\),.*/\1/p' "$T/apiclone.log" | xargs)
PIDS+=(${sup:-} $clones)
check "the supervisor's log names three clone processes" test "$(echo $clones | wc -w)" = 3
check "the snapshot was written" test -f "$T/store/api/manifest.json"
# 30 s: under ASan on a loaded machine a clone's first line once took more than 10.
for i in 0 1 2; do
	wait_for "$T/apiclone.$i" "^count " 30
	check "API clone $i counts on from the snapshot (not from 0)" \
		test "$(first_count "$T/apiclone.$i")" -gt 5
done
check "the three API clones start from the same point" \
	test "$(first_count "$T/apiclone.0")" = "$(first_count "$T/apiclone.1")" -a \
	"$(first_count "$T/apiclone.1")" = "$(first_count "$T/apiclone.2")"
check "... and that point is where the VM was when asked" \
	test "$(first_count "$T/apiclone.0")" -le "$(last_count "$T/vm3.out")"
n1=$(last_count "$T/vm3.out")
sleep 0.5
check "the original VM still runs" test "$(last_count "$T/vm3.out")" -gt "$n1" -a -d "/proc/$vm3"
check "the API clones keep counting" \
	test "$(last_count "$T/apiclone.1")" -gt "$(first_count "$T/apiclone.1")"
[ -n "$sup" ] && kill -TERM "$sup"
check "SIGTERM to the supervisor stops every clone within 5 s" gone_within 5 ${sup:-0} $clones
check "... and the supervisor" gone_within 5 ${sup:-0}
check "... but not the original VM" alive "$vm3"
# Refusals: exit 1 with the API's reason, nothing started.
ctl3 clone "$T/store/api" --count 0 --console "$T/refused" >/dev/null 2>"$T/refused.err"
check "ctl clone --count 0: exit 1" status_is 1 "$?"
check "... saying the range" contains "$T/refused.err" "between 1 and 1024"
ctl3 clone "$T/store/api" --count 2000 --console "$T/refused" >/dev/null 2>"$T/refused.err"
check "ctl clone --count 2000: exit 1" status_is 1 "$?"
check "... saying the range" contains "$T/refused.err" "between 1 and 1024"
mkdir -p "$T/notsnap"
ctl3 clone "$T/notsnap" --count 2 --console "$T/refused" >/dev/null 2>"$T/refused.err"
check "ctl clone of a directory that is no snapshot: exit 1" status_is 1 "$?"
check "... saying why" contains "$T/refused.err" "not a snapshot"
check "nothing was started for a refused clone request" test ! -e "$T/refused.log"
if command -v curl >/dev/null; then
	curl -s --unix-socket "$T/api3.sock" -X PUT http://localhost/banyan/v1/clones \
		-d '{"snapshot_path": "'"$T"'/store/api", "count": 1, "console_prefix": "rel"}' \
		>"$T/rel.out"
	check "a relative console_prefix: 400, must be absolute" contains "$T/rel.out" "must be an absolute path"
else
	skip "a relative console_prefix: 400" "no curl"
fi
ctl3 stop >/dev/null
wait "$vm3"
check "the original VM stops normally afterwards" status_is 0 "$?"

# A snapshot on tmpfs (/dev/shm) restored, then snapshotted and migrated
# (verified: the source's hashes count those pages as zero too): none of
# it reads the pages the restored VM never touched where the file has
# holes (on tmpfs a read fault there allocates the page in the parent's
# file, which grew to the guest's whole RAM).
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	S=$(mktemp -d /dev/shm/banyan-snap.XXXXXX)
	"$BANYAN" run --kernel "$GUESTS/migrate.elf" --memory 128M --api-socket "$S/a.sock" \
		</dev/null >"$S/a.out" 2>"$S/a.err" &
	vm4=$!
	PIDS+=($vm4)
	wait_for "$S/a.out" "count 0000000000000003"
	"$BANYAN" ctl --api-socket "$S/a.sock" snapshot create "$S/A" >/dev/null
	"$BANYAN" ctl --api-socket "$S/a.sock" stop >/dev/null
	wait "$vm4"
	kib_a=$(du -k "$S/A/memory" | cut -f1)
	"$BANYAN" restore --snapshot "$S/A" --api-socket "$S/r.sock" </dev/null >"$S/r.out" 2>"$S/r.err" &
	vm4=$!
	PIDS+=($vm4)
	wait_for "$S/r.out" "^count "
	"$BANYAN" ctl --api-socket "$S/r.sock" snapshot create "$S/C" >/dev/null
	kib_c=$(du -k "$S/A/memory" | cut -f1)
	check "tmpfs: a snapshot of a restored VM leaves its parent's memory file as it was ($kib_a -> $kib_c KiB)" \
		test "$kib_c" -le $((kib_a + 64))
	"$BANYAN" run --incoming "unix:$S/m.sock" --api-socket "$S/d.sock" </dev/null >"$S/d.out" \
		2>"$S/d.err" &
	dst4=$!
	PIDS+=($dst4)
	wait_for "$S/d.err" "waiting for a migration"
	"$BANYAN" ctl --api-socket "$S/r.sock" migrate "unix:$S/m.sock" --verify=pages >"$S/m.out" 2>&1
	check "tmpfs: the restored VM migrates, verified page by page" \
		sh -c "[ $? = 0 ] && grep -q verified '$S/m.out' || { cat '$S/m.out'; exit 1; }"
	kib_m=$(du -k "$S/A/memory" | cut -f1)
	check "... without filling its snapshot's memory file ($kib_a -> $kib_m KiB)" \
		test "$kib_m" -le $((kib_a + 64))
	wait_for "$S/d.out" "^count "
	sleep 1
	check "... and the guest's memory pattern holds at the destination" \
		sh -c "grep -q '^count ' '$S/d.out' && ! grep -q 'pattern BAD' '$S/d.out'"
	"$BANYAN" restore --snapshot "$S/C" </dev/null >"$S/c.out" 2>"$S/c.err" &
	vm5=$!
	PIDS+=($vm5)
	wait_for "$S/c.out" "^count "
	sleep 1
	check "tmpfs: the snapshot of the restored VM restores, its memory pattern whole" \
		sh -c "grep -q '^count ' '$S/c.out' && ! grep -q 'pattern BAD' '$S/c.out'"
	kill "$vm5" 2>/dev/null
	"$BANYAN" ctl --api-socket "$S/d.sock" stop >/dev/null
	wait "$dst4" "$vm5" 2>/dev/null
	rm -rf "$S"
else
	skip "tmpfs: snapshots of a restored VM" "no writable /dev/shm"
fi

tap_done
