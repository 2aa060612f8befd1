#!/usr/bin/env bash
# A long fuzzing run of one device target, outside the test suite, niced.
# The corpus grows in BUILD/fuzz-corpus/NAME (kept between runs; the seeds in
# the tree are only read); crashes land there too. Prints libFuzzer's final
# statistics (tests/fuzz/coverage.sh then reports line coverage).
#
# Usage: tests/fuzz/run_long.sh BUILD NAME [SECONDS|SECONDScpu] [libFuzzer options...]
#   NAME: any BUILD/tests/fuzz/fuzz_NAME (virtio_blk virtio_net virtio_vsock
#         vsock_handshake virtio_mmio virtio_balloon legacy loader config
#         multiboot mmds migration api), or virtqueue (built by the suite)
#   SECONDS: wall time. SECONDScpu (say 3600cpu): the fuzzer's own CPU time,
#         so that on a machine shared with other work every target gets the
#         same amount of fuzzing whatever its share of a core (then stopped
#         with SIGINT, which makes libFuzzer print its final statistics).
#   e.g.  tests/fuzz/run_long.sh build virtio_blk 600
#         tests/fuzz/run_long.sh build virtio_mmio 3600cpu
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(realpath "${1:?usage: run_long.sh BUILD NAME [SECONDS] [options]}")
name=${2:?usage: run_long.sh BUILD NAME [SECONDS] [options]}
secs=${3:-600}
shift 3 2>/dev/null || shift $#
cpu=0
case "$secs" in *cpu) cpu=${secs%cpu}; secs=$((cpu * 50)) ;; esac
target=$build/tests/fuzz/fuzz_$name
# fuzz_virtqueue is built by the unit suite's script (run_virtqueue.sh), with its generated seeds.
[ "$name" = virtqueue ] && target=$build/tests/unit/fuzz/fuzz_virtqueue
[ -x "$target" ] || { echo "no $target: build it first (ninja -C $build; meson test for virtqueue)" >&2; exit 2; }
work=$build/fuzz-corpus/$name
mkdir -p "$work/corpus" "$work/artifacts"
seeds=$top/tests/fuzz/corpus/$name
[ "$name" = api ] && seeds=$top/tests/fuzz/corpus # the API's seeds are the routes' folders
[ "$name" = virtqueue ] && seeds=$build/tests/unit/fuzz/virtqueue-corpus
cd "$work" || exit 1
# -rss_limit_mb=4096: AddressSanitizer keeps about 2 KiB for every thread a
# process ever started, and the device targets start one per input, so an
# hour of a fast target passes 2 GiB without any leak (docs/security.md).
nice -n "${FUZZ_NICE:-10}" "$target" -max_total_time="$secs" -max_len=16384 -rss_limit_mb=4096 \
	-timeout=10 -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$@" \
	corpus "$seeds" >log 2>&1 &
pid=$!
# The fuzzer's CPU seconds (utime + stime, in clock ticks) from /proc.
cpu_used() { awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) / hz) }' "/proc/$1/stat" 2>/dev/null || echo 0; }
if [ "$cpu" -gt 0 ]; then
	while kill -0 "$pid" 2>/dev/null && [ "$(cpu_used "$pid")" -lt "$cpu" ]; do
		sleep 5
	done
	kill -INT "$pid" 2>/dev/null
fi
wait "$pid"
status=$?
# Stopped by us once its CPU time was used: libFuzzer exits 72 on SIGINT.
[ "$cpu" -gt 0 ] && [ $status -eq 72 ] && status=0
grep -a -E '^#[0-9]+[[:space:]]+(INITED|DONE)' log | sed 's/^/  /'
grep -a -E '^#[0-9]+[[:space:]].*cov:' log | tail -n 1 | sed 's/^/  last: /'
grep -a -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' log | sed 's/^/  /'
echo "  corpus: $(ls corpus | wc -l) inputs; artifacts: $(ls artifacts | wc -l)"
[ $status -eq 0 ] || tail -n 60 log
exit $status
