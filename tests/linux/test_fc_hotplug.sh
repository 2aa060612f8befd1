#!/usr/bin/env bash
# Linux layer, Firecracker's clients: Banyan launched through its
# `firecracker` link as Kata launches Firecracker (--api-sock, --config-file
# with an empty placeholder drive), then Kata's block hotplug: PATCH
# /drives/{id} with a new path_on_host on the running VM. The guest sees
# the disk grow from 0 sectors (the configuration-change interrupt) and
# reads the new file's content; an unplug (PATCH back to the placeholder)
# shrinks it to 0 again.
#
# time-limit: 600 (seconds for one run, emulated host included: tests/linux/run)
set -u
. "$(dirname "$0")/lib.sh"
linux_prereqs
FC=$(dirname "$BANYAN")/firecracker

api() { # api SOCK METHOD PATH [BODY]: prints "BODY STATUS"
	local sock=$1 method=$2 path=$3 body=${4:-}
	curl -s --max-time 60 --unix-socket "$sock" -X "$method" -H 'Content-Type: application/json' \
		${body:+--data "$body"} -w ' %{http_code}' "http://localhost$path"
}
api_ok() {
	local out
	out=$(api "$@")
	case "${out##* }" in 2??) return 0 ;; esac
	echo "$2 $3 -> $out"
	return 1
}
console() { tr -d '\r' <"$T/fc.out"; }
wait_text() { # wait_text TEXT [SECS]
	local end=$(($(date +%s) + ${2:-300}))
	while [ "$(date +%s)" -lt "$end" ]; do
		console | grep -qF -- "$1" && return 0
		sleep 0.2
	done
	echo "'$1' never appeared on the console"
	console | tail -n 20
	tail -n 5 "$T/fc.err"
	return 1
}

# The guest reports vda's size and, once it has sectors, its first bytes.
# (No double quotes: the command goes into a JSON string.)
WATCH='while true; do s=$(cat /sys/block/vda/size); d=; [ ${s:-0} -gt 0 ] && d=$(head -c 12 /dev/vda); echo vda size=$s data=$d; sleep 0.5; done'
: >"$T/placeholder"
printf 'hotplugged!!' >"$T/new.img"
truncate -s 1M "$T/new.img"
cat >"$T/kata.json" <<JSON
{"boot-source": {"kernel_image_path": "$KERNEL", "initrd_path": "$INITRD",
                 "boot_args": "console=ttyS0 quiet -- $WATCH"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 512, "smt": false},
 "drives": [{"drive_id": "drive_0", "path_on_host": "$T/placeholder",
             "is_root_device": false, "is_read_only": false}],
 "balloon": null, "pmem": []}
JSON
sock=$T/fc.sock
timeout -s KILL "$GUEST_TIMEOUT" "$FC" --api-sock "$sock" --config-file "$T/kata.json" --id kata-hp \
	</dev/null >"$T/fc.out" 2>"$T/fc.err" &
pid=$!
check "fc: the guest sees the 0-byte placeholder as an empty vda" wait_text "vda size=0 data="
check "fc: PATCH /drives/drive_0 (hotplug)" api_ok "$sock" PATCH /drives/drive_0 \
	"{\"drive_id\": \"drive_0\", \"path_on_host\": \"$T/new.img\"}"
check "fc: the guest sees 2048 sectors and reads the new file" \
	wait_text "vda size=2048 data=hotplugged!!" 120
check "fc: PATCH back to the placeholder (unplug)" api_ok "$sock" PATCH /drives/drive_0 \
	"{\"drive_id\": \"drive_0\", \"path_on_host\": \"$T/placeholder\"}"
last_is() { # last_is TEXT [SECS]: the guest's latest report contains TEXT
	local end=$(($(date +%s) + ${2:-120}))
	while [ "$(date +%s)" -lt "$end" ]; do
		console | grep 'vda size=' | tail -n 1 | grep -qF -- "$1" && return 0
		sleep 0.2
	done
	console | grep 'vda size=' | tail -n 3
	return 1
}
check "fc: the guest sees 0 sectors again" last_is "vda size=0 data="
kill -TERM "$pid"
wait "$pid"
check "fc: SIGTERM: exit 143" status_is 143 $?
tap_done
