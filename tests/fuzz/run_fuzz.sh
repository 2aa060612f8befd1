#!/usr/bin/env bash
# Run a libFuzzer target briefly from its seed corpus and report in TAP.
# New inputs go to a scratch directory; the seeds in the tree stay as they are.
# Usage: run_fuzz.sh TARGET SEED_DIR [SECONDS]
set -u
target=$(realpath "$1")
seeds=$2
secs=${3:-15}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
mkdir corpus
if "$target" -max_total_time="$secs" -max_len=4096 -rss_limit_mb=1024 -print_final_stats=1 \
	corpus "$seeds" >log 2>&1; then
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' log)
	echo "ok 1 - $(basename "$target"): ${runs:-?} inputs in ${secs} s, no crash, leak or UB"
else
	echo "not ok 1 - $(basename "$target") found a failure"
	tail -n 40 log | sed 's/^/#   /'
	ls crash-* leak-* timeout-* 2>/dev/null | sed 's/^/#   reproducer: /'
fi
echo "1..1"
