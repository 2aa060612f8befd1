#!/usr/bin/env bash
# KVM layer, `banyan jail`: bad options and files end the jail with status
# 2 and a line naming the step and the path, before anything is built; a
# tiny guest runs under the jail as an unprivileged uid/gid and its status
# is the process's; the VMM has that uid, no groups, no capabilities,
# no_new_privs, its own mount and PID namespaces with only the jail's files,
# the cgroup limit, and its API socket at the jail's path with mode 0600.
# A named VM (--name) in the jail is found by ls, ctl --name, logs, console
# and stop from outside it.
# Usage: test_jail.sh BANYAN GUEST_DIR
set -u
. "$(dirname "$0")/../lib/tap.sh"

BANYAN=$1
GUESTS=$(cd "$2" && pwd)
U=64123
T=$(mktemp -d)
BASE=$T/base
jail_pid=
# ...and the named VM's VMM, when a check failed before it was stopped.
trap '[ -n "$jail_pid" ] && kill -9 $jail_pid 2>/dev/null
	[ -f "$T/rt/web/pid" ] && kill -9 "$(cat "$T/rt/web/pid")" 2>/dev/null
	rm -rf "$T"' EXIT

# jail NAME JAIL-OPTIONS... -- RUN-OPTIONS...: output in $T/NAME.{out,err,rc}
jail() {
	local name=$1
	shift
	timeout -s KILL 60 "$BANYAN" jail "$@" </dev/null >"$T/$name.out" 2>"$T/$name.err"
	echo $? >"$T/$name.rc"
}
rc() { cat "$T/$1.rc"; }
j() { jail "$1" --chroot-base "$BASE" "${@:2}"; }

# Option errors: nothing is built.
j badid --id 'a/b' --uid $U --gid $U -- --kernel "$GUESTS/hello.elf"
check "bad --id: exit 2" status_is 2 "$(rc badid)"
check "bad --id: says so" contains "$T/badid.err" "--id 'a/b'"
j uidname --id v1 --uid nobody --gid $U -- --kernel "$GUESTS/hello.elf"
check "--uid not numeric: exit 2" status_is 2 "$(rc uidname)"
check "--uid not numeric: says so" contains "$T/uidname.err" "not a numeric id"
j uid0 --id v1 --uid 0 --gid $U -- --kernel "$GUESTS/hello.elf"
check "--uid 0: exit 2" status_is 2 "$(rc uid0)"
j nodash --id v1 --uid $U --gid $U --kernel "$GUESTS/hello.elf"
check "run options without '--': exit 2" status_is 2 "$(rc nodash)"
j cg --id v1 --uid $U --gid $U --cgroup cgroup.procs=1 -- --kernel "$GUESTS/hello.elf"
check "--cgroup cgroup.procs: exit 2" status_is 2 "$(rc cg)"
j relbase --id v1 --uid $U --gid $U --chroot-base ../x -- --kernel "$GUESTS/hello.elf"
check "relative --chroot-base: exit 2" status_is 2 "$(rc relbase)"
check "nothing built after option errors" test ! -e "$BASE"

if [ "$(id -u)" != 0 ] || [ ! -w /dev/kvm ]; then
	skip "the jail's runs" "needs root and /dev/kvm"
	tap_done
	exit
fi

# File errors: named with their step and host path.
j nokernel --id v1 --uid $U --gid $U -- --kernel "$T/missing.elf"
check "missing kernel: exit 2" status_is 2 "$(rc nokernel)"
check "missing kernel: step and path" contains "$T/nokernel.err" "files: kernel $T/missing.elf"
j relkernel --id v1 --uid $U --gid $U -- --kernel hello.elf
check "relative kernel path: exit 2" status_is 2 "$(rc relkernel)"
check "relative kernel path: says so" contains "$T/relkernel.err" "an absolute path"
truncate -s 1M "$T/root.img"
j rodisk --id v1 --uid $U --gid $U -- --kernel "$GUESTS/hello.elf" --disk "$T/root.img"
check "disk the user cannot write: exit 2" status_is 2 "$(rc rodisk)"
check "disk the user cannot write: says so" contains "$T/rodisk.err" "may not read and write it"
j unknown --id v1 --uid $U --gid $U -- --kernel "$GUESTS/hello.elf" --no-such-option
check "unknown run option: exit 2" status_is 2 "$(rc unknown)"

# A guest under the jail: its output and status are the VMM's.
j hello --id v1 --uid $U --gid $U -- --kernel "$GUESTS/hello.elf"
check "hello under the jail: exit 0" status_is 0 "$(rc hello)"
check "hello under the jail: guest output" contains "$T/hello.out" "hello from a banyan test guest"
check "the layers are logged" contains "$T/hello.err" "uid $U gid $U, no supplementary groups, no_new_privs"
j again --id v1 --uid $U --gid $U -- --kernel "$GUESTS/hello.elf"
check "a used root is refused: exit 2" status_is 2 "$(rc again)"
check "a used root is refused: says so" contains "$T/again.err" "is not empty"
j crash --id v2 --uid $U --gid $U -- --kernel "$GUESTS/triple_fault.elf"
check "a crashing guest's status passes through: 1" status_is 1 "$(rc crash)"

# --config: its paths are rewritten into the jail.
cat >"$T/vm.json" <<EOF
{"boot-source": {"kernel_image_path": "$GUESTS/hello.elf"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 64}}
EOF
j config --id v3 --uid $U --gid $U -- --config "$T/vm.json"
check "--config under the jail: exit 0" status_is 0 "$(rc config)"
check "--config under the jail: guest output" contains "$T/config.out" "hello from a banyan test guest"
check "--config rewritten to /kernel" contains "$BASE/banyan/v3/root/config.json" '"/kernel"'

# A running VMM: PID namespace, cgroup limit, disk, API socket.
truncate -s 1M "$T/disk.img"
chown $U:$U "$T/disk.img"
"$BANYAN" jail --id v4 --uid $U --gid $U --chroot-base "$BASE" --new-pid-ns \
	--cgroup pids.max=64 -- --kernel "$GUESTS/counter.elf" --disk "$T/disk.img" \
	--api-socket "$T/api.sock" </dev/null >"$T/run.out" 2>"$T/run.err" &
jail_pid=$!
ROOT=$BASE/banyan/v4/root
for _ in $(seq 1 100); do [ -S "$ROOT/run/api.sock" ] && break; sleep 0.1; done
vmm=$(tr -d ' ' </proc/$jail_pid/task/$jail_pid/children 2>/dev/null)
check "the VMM runs as a child of the jail" test -n "$vmm"
status=/proc/$vmm/status
check "VMM uid" grep -Eq "^Uid:\s+$U\s+$U\s+$U\s+$U$" "$status"
check "VMM gid" grep -Eq "^Gid:\s+$U\s+$U\s+$U\s+$U$" "$status"
check "VMM has no supplementary groups" grep -Eq "^Groups:\s*$" "$status"
check "VMM has no capabilities" grep -Eq "^CapEff:\s+0+$" "$status"
check "VMM has no_new_privs" grep -Eq "^NoNewPrivs:\s+1$" "$status"
check "VMM is pid 1 of its PID namespace" grep -Eq "^NSpid:\s+$vmm\s+1$" "$status"
check "VMM has its own mount namespace" \
	test "$(readlink /proc/$vmm/ns/mnt)" != "$(readlink /proc/self/ns/mnt)"
ls /proc/$vmm/root >"$T/rootls" 2>&1
check "VMM's root has only the jail's files" \
	test "$(tr '\n' ' ' <"$T/rootls")" = "banyan dev disk0 etc kernel lib lib64 run "
check "VMM's /dev has only its four nodes" \
	test "$(cd /proc/$vmm/root/dev && find . -mindepth 1 | sort | tr '\n' ' ')" = \
	"./kvm ./net ./net/tun ./null ./urandom "
check "the disk is a hard link of the operator's" test "$(stat -c %h "$T/disk.img")" = 2
check "API socket at the jail's path, mode 0600" test "$(stat -c %a:%u "$ROOT/run/api.sock")" = "600:$U"
"$BANYAN" ctl --api-socket "$ROOT/run/api.sock" config >"$T/config.json" 2>&1
check "API reachable: the VM's kernel is /kernel" contains "$T/config.json" '"kernel_image_path":"/kernel"'
cg=$(awk -F: '$2 ~ /(^|,)pids(,|$)/ || $2 == "" {print $3; exit}' /proc/$vmm/cgroup)
check "VMM in the cgroup banyan/v4" test "$cg" = /banyan/v4
limit=$(cat /sys/fs/cgroup/pids/banyan/v4/pids.max /sys/fs/cgroup/banyan/v4/pids.max 2>/dev/null)
check "cgroup limit pids.max=64 applied" test "$limit" = 64
kill -TERM $jail_pid
wait $jail_pid
st=$?
jail_pid=
check "SIGTERM is forwarded to pid 1: exit 143" status_is 143 "$st"
rmdir /sys/fs/cgroup/pids/banyan/v4 /sys/fs/cgroup/banyan/v4 2>/dev/null

# --daemonize: the jail returns once the VMM runs.
"$BANYAN" jail --id v5 --uid $U --gid $U --chroot-base "$BASE" --daemonize \
	-- --kernel "$GUESTS/counter.elf" >"$T/d.out" 2>"$T/d.err"
check "--daemonize returns 0 while the VM runs" status_is 0 $?
dpid=$(pgrep -u $U -f "/banyan run --kernel /kernel" | head -n 1)
check "the daemon runs as the jail's user" test -n "$dpid"
check "the daemon has a session of its own" test "$(ps -o sid= -p "$dpid" | tr -d ' ')" = "$dpid"
[ -n "$dpid" ] && kill -TERM "$dpid"

# Clones through the API of a jailed VM: the supervisor is the jail's
# binary (no /proc inside), its stdin the root's /dev/null. With
# --new-pid-ns the VMM is pid 1, so the clones' helper, its child, sees a
# parent of pid 1 that is alive.
# jail_clone ID WHAT [JAIL-OPTIONS...]
jail_clone() {
	local id=$1 what=$2 croot=$BASE/banyan/$1/root sup
	shift 2
	"$BANYAN" jail --id "$id" --uid $U --gid $U --chroot-base "$BASE" "$@" -- \
		--kernel "$GUESTS/counter.elf" --api-socket "$T/$id.sock" \
		</dev/null >"$T/$id.out" 2>"$T/$id.err" &
	jail_pid=$!
	# Running: the API answers before the vCPUs start, and a snapshot wants them.
	for _ in $(seq 1 100); do grep -q tick "$T/$id.out" && break; sleep 0.1; done
	"$BANYAN" ctl --api-socket "$croot/run/$id.sock" clone /run/snap --count 1 \
		--console /run/con --snapshot-now >"$T/$id.clone" 2>&1
	st=$?
	check "a clone through the API of a jailed VM ($what): exit 0" status_is 0 $st
	[ $st = 0 ] || sed 's/^/# /' "$T/$id.clone" "$T/$id.err"
	sup=$(sed -n 's/^supervisor pid \([0-9]*\).*/\1/p' "$T/$id.clone")
	for _ in $(seq 1 50); do grep -q tick "$croot/run/con.0" 2>/dev/null && break; sleep 0.1; done
	check "... the clone runs in the jail, its console at /run/con.0" grep -q tick "$croot/run/con.0"
	# The supervisor ends with the VMM's PID namespace; otherwise it is stopped here.
	[ -z "$*" ] && check "... as the jail's user" \
		test "$(stat -c %u "/proc/${sup:-x}" 2>/dev/null)" = $U
	[ -z "$*" ] && [ -n "$sup" ] && kill -TERM "$sup"
	"$BANYAN" ctl --api-socket "$croot/run/$id.sock" stop >/dev/null 2>&1
	wait $jail_pid
	jail_pid=
}
jail_clone v9 "host PID namespace"
jail_clone v10 "the VMM is pid 1" --new-pid-ns

# --name: a named VM in the jail is found from outside it by ls, ctl
# --name, logs, console and stop; the host's entry links into the root.
export BANYAN_RUNTIME_DIR=$T/rt
j badname --id v6 --uid $U --gid $U -- --kernel "$GUESTS/counter.elf" --name 'a.b/c'
check "--name with a slash: exit 2" status_is 2 "$(rc badname)"
j detach --id v6 --uid $U --gid $U -- --kernel "$GUESTS/counter.elf" --name web --detach
check "--detach in the jail: exit 2" status_is 2 "$(rc detach)"
check "... naming --daemonize instead" contains "$T/detach.err" "--daemonize"
j named --id v7 --uid $U --gid $U --new-pid-ns --daemonize -- --kernel "$GUESTS/counter.elf" \
	--name web
check "a named VM under the jail (--new-pid-ns --daemonize): exit 0" status_is 0 "$(rc named)"
for _ in $(seq 1 50); do grep -q tick "$T/rt/web/vm.log" 2>/dev/null && break; sleep 0.1; done
"$BANYAN" ls --json >"$T/ls.json" 2>&1
vpid=$(python3 -c 'import json,sys; print([v["pid"] for v in json.load(open(sys.argv[1])) if v["name"] == "web" and v["state"] == "running"][0])' "$T/ls.json" 2>/dev/null)
check "ls: the jailed VM runs" test -n "$vpid"
check "... its pid is the host's pid of the VMM (pid 1 inside)" \
	grep -Eq "^NSpid:\s+${vpid:-x}\s+1$" "/proc/${vpid:-x}/status"
check "... the entry's links point into the root" \
	test "$(readlink "$T/rt/web/console.sock")" = "$BASE/banyan/v7/root/run/banyan/web/console.sock"
"$BANYAN" ctl --name web status >"$T/nstatus.out" 2>&1
check "ctl --name reaches the jailed VM's API" grep -q "^state *Running" "$T/nstatus.out"
check "logs NAME shows its console output" sh -c "'$BANYAN' logs web | grep -q 'tick 0000000000000001'"
(sleep 1; printf '\001d') | timeout 10 "$BANYAN" console web >"$T/ncon.out" 2>&1
check "console NAME attaches (scrollback) and detaches" \
	test "$?" = 0 -a -n "$(grep 'tick 0000000000000001' "$T/ncon.out")"
# The jail's user writes its runtime directory: links it puts there in
# place of its files are never followed by root's clients (status 3), not
# even into its own files; the host's links into the root still are.
JR=$BASE/banyan/v7/root/run/banyan/web
echo "a host secret" >"$T/secret"
chmod 600 "$T/secret"
swap() { mv "$JR/$1" "$JR/$1.real" && ln -s "$2" "$JR/$1" && chown -h $U:$U "$JR/$1"; }
unswap() { rm -f "$JR/$1" && mv "$JR/$1.real" "$JR/$1"; }
swap vm.log "$T/secret"
"$BANYAN" logs web >"$T/evil_logs.out" 2>"$T/evil_logs.err"
check "logs: a link in the jail's directory in place of vm.log is refused: exit 3" status_is 3 $?
check "... nothing of the host file is printed" test ! -s "$T/evil_logs.out"
check "... and it says why" contains "$T/evil_logs.err" "not followed"
swap api.sock "$JR/api.sock.real"
"$BANYAN" ctl --name web status >"$T/evil_ctl.out" 2>&1
check "ctl --name: a link in place of api.sock is refused: exit 3" status_is 3 $?
check "... and it says why" contains "$T/evil_ctl.out" "not followed"
"$BANYAN" ctl --api-socket "$JR/api.sock" status >"$T/evil_api.out" 2>&1
check "ctl --api-socket through that link: exit 3" status_is 3 $?
"$BANYAN" ctl --api-socket "$JR/api.sock.real" status >"$T/real_api.out" 2>&1
check "ctl --api-socket on the socket itself in the root: exit 0" status_is 0 $?
"$BANYAN" ls --json >"$T/evil_ls.json" 2>&1
check "ls: the VM's API is not asked through the link (state unknown)" \
	python3 -c 'import json,sys; assert [v["state"] for v in json.load(open(sys.argv[1])) if v["name"] == "web"] == ["unknown"]' "$T/evil_ls.json"
swap console.sock "$JR/console.sock.real"
timeout 10 "$BANYAN" console web </dev/null >"$T/evil_con.out" 2>&1
check "console: a link in place of console.sock is refused: exit 3" status_is 3 $?
unswap vm.log
unswap api.sock
unswap console.sock
"$BANYAN" ctl --name web status >/dev/null 2>&1
check "the VM's own files again: ctl --name answers" status_is 0 $?
j named2 --id v8 --uid $U --gid $U -- --kernel "$GUESTS/counter.elf" --name web
check "a second jail with the name: exit 2, the name is taken" contains "$T/named2.err" \
	"a VM of this name is running"
"$BANYAN" stop web --timeout 0 >"$T/nstop.out" 2>&1
check "stop NAME stops the jailed VM" contains "$T/nstop.out" "web: stopped"
check "... its VMM is gone" test ! -d "/proc/${vpid:-x}"
check "... and ls no longer lists it" sh -c "! '$BANYAN' ls -q | grep -qx web"
tap_done
