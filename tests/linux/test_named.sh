#!/usr/bin/env bash
# Linux layer, named VMs (docs/operations.md): a Debian guest started with
# --name --detach, listed by banyan ls, its interactive shell reached with
# banyan console in a real terminal (tmux): a command typed there runs in
# the guest and its output comes back; Ctrl-A d detaches and the VM runs
# on; banyan stop NAME ends it through Ctrl-Alt-Del.
#
# time-limit: 540 (seconds for one run, emulated host included: tests/linux/run)
set -u
. "$(dirname "$0")/lib.sh"
linux_prereqs

# Sockets need a tmpfs (the emulated host's /tmp is a 9p share): /run is one.
export BANYAN_RUNTIME_DIR=/run/banyan-test-named-$$
RT=$BANYAN_RUNTIME_DIR
TMUX_SOCK=banyan-linux-named-$$
cleanup() {
	tmux -L "$TMUX_SOCK" kill-server 2>/dev/null
	[ -s "$RT/lx/pid" ] && kill -KILL "$(cat "$RT/lx/pid")" 2>/dev/null
	rm -rf "$RT" "$T"
}
trap cleanup EXIT

b() { timeout -s KILL 120 "$BANYAN" "$@"; }
pane() { tmux -L "$TMUX_SOCK" capture-pane -p -J -S -2000 | tr -d '\r'; }
# pane_wait TEXT SECS: the terminal shows TEXT
pane_wait() {
	local end=$(($(date +%s) + $2))
	while [ "$(date +%s)" -lt "$end" ]; do
		pane | grep -qF -- "$1" && return 0
		sleep 0.5
	done
	echo "'$1' never appeared in the terminal:"
	pane | tail -n 20
	return 1
}

if ! command -v tmux >/dev/null; then
	echo "Bail out! no tmux (tools/setup installs it)"
	exit 1
fi

# No command after " -- ": the init runs an interactive shell on the console.
b run --name lx --detach --kernel "$KERNEL" --initrd "$INITRD" --memory 256M \
	--cmdline "console=ttyS0 quiet" 2>"$T/run.err"
check "run --name lx --detach: status 0" status_is 0 "$?"
check "ls: lx running with 256 MiB" sh -c "'$BANYAN' ls | grep -Eq '^lx +running +1 +256M'"

tmux -L "$TMUX_SOCK" new-session -d -x 120 -y 40 \
	"'$BANYAN' console lx; echo EXIT=\$?; sleep 300"
check "console: the guest's boot reached the terminal" pane_wait "@@BANYAN-INIT@@" 240
# The shell may still be starting: the tty keeps what is typed until it reads.
sleep 2
tmux -L "$TMUX_SOCK" send-keys 'echo $((6*7))-named-$(uname -s)' Enter
check "console: a command typed runs in the guest, its output comes back" \
	pane_wait "42-named-Linux" 120
tmux -L "$TMUX_SOCK" send-keys C-a d
check "console: Ctrl-A d detaches (status 0)" pane_wait "EXIT=0" 20
check "...and the VM runs on" sh -c "'$BANYAN' ls -q | grep -qx lx"
check "logs: the command's output is in vm.log" sh -c "'$BANYAN' logs lx | grep -q 42-named-Linux"

b stop lx --timeout 60 >"$T/stop.out" 2>&1
check "stop lx: status 0" status_is 0 "$?"
check "...through Ctrl-Alt-Del (the guest went down itself)" contains "$T/stop.out" "the guest"
check "...the name is free" test ! -e "$RT/lx/pid" -a "$(b ls -q | wc -l)" = 0

tap_done
