#!/usr/bin/env bash
# The package layer: build the Debian package from the tree, install it
# (dpkg -i, apt-get -f install for its dependencies) and run a VM the way
# systemd would: the installed unit's ExecStart with %i substituted and
# NOTIFY_SOCKET on a socket this script listens on (READY=1 must arrive and
# the guest's serial output appear), then its ExecStop: the graceful path
# (a guest that powers off on Ctrl-Alt-Del) and the hard stop after the
# timeout (a guest that ignores it). systemd itself need not run here.
# Ends by purging the package (dpkg -P) and checking that the machine is as
# the script found it: no binary, unit, man page, completion or /etc/banyan
# left (when /etc/banyan was not there before). BANYAN_KEEP_PACKAGE=1 keeps
# it installed; a banyan package installed before the script is upgraded and
# kept, not purged.
#
# Usage: tests/package/test_package.sh [BUILD_DIR]   (TAP on stdout)
set -u
. "$(dirname "$0")/../lib/tap.sh"
cd "$(dirname "$0")/../.."
top=$(pwd)
guests=$top/${1:-build}/tests/kvm
unit=/lib/systemd/system/banyan@.service
tmp=$(mktemp -d /run/banyan-pkgtest.XXXXXX) # sockets need a tmpfs, not 9p
names=()
# What was there before: the purge must leave exactly that.
dpkg-query -W -f='${Status}' banyan 2>/dev/null | grep -q 'install ok installed' && had_pkg=1
[ -e /etc/banyan ] && had_etc=1
[ -e /run/banyan ] && had_run=1
# The files the test made, then the VMMs it started.
forget_vms() {
	local n
	for n in "${names[@]}"; do
		rm -rf "/etc/banyan/$n.json" "/run/banyan/$n"
	done
	[ -n "${had_run:-}" ] || rmdir /run/banyan 2>/dev/null
	jobs -p | xargs -r kill 2>/dev/null
}
# Purge unless the package is to be kept (or was installed before the test).
purge() {
	[ "${BANYAN_KEEP_PACKAGE:-0}" != 1 ] && [ -n "${installed:-}" ] && [ -z "${had_pkg:-}" ]
}
cleanup() {
	forget_vms
	rm -rf "$tmp"
	purge && dpkg -P banyan >/dev/null 2>&1
}
trap cleanup EXIT

deb=$(tools/build-deb "$tmp/deb" 2>"$tmp/build.err" | tail -n 1)
if [ ! -f "$deb" ]; then
	tap_fail "package builds and is lintian clean" "$(tail -n 30 "$tmp/build.err")"
	tap_done
	exit
fi
tap_ok "package builds and is lintian clean ($(basename "$deb"))"

install_deb() {
	dpkg -i "$deb" >/dev/null 2>&1 ||
		DEBIAN_FRONTEND=noninteractive apt-get -f install -y -q >/dev/null 2>&1
	dpkg-query -W -f='${Status}' banyan | grep -q 'install ok installed'
}
check "package installs" install_deb && installed=1
for f in /usr/bin/banyan /usr/bin/firecracker "$unit" /etc/banyan/README \
	/usr/share/man/man1/banyan-run.1.gz /usr/share/bash-completion/completions/banyan \
	/usr/share/zsh/vendor-completions/_banyan; do
	check "installed: $f" test -e "$f"
done
check "installed binary runs" /usr/bin/banyan version

# unit_cmd KEY NAME TIMEOUT: the unit's KEY= command line for instance NAME,
# as systemd would expand it (%i, and ${BANYAN_STOP_TIMEOUT}).
unit_cmd() {
	sed -n "s/^$1=//p" "$unit" | sed -e "s/%i/$2/g" -e "s/\${BANYAN_STOP_TIMEOUT}/$3/g"
}

# start NAME GUEST: /etc/banyan/NAME.json, then ExecStart under a notify listener.
start() {
	local name=$1 guest=$2
	names+=("$name")
	printf '{"boot-source":{"kernel_image_path":"%s"},"machine-config":{"vcpu_count":1,"mem_size_mib":64}}\n' \
		"$guests/$guest" >"/etc/banyan/$name.json"
	mkdir -p -m 0700 "/run/banyan/$name" # RuntimeDirectory=
	python3 tests/package/notify_listen.py "banyan-pkgtest-$name" 20 \
		>"$tmp/$name.notify" 2>&1 </dev/null &
	wait_for "$tmp/$name.notify" listening || return 1
	# shellcheck disable=SC2046 # the unit's words, as systemd splits them
	NOTIFY_SOCKET=@banyan-pkgtest-$name $(unit_cmd ExecStart "$name" 0) \
		</dev/null >"$tmp/$name.out" 2>"$tmp/$name.err" &
	echo $! >"$tmp/$name.pid"
}

# step NAME COMMAND...: check, but in this shell, so that the VMMs it starts
# are this shell's children (stop waits for them).
step() {
	local name=$1
	shift
	if "$@" >"$tmp/step.out" 2>&1; then
		tap_ok "$name"
	else
		tap_fail "$name" "command: $*" "$(cat "$tmp/step.out")"
	fi
}

# wait_for FILE TEXT: up to 20 s.
wait_for() {
	for _ in $(seq 200); do
		grep -qF -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "'$2' not in $1:"
	cat "$1" "${1%.*}.err" 2>/dev/null | tail -n 20
	return 1
}

# stop NAME TIMEOUT: ExecStop, then the VMM must have exited with status 0.
stop() {
	local name=$1 pid status
	pid=$(cat "$tmp/$name.pid")
	# shellcheck disable=SC2046
	$(unit_cmd ExecStop "$name" "$2") >>"$tmp/$name.stop" 2>&1 || {
		echo "ExecStop failed:"
		cat "$tmp/$name.stop"
		return 1
	}
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	wait "$pid"
	status=$?
	[ "$status" -eq 0 ] || { echo "banyan exited $status"; cat "$tmp/$name.err"; return 1; }
}

step "unit: ExecStart starts the cad guest" start pkg-cad cad.elf
check "unit: READY=1 reaches NOTIFY_SOCKET" wait_for "$tmp/pkg-cad.notify" READY=1
check "unit: the guest's serial output appears" \
	wait_for "$tmp/pkg-cad.out" "cad guest: waiting for ctrl-alt-del"
check "unit: the API socket is in /run/banyan/NAME" test -S /run/banyan/pkg-cad/api.sock
step "unit: ExecStop shuts the guest down gracefully" stop pkg-cad 20
check "unit: the guest saw Ctrl-Alt-Del" contains "$tmp/pkg-cad.out" "powering off"
check "unit: no hard stop was needed" \
	bash -c "! grep -q 'stopping it' '$tmp/pkg-cad.stop'"

step "unit: ExecStart starts a guest that ignores Ctrl-Alt-Del" start pkg-tick counter.elf
check "unit: READY=1 (second instance)" wait_for "$tmp/pkg-tick.notify" READY=1
check "unit: its serial output appears" wait_for "$tmp/pkg-tick.out" "tick"
step "unit: ExecStop stops it hard after the timeout" stop pkg-tick 1
check "unit: ExecStop said it stopped it hard" contains "$tmp/pkg-tick.stop" "stopping it"

# gone PATH...: none of them exists.
gone() {
	local f left=()
	for f in "$@"; do
		[ -e "$f" ] || [ -L "$f" ] && left+=("$f")
	done
	[ ${#left[@]} -eq 0 ] || { echo "still there: ${left[*]}"; return 1; }
}
# not_installed: dpkg knows nothing of banyan any more (purged, not "config-files").
not_installed() {
	local st
	st=$(dpkg-query -W -f='${db:Status-Abbrev}' banyan 2>/dev/null)
	[ -z "$st" ] || [ "$st" = "un " ] || { echo "dpkg status '$st'"; return 1; }
}

forget_vms
if ! purge; then
	skip "dpkg -P banyan" "BANYAN_KEEP_PACKAGE=1, or banyan was installed before the test"
	tap_done
	exit
fi
check "dpkg -P banyan" dpkg -P banyan
installed=
check "purged: dpkg lists no banyan (no config-files left)" not_installed
check "purged: binaries, unit, man pages and completion gone" gone /usr/bin/banyan \
	/usr/bin/firecracker "$unit" /usr/share/man/man1/banyan-run.1.gz \
	/usr/share/bash-completion/completions/banyan /usr/share/zsh/vendor-completions/_banyan \
	/usr/share/doc/banyan
check "purged: the unit is in no systemd directory" \
	bash -c "! find /etc/systemd /lib/systemd /usr/lib/systemd /var/lib/systemd -name 'banyan@*' 2>/dev/null | grep -q ."
if [ -n "${had_etc:-}" ]; then
	check "purged: /etc/banyan README removed (the directory was there before)" gone /etc/banyan/README
else
	check "purged: /etc/banyan removed" gone /etc/banyan
fi
if [ -n "${had_run:-}" ]; then
	skip "purged: /run/banyan removed" "it was there before the test"
else
	check "purged: /run/banyan removed" gone /run/banyan
fi
tap_done
