#!/usr/bin/env bash
# Line and region coverage of the project's sources by a fuzz target's
# corpus (after tests/fuzz/run_long.sh), with clang's source-based coverage:
# the target is rebuilt from its own build command with profiling instead of
# the sanitizers, replayed over the corpus, and llvm-cov reports per file.
#
# Usage: tests/fuzz/coverage.sh BUILD NAME [CORPUS_DIR]
#   (CORPUS_DIR defaults to BUILD/fuzz-corpus/NAME/corpus)
set -eu
build=$(realpath "${1:?usage: coverage.sh BUILD NAME [CORPUS_DIR]}")
name=${2:?usage: coverage.sh BUILD NAME [CORPUS_DIR]}
corpus=$(realpath "${3:-$build/fuzz-corpus/$name/corpus}")
out=$build/fuzz-coverage/$name
mkdir -p "$out"
for tool in llvm-cov llvm-profdata; do
	command -v $tool >/dev/null || { echo "$tool is not installed" >&2; exit 2; }
done
cmd=$(ninja -C "$build" -t commands "tests/fuzz/fuzz_$name" | tail -n 1)
cmd=${cmd//-fsanitize=fuzzer,address,undefined/-fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping}
cmd=${cmd//-fno-sanitize-recover=undefined/}
cmd=${cmd//-o tests\/fuzz\/fuzz_$name/-o $out\/fuzz_$name}
(cd "$build" && eval "$cmd")
rm -f "$out"/*.profraw
# One process for the whole corpus; a scratch directory keeps the corpus as it is.
mkdir -p "$out/scratch"
(cd "$out" && LLVM_PROFILE_FILE="$out/%p.profraw" "./fuzz_$name" -runs=0 scratch "$corpus" \
	>"$out/replay.log" 2>&1) || { tail -n 20 "$out/replay.log"; exit 1; }
llvm-profdata merge -sparse "$out"/*.profraw -o "$out/merged.profdata"
llvm-cov report "$out/fuzz_$name" -instr-profile="$out/merged.profdata" |
	awk 'NR <= 2 || /^(\.\.\/)?src\// || /\/src\//' | sed "s|$(cd "$(dirname "$0")/../.." && pwd)/||"
