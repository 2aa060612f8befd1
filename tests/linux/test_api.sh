#!/usr/bin/env bash
# Linux layer, the control plane: a Debian guest configured and booted
# entirely over the API socket; pause stops it making progress and resume
# lets it continue; GET /vm/config fed back with --config boots an equal VM;
# SendCtrlAltDel reaches the guest's keyboard (docs/api.md: with the
# kernel.ctrl-alt-del sysctl at 1, the kernel's default, the guest reboots
# at once and banyan exits as on a reboot; at 0, as systemd and busybox init
# set it, the kernel signals init instead and nothing reboots).
#
# time-limit: 600 (seconds for one run, emulated host included: tests/linux/run)
set -u
. "$(dirname "$0")/lib.sh"
linux_prereqs

# api SOCK METHOD PATH [BODY]: prints "HTTP_STATUS BODY"
api() {
	local sock=$1 method=$2 path=$3 body=${4:-}
	curl -s --max-time 60 --unix-socket "$sock" -X "$method" -H 'Content-Type: application/json' \
		${body:+--data "$body"} -w ' %{http_code}' "http://localhost$path"
}
api_ok() { # api_ok SOCK METHOD PATH [BODY]: the status is 2xx
	local out
	out=$(api "$@")
	case "${out##* }" in 2??) return 0 ;; esac
	echo "$2 $3 -> $out"
	return 1
}

# vmm_start NAME [banyan run options...]: in the background, console in $T/NAME.out
vmm_start() {
	local name=$1
	shift
	rm -f "$T/$name.sock"
	timeout -s KILL "$GUEST_TIMEOUT" "$BANYAN" run --api-socket "$T/$name.sock" "$@" \
		</dev/null >"$T/$name.out" 2>"$T/$name.err" &
	echo $! >"$T/$name.pid"
	for _ in $(seq 1 100); do
		[ -S "$T/$name.sock" ] && return 0
		sleep 0.1
	done
	return 1
}

vmm_wait() { # vmm_wait NAME: banyan's exit status into $T/NAME.rc
	wait "$(cat "$T/$1.pid")"
	echo $? >"$T/$1.rc"
	tr -d '\r' <"$T/$1.out" >"$T/$1.console"
}

console() { tr -d '\r' <"$T/$1.out"; }

# says TEXT COMMAND...: the command's output contains TEXT
says() {
	local text=$1 out
	shift
	out=$("$@" 2>&1)
	grep -qF -- "$text" <<<"$out" || { echo "'$text' not in: $out" | tail -n 20; return 1; }
}

# wait_text NAME TEXT [SECS]: the console shows TEXT
wait_text() {
	local end=$(($(date +%s) + ${3:-300}))
	while [ "$(date +%s)" -lt "$end" ]; do
		console "$1" | grep -qF -- "$2" && return 0
		sleep 0.2
	done
	echo "'$2' never appeared on the console"
	console "$1" | tail -n 20
	tail -n 5 "$T/$1.err"
	return 1
}

ticks() { console "$1" | grep -c '^tick='; }

# The guest prints a counter every 0.2 s of its own time until stopped.
COUNTER='i=0; while true; do echo tick=$i; i=$((i+1)); sleep 0.2; done'

# 1. Configure and boot entirely over the API.
vmm_start api
sock=$T/api.sock
check "api: PUT /machine-config" api_ok "$sock" PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 512}'
check "api: PUT /boot-source" api_ok "$sock" PUT /boot-source \
	"{\"kernel_image_path\": \"$KERNEL\", \"initrd_path\": \"$INITRD\",
	  \"boot_args\": \"console=ttyS0 quiet -- $COUNTER\"}"
check "api: InstanceStart" api_ok "$sock" PUT /actions '{"action_type": "InstanceStart"}'
check "api: the guest runs the counter" wait_text api "tick=5"
check "api: GET / says Running" says '"state":"Running"' api "$sock" GET /

# 2. Pause: no progress for 3 s. Resume: it counts on.
check "api: pause" api_ok "$sock" PATCH /vm '{"state": "Paused"}'
before=$(ticks api)
sleep 3
after=$(ticks api)
check "api: no ticks while paused ($before -> $after)" test "$before" = "$after"
check "api: GET / says Paused" says '"state":"Paused"' api "$sock" GET /
check "api: resume" api_ok "$sock" PATCH /vm '{"state": "Resumed"}'
check "api: ticks again after resume" wait_text api "tick=$((after + 5))" 120
check "api: metrics count the vCPU exits" \
	says 'banyan_vcpu_exits_total{vcpu="0",reason="io"}' api "$sock" GET /metrics
check "api: banyan ctl pause" "$BANYAN" ctl --api-socket "$sock" pause
check "api: banyan ctl status says Paused" says Paused "$BANYAN" ctl --api-socket "$sock" status
check "api: banyan ctl resume" "$BANYAN" ctl --api-socket "$sock" resume

# 3. The VM's config, fed back with --config, boots an equal VM.
api "$sock" GET /vm/config | sed 's/ [0-9]*$//' >"$T/vm.json"
check "api: banyan ctl stop" "$BANYAN" ctl --api-socket "$sock" stop
vmm_wait api
check "api: stop exits 0" status_is 0 "$(cat "$T/api.rc")"
vmm_start again --config "$T/vm.json"
check "config: --config boots the same guest" wait_text again "tick=3"
api "$T/again.sock" GET /vm/config | sed 's/ [0-9]*$//' >"$T/vm2.json"
check "config: GET /vm/config is identical" cmp "$T/vm.json" "$T/vm2.json"
check "config: 2 vCPUs in the VM" says 'banyan_vm_vcpus 2' api "$T/again.sock" GET /metrics
api_ok "$T/again.sock" PUT /banyan/v1/stop >/dev/null
vmm_wait again

# 4. Ctrl-Alt-Del with kernel.ctrl-alt-del = 1 (the kernel's default; the
# rig's init is a shell that leaves it): the kernel reboots at once.
boot_cad() { # boot_cad NAME COMMAND
	vmm_start "$1" --kernel "$KERNEL" --initrd "$INITRD" --cmdline "console=ttyS0 quiet -- $2"
}
# The marker is split in the command so that the kernel's echo of its
# command line never matches it.
boot_cad cad1 'echo ctrl_alt_del=$(cat /proc/sys/kernel/ctrl-alt-del); echo "cad-""ready"; sleep 600'
check "cad1: guest ready" wait_text cad1 cad-ready
sleep 1
check "cad1: banyan ctl ctrl-alt-del" "$BANYAN" ctl --api-socket "$T/cad1.sock" ctrl-alt-del
vmm_wait cad1
check "cad1: the guest rebooted: exit 0" status_is 0 "$(cat "$T/cad1.rc")"
check "cad1: reported as a reboot" contains "$T/cad1.err" "VM stopped (reboot)"
check "cad1: the sysctl was at its default, 1" test "$(console cad1 | sed -n 's/^ctrl_alt_del=//p')" = 1

# 5. ctrl-alt-del = 0 (what systemd and busybox init set): the keys reach
# the keyboard driver and the kernel signals init instead of rebooting; the
# guest keeps running until stopped through the API.
IRQS='awk "/i8042/ {s=0; for (i=2; i<=NF; i++) if (\$i ~ /^[0-9]+\$/) s+=\$i; print s}" /proc/interrupts'
boot_cad cad0 "echo 0 >/proc/sys/kernel/ctrl-alt-del; echo cad-\"\"ready; sleep 10; echo kbd_\"\"irqs=\$($IRQS); sleep 600"
check "cad0: guest ready" wait_text cad0 cad-ready
check "cad0: SendCtrlAltDel" api_ok "$T/cad0.sock" PUT /actions '{"action_type": "SendCtrlAltDel"}'
check "cad0: no reboot: the guest still runs 10 s later" wait_text cad0 "kbd_irqs=" 120
kbd_irqs=$(console cad0 | sed -n 's/^kbd_irqs=\([0-9]*\).*/\1/p' | tail -n 1)
check "cad0: the keyboard interrupted the guest (i8042 IRQs: ${kbd_irqs:-none})" test "${kbd_irqs:-0}" -gt 0
api_ok "$T/cad0.sock" PUT /banyan/v1/stop >/dev/null
vmm_wait cad0
check "cad0: stopped through the API: exit 0" status_is 0 "$(cat "$T/cad0.rc")"
tap_done
