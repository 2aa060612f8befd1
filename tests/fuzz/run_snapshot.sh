#!/usr/bin/env bash
# Build the snapshot-reader fuzz target with clang (libFuzzer, ASan, UBSan)
# and run it briefly from the seeds in corpus-snapshot/ (the manifest and
# sections of a small VM's snapshot); prints TAP. Used by the unit suite
# (tests/fuzz/meson.build).
#
# Usage: tests/fuzz/run_snapshot.sh OUTDIR [libFuzzer options...]
#        (default: -max_total_time=10; e.g. -max_total_time=600 for a longer hunt)
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: run_snapshot.sh OUTDIR [options]}
shift
# A fixed seed unless options are given, as run_fuzz.sh says why.
[ $# -gt 0 ] || set -- -max_total_time=10 -seed="${FUZZ_SEED:-1}"
set -- -max_len=16384 -rss_limit_mb=1024 -print_final_stats=1 "$@"
mkdir -p "$out/snapshot-corpus"
echo "1..2"
if ! command -v clang >/dev/null; then
	echo "ok 1 - build the snapshot fuzz target # SKIP clang is not installed"
	echo "ok 2 - fuzz the snapshot readers # SKIP clang is not installed"
	exit 0
fi
src="$top/src"
if clang -std=gnu11 -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -I"$src" -I/usr/include/json-c \
	"$top/tests/fuzz/fuzz_snapshot.c" "$src/snapshot/snapshot.c" "$src/snapshot/format.c" \
	"$src/snapshot/mem_origin.c" \
	"$src/snapshot/store.c" "$src/vmm/state.c" "$src/arch/x86/snapshot.c" "$src/util/log.c" \
	"$src/util/file.c" "$src/util/ratelimit.c" "$src/util/writer.c" "$src/util/clock.c" \
	"$src/util/errmsg.c" "$src/util/thread.c" "$src/config/vmcfg.c" "$src/util/parse.c" \
	"$src/mmds/store.c" "$src/arch/x86/cpu_template.c" "$src/arch/x86/cpuid_same.c" \
	"$src/util/token_bucket.c" \
	-ljson-c -lz -lpthread -o "$out/fuzz_snapshot" 2>"$out/fuzz_snapshot.build.log"; then
	echo "ok 1 - build the snapshot fuzz target"
else
	echo "not ok 1 - build the snapshot fuzz target"
	sed 's/^/# /' "$out/fuzz_snapshot.build.log"
	echo "not ok 2 - fuzz the snapshot readers # not built"
	exit 1
fi
cd "$out" || exit 1
rm -f crash-* leak-* timeout-*
if ./fuzz_snapshot "$@" snapshot-corpus "$top/tests/fuzz/corpus-snapshot" >fuzz_snapshot.log 2>&1; then
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' fuzz_snapshot.log)
	echo "ok 2 - fuzz the snapshot readers (${runs:-?} inputs, no crash, leak or UB)"
else
	echo "not ok 2 - fuzz the snapshot readers"
	tail -n 40 fuzz_snapshot.log | sed 's/^/# /'
	ls crash-* leak-* timeout-* 2>/dev/null | sed 's/^/# reproducer: /'
	exit 1
fi
