# TAP helpers for the shell test scripts: each check prints one
# "ok N - name" / "not ok N - name" / "ok N - name # SKIP why" line, and the
# plan comes last. meson (protocol: tap) and tests/run count these lines.
#
#   . tests/lib/tap.sh
#   check "name" command args...     # ok when the command exits 0
#   skip "name" "why"
#   tap_done                          # prints the plan, exits non-zero on failure

TAP_N=0
TAP_FAILED=0

tap_ok() {
	TAP_N=$((TAP_N + 1))
	echo "ok $TAP_N - $1"
}

tap_fail() {
	TAP_N=$((TAP_N + 1))
	TAP_FAILED=$((TAP_FAILED + 1))
	echo "not ok $TAP_N - $1"
	shift
	for line in "$@"; do
		printf '%s\n' "$line" | sed 's/^/#   /'
	done
}

check() {
	local name=$1
	shift
	local out
	if out=$("$@" 2>&1); then
		tap_ok "$name"
	else
		tap_fail "$name" "command: $*" "$out"
	fi
}

skip() {
	TAP_N=$((TAP_N + 1))
	echo "ok $TAP_N - $1 # SKIP $2"
}

tap_done() {
	echo "1..$TAP_N"
	[ "$TAP_FAILED" -eq 0 ]
}

# contains FILE TEXT: the file has the text (fixed string)
contains() {
	grep -qF -- "$2" "$1" || { echo "'$2' not found in:"; tail -n 30 "$1"; return 1; }
}

# status_is EXPECTED ACTUAL
status_is() {
	[ "$1" = "$2" ] || { echo "exit status $2, expected $1"; return 1; }
}
