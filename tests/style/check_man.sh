#!/usr/bin/env bash
# The man pages (docs/man/*.scd) cannot drift from the binary: every verb
# that `banyan --help` lists has banyan-VERB(1) and a line in banyan(1),
# and every long option a verb's --help prints appears in its page; the
# same for the firecracker name. The completion scripts read verbs and
# options from --help at completion time; they are checked for syntax.
#
# Usage: check_man.sh BANYAN FIRECRACKER
set -u
. "$(dirname "$0")/../lib/tap.sh"
banyan=$1
firecracker=$2
man=$(cd "$(dirname "$0")/../../docs/man" && pwd)
dist=$(cd "$(dirname "$0")/../../dist" && pwd)

# verbs: the words under "commands:" in banyan --help.
verbs() {
	"$banyan" --help | sed -n '/^commands:/,/^Run/p' | awk '/^  [a-z]/ {print $1}'
}

# options_missing HELP_CMD... -- PAGE: every --option of the help text is in PAGE.
options_missing() {
	local page=${!#} opt missing=
	set -- "${@:1:$#-1}"
	for opt in $("$@" 2>&1 | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
		grep -qF -- "$opt" "$page" || missing="$missing $opt"
	done
	[ -z "$missing" ] || { echo "not in $(basename "$page"):$missing"; return 1; }
}

n=$(verbs | wc -l)
check "banyan --help lists verbs ($n)" test "$n" -ge 5
for v in $(verbs); do
	check "banyan(1) describes $v" grep -q "^\*$v\*" "$man/banyan.1.scd"
	case "$v" in version | help) continue ;; esac
	page=$man/banyan-$v.1.scd
	check "banyan-$v(1) exists" test -f "$page"
	[ -f "$page" ] && check "banyan-$v(1) has every option of banyan $v --help" \
		options_missing "$banyan" "$v" --help "$page"
done
check "banyan-firecracker(1) has every option of firecracker --help" \
	options_missing "$firecracker" --help "$man/banyan-firecracker.1.scd"
check "bash completion parses" bash -n "$dist/completion/banyan.bash"
if command -v zsh >/dev/null; then
	check "zsh completion parses" zsh -n "$dist/completion/_banyan"
else
	skip "zsh completion parses" "zsh is not installed"
fi
tap_done
