# Helpers for the Linux guest tests (sourced). A test boots the rig's
# Debian cloud kernel with the rig's initramfs (docs/testing.md) and reads
# the command's output between the init's markers on the serial console.
#
#   . tests/linux/lib.sh
#   guest_boot NAME [banyan run options...] -- 'shell command in the guest'
#   guest_output NAME      # the command's output (CR stripped)
#   guest_rc NAME          # the command's exit status inside the guest
#   vmm_rc NAME            # banyan's own exit status
. "$(dirname "${BASH_SOURCE[0]}")/../lib/tap.sh"

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BANYAN=${BANYAN:-$TOP/build/banyan}
GUEST_DIR=${BANYAN_GUEST_DIR:-$HOME/.cache/banyan/guest}
KERNEL=${KERNEL:-$GUEST_DIR/bzImage}
INITRD=$GUEST_DIR/initramfs.cpio.gz
GUEST_TIMEOUT=${GUEST_TIMEOUT:-400}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# The rig must be complete: a missing asset is a failure, never a skip.
linux_prereqs() {
	local f
	for f in "$BANYAN" "$GUEST_DIR/bzImage" "$GUEST_DIR/vmlinux" "$INITRD"; do
		if [ ! -e "$f" ]; then
			echo "Bail out! missing $f (build with meson and tools/guest-image)"
			exit 1
		fi
	done
	if [ ! -w /dev/kvm ]; then
		echo "Bail out! no usable /dev/kvm"
		exit 1
	fi
}

# guest_boot NAME [options...] -- COMMAND
# Options go to `banyan run`; --kernel defaults to $KERNEL and --initrd to
# the rig's initramfs. Extra kernel parameters: BOOT_ARGS="...".
guest_boot() {
	local name=$1
	shift
	local opts=() cmd
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do
		opts+=("$1")
		shift
	done
	shift
	cmd=$*
	case " ${opts[*]} " in *" --kernel "*) ;; *) opts+=(--kernel "$KERNEL") ;; esac
	case " ${opts[*]} " in *" --initrd "*) ;; *) opts+=(--initrd "$INITRD") ;; esac
	timeout -s KILL "$GUEST_TIMEOUT" "$BANYAN" run "${opts[@]}" \
		--cmdline "console=ttyS0 quiet ${BOOT_ARGS:-} -- $cmd" \
		<"${GUEST_STDIN:-/dev/null}" >"$T/$name.out" 2>"$T/$name.err"
	echo $? >"$T/$name.rc"
	tr -d '\r' <"$T/$name.out" >"$T/$name.console"
}

guest_output() {
	sed -n '/^@@BANYAN-BEGIN@@$/,/^@@BANYAN-END rc=/p' "$T/$1.console" | sed '1d;$d'
}

guest_rc() {
	sed -n 's/^@@BANYAN-END rc=\([0-9]*\)@@$/\1/p' "$T/$1.console" | tail -n 1
}

vmm_rc() {
	cat "$T/$1.rc"
}

# guest_value NAME KEY: the value of a "KEY=value" line the command printed
guest_value() {
	guest_output "$1" | sed -n "s/^$2=//p" | tail -n 1
}

# Show what happened when a boot went wrong.
guest_log() {
	echo "--- console (last lines) ---"
	tail -n 25 "$T/$1.console"
	echo "--- banyan stderr ---"
	tail -n 10 "$T/$1.err"
}

# check_guest NAME: the boot ran the command to completion and powered off
check_guest_ran() {
	local name=$1
	if [ "$(vmm_rc "$name")" = 0 ] && [ "$(guest_rc "$name")" = 0 ]; then
		tap_ok "$name: guest ran the command and powered off (exit 0)"
	else
		tap_fail "$name: guest ran the command and powered off (exit 0)" \
			"banyan exit $(vmm_rc "$name"), guest command rc '$(guest_rc "$name")'" \
			"$(guest_log "$name")"
	fi
}

# within A B TOLERANCE: |A - B| <= TOLERANCE (integers)
within() {
	local d=$(($1 - $2))
	[ ${d#-} -le "$3" ] || { echo "$1 and $2 differ by more than $3"; return 1; }
}

# wait_bounded SECS PID...: wait for host-side helpers, killing any still
# running after SECS seconds, so a transfer that never ends fails its check
# instead of hanging the suite.
wait_bounded() {
	local secs=$1 pid
	shift
	for _ in $(seq 1 $((secs * 2))); do
		for pid in "$@"; do
			kill -0 "$pid" 2>/dev/null && break
		done
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	kill "$@" 2>/dev/null
	wait "$@" 2>/dev/null
}

# vsock_tools_disk: $T/tools.ext4 holding the guest's vsock-tool (built by
# meson), HOST_PY the host side's helper, and SLOW the factor for waits
# (4 in the emulated host).
vsock_tools_disk() {
	SLOW=${BANYAN_EMULATED_HOST:+4}
	SLOW=${SLOW:-1}
	VSOCK_TOOL=${VSOCK_TOOL:-$(dirname "$BANYAN")/tests/linux/vsock-tool}
	HOST_PY=$TOP/tests/linux/vsock_host.py
	[ -x "$VSOCK_TOOL" ] || { echo "Bail out! missing $VSOCK_TOOL (built by meson)"; exit 1; }
	mkdir -p "$T/tools"
	cp "$VSOCK_TOOL" "$T/tools/vsock-tool"
	mke2fs -q -t ext4 -d "$T/tools" "$T/tools.ext4" 8M >/dev/null
}

# netns_up NAME: the test's own network namespace (lo up), removed at exit
# with $T. in_ns runs a command there, and BANYAN becomes a wrapper that runs
# banyan there, so the VM's TAPs and every peer stay inside it.
netns_up() {
	NS=$1
	trap 'ip netns del "$NS" 2>/dev/null; rm -rf "$T"' EXIT
	ip netns add "$NS" || { echo "Bail out! cannot create a network namespace"; exit 1; }
	in_ns ip link set lo up
	printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$NS" "$BANYAN" >"$T/banyan-ns"
	chmod +x "$T/banyan-ns"
	BANYAN=$T/banyan-ns
}

in_ns() {
	ip netns exec "$NS" "$@"
}
