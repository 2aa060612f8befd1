#!/usr/bin/env bash
# Style check: every C file follows .clang-format. One TAP line per file.
set -u
. "$(dirname "$0")/../lib/tap.sh"
cd "$(dirname "$0")/../.."
if ! command -v clang-format >/dev/null; then
	skip "clang-format" "clang-format is not installed"
	tap_done
	exit
fi
while IFS= read -r f; do
	check "clang-format: $f" clang-format --dry-run --Werror "$f"
done < <(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 2>/dev/null ||
	find src tests -name '*.[ch]')
tap_done
