#!/usr/bin/env bash
# Build the virtqueue fuzz target with clang (libFuzzer, ASan, UBSan) and run
# it briefly; prints TAP. Used by the unit suite (tests/unit/meson.build).
#
# Usage: tests/fuzz/run_virtqueue.sh OUTDIR [libFuzzer options...]
#        (default: -runs=200000, inputs up to 8 KiB; e.g. -max_total_time=600 for a longer hunt)
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: run_virtqueue.sh OUTDIR [options]}
shift
# A fixed seed unless options are given, as run_fuzz.sh says why.
[ $# -gt 0 ] || set -- -runs=200000 -seed="${FUZZ_SEED:-1}"
set -- -max_len=8192 "$@"
mkdir -p "$out/virtqueue-corpus"
# Seeds: well-formed rings (direct chains, an indirect table) to start from.
python3 - "$out/virtqueue-corpus" <<'PY'
import struct, sys
GPA, DESC = 0x10000, 0x210
def seed(name, size, flags, heads, descs, extra=()):
    mem = bytearray(0x1000)
    struct.pack_into('<HH', mem, 0, 0, len(heads))
    for i, h in enumerate(heads):
        struct.pack_into('<H', mem, 4 + 2 * i, h)
    for i, (addr, ln, fl, nxt) in enumerate(descs):
        struct.pack_into('<QIHH', mem, DESC + 16 * i, addr, ln, fl, nxt)
    for off, blob in extra:
        mem[off:off + len(blob)] = blob
    open(f'{sys.argv[1]}/seed-{name}', 'wb').write(bytes([size, flags]) + bytes(mem))
seed('direct', 4, 1, [0, 2], [(GPA + 0x800, 16, 1, 1), (GPA + 0x900, 64, 2, 0),
                              (GPA + 0xa00, 8, 0, 0)])
table = b''.join(struct.pack('<QIHH', GPA + 0xc00 + 32 * i, 32, 1 | (2 if i else 0), i + 1)
                 for i in range(3))
table = table[:-4] + struct.pack('<HH', 2, 0)
seed('indirect', 4, 2, [0], [(GPA + 0xb00, len(table), 4, 0)], [(0xb00, table)])
PY
echo "1..2"
if ! command -v clang >/dev/null; then
	echo "ok 1 - build the virtqueue fuzz target # SKIP clang is not installed"
	echo "ok 2 - fuzz descriptor chains # SKIP clang is not installed"
	exit 0
fi
if clang -std=gnu11 -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -I"$top/src" \
	"$top/tests/fuzz/fuzz_virtqueue.c" "$top/src/virtio/virtqueue.c" "$top/src/vmm/guest_mem.c" \
	-o "$out/fuzz_virtqueue" 2>"$out/fuzz_virtqueue.build.log"; then
	echo "ok 1 - build the virtqueue fuzz target"
else
	echo "not ok 1 - build the virtqueue fuzz target"
	sed 's/^/# /' "$out/fuzz_virtqueue.build.log"
	echo "not ok 2 - fuzz descriptor chains # not built"
	exit 1
fi
if "$out/fuzz_virtqueue" "$@" "$out/virtqueue-corpus" >"$out/fuzz_virtqueue.log" 2>&1; then
	echo "ok 2 - fuzz descriptor chains ($(grep -a -o 'Done [0-9]* runs' "$out/fuzz_virtqueue.log"))"
else
	echo "not ok 2 - fuzz descriptor chains"
	tail -n 40 "$out/fuzz_virtqueue.log" | sed 's/^/# /'
	exit 1
fi
