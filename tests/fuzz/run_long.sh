#!/usr/bin/env bash
# A long fuzzing run of one device target, outside the test suite, niced.
# The corpus grows in BUILD/fuzz-corpus/NAME (kept between runs; the seeds in
# the tree are only read); crashes land there too. Prints libFuzzer's final
# statistics (tests/fuzz/coverage.sh then reports line coverage).
#
# Usage: tests/fuzz/run_long.sh BUILD NAME [SECONDS] [libFuzzer options...]
#   NAME: virtio_blk virtio_net virtio_vsock vsock_handshake virtio_mmio legacy loader config
#   e.g.  tests/fuzz/run_long.sh build virtio_blk 600
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(realpath "${1:?usage: run_long.sh BUILD NAME [SECONDS] [options]}")
name=${2:?usage: run_long.sh BUILD NAME [SECONDS] [options]}
secs=${3:-600}
shift 3 2>/dev/null || shift $#
target=$build/tests/fuzz/fuzz_$name
[ -x "$target" ] || { echo "no $target: build it first (ninja -C $build)" >&2; exit 2; }
work=$build/fuzz-corpus/$name
mkdir -p "$work/corpus" "$work/artifacts"
cd "$work" || exit 1
nice -n 10 "$target" -max_total_time="$secs" -max_len=16384 -rss_limit_mb=2048 \
	-timeout=10 -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$@" \
	corpus "$top/tests/fuzz/corpus/$name" >log 2>&1
status=$?
grep -a -E '^#[0-9]+[[:space:]]+(INITED|DONE)' log | sed 's/^/  /'
grep -a -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' log | sed 's/^/  /'
echo "  corpus: $(ls corpus | wc -l) inputs; artifacts: $(ls artifacts | wc -l)"
[ $status -eq 0 ] || tail -n 60 log
exit $status
