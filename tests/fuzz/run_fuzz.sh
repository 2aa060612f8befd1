#!/usr/bin/env bash
# Run a libFuzzer target briefly from its seed corpus and report in TAP.
# New inputs go to a scratch directory; the seeds in the tree stay as they are.
# The random seed is fixed (FUZZ_SEED, default 1): the suite checks for
# regressions along a path that passed, so a fresh finding cannot fail a
# build that changed nothing; the hunt for new ones is the long runs'
# (run_long.sh). FUZZ_SEED=0 asks libFuzzer for a random one.
# Usage: run_fuzz.sh TARGET SEED_DIR [SECONDS]
set -u
target=$(realpath "$1")
seeds=$2
secs=${3:-15}
seed=${FUZZ_SEED:-1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
mkdir corpus
if "$target" -seed="$seed" -max_total_time="$secs" -max_len=4096 -rss_limit_mb=1024 -print_final_stats=1 \
	corpus "$seeds" >log 2>&1; then
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' log)
	echo "ok 1 - $(basename "$target"): ${runs:-?} inputs in ${secs} s (seed $seed), no crash, leak or UB"
else
	echo "not ok 1 - $(basename "$target") found a failure"
	tail -n 40 log | sed 's/^/#   /'
	ls crash-* leak-* timeout-* 2>/dev/null | sed 's/^/#   reproducer: /'
fi
echo "1..1"
