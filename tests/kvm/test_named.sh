#!/usr/bin/env bash
# KVM layer, named VMs (docs/operations.md): two VMs started detached by
# name, listed (text, -q, --json), reached by name (ctl, logs, console
# through a real terminal in tmux), one stopped by name, one killed and
# shown dead once then cleaned; duplicate and bad names refused; a VM that
# cannot start makes --detach fail with the reason. Seccomp is strict.
# Usage: test_named.sh BANYAN GUEST_DIR
set -u
. "$(dirname "$0")/../lib/tap.sh"

BANYAN=$1
GUESTS=$2
T=$(mktemp -d)
# A runtime root of our own: other runs on this host keep theirs.
export BANYAN_RUNTIME_DIR=$T/rt
RT=$BANYAN_RUNTIME_DIR
TMUX_SOCK=banyan-test-named-$$
cleanup() {
	local f
	tmux -L "$TMUX_SOCK" kill-server 2>/dev/null
	for f in "$RT"/*/pid; do
		[ -s "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT

if [ ! -c /dev/kvm ] || [ ! -w /dev/kvm ]; then
	skip "named VMs" "no usable /dev/kvm"
	tap_done
	exit
fi

b() { timeout -s KILL 60 "$BANYAN" "$@"; }
start() { b run --name "$1" --detach --kernel "$GUESTS/counter.elf" "${@:2}"; }

# ls_field NAME KEY: the key of NAME's object in ls --json
ls_field() {
	b ls --json | python3 -c '
import json, sys
for v in json.load(sys.stdin):
    if v["name"] == sys.argv[1]:
        print(v[sys.argv[2]])' "$1" "$2"
}

start web --memory 32M 2>"$T/web.err"
check "run --detach returns 0 once the VM runs" status_is 0 "$?"
start db --memory 48M --cpus 2 2>"$T/db.err"
check "a second one" status_is 0 "$?"
check "the runtime directory holds exactly api.sock console.sock pid vm.log" \
	test "$(cd "$RT/web" && ls | tr '\n' ' ')" = "api.sock console.sock pid vm.log "
check "the sockets are sockets, the pid file names the VMM" \
	test -S "$RT/web/api.sock" -a -S "$RT/web/console.sock" -a -d "/proc/$(cat "$RT/web/pid")"
# Running is not yet printed: the first line reaches vm.log once the
# VMM's loop next flushes the console, a moment later on a busy host.
for _ in $(seq 1 100); do grep -q "tick" "$RT/web/vm.log" && break; sleep 0.05; done
check "the VM runs (its console's output reaches vm.log)" grep -q "tick" "$RT/web/vm.log"

check "ls -q: both names, one per line" test "$(b ls -q | tr '\n' ' ')" = "db web "
b ls >"$T/ls.txt"
check "ls: both running" test "$(grep -c ' running ' "$T/ls.txt")" = 2
check "ls: db's vCPUs and memory" grep -Eq '^db +running +2 +48M' "$T/ls.txt"
check "ls --json: web running, 1 vCPU, 32 MiB" \
	test "$(ls_field web state) $(ls_field web vcpus) $(ls_field web mem_size_mib)" = "running 1 32"
check "ls --json: db's pid and resident memory" \
	test "$(ls_field db pid)" = "$(cat "$RT/db/pid")" -a "$(ls_field db rss_kib)" -gt 0

start web --memory 32M 2>"$T/dup.err"
check "a duplicate name is refused with status 2" status_is 2 "$?"
check "...saying why" contains "$T/dup.err" "a VM of this name is running"
check "...and the running VM keeps its files" test -S "$RT/web/console.sock"

for bad in ".." "." "a/b" "../etc" "" ".x" "$(printf 'a%.0s' $(seq 65))"; do
	start "$bad" 2>"$T/bad.err"
	check "bad name '${bad:0:12}' refused with status 2" status_is 2 "$?"
done
check "...and nothing was made for them" test ! -e "$T/etc" -a ! -e "$RT/a"

# Fails in the detached VMM (not at the options): the reason comes back through its pipe.
b run --name broken --detach --kernel "$GUESTS/counter.elf" \
	--vsock "cid=3,socket=$T/no-such-dir/v.sock" 2>"$T/broken.err"
check "--detach: a VM that cannot start: status 2" status_is 2 "$?"
check "...with the reason" contains "$T/broken.err" "cannot listen on $T/no-such-dir/v.sock"
check "...and the name is free again" test ! -e "$RT/broken/pid"

check "ctl --name: the VM's status" sh -c "'$BANYAN' ctl --name db status | grep -q Running"
check "ctl --name: pause" sh -c "'$BANYAN' ctl --name db pause >/dev/null"
check "ls: paused" test "$(ls_field db state)" = paused
check "ctl --name: resume" sh -c "'$BANYAN' ctl --name db resume >/dev/null"
check "logs NAME: the console output" sh -c "'$BANYAN' logs web | grep -q 'tick 0000000000000001'"

# The console through a real terminal: scrollback on attach, Ctrl-A d detaches.
if command -v tmux >/dev/null; then
	sleep 1
	tmux -L "$TMUX_SOCK" new-session -d -x 100 -y 30 \
		"'$BANYAN' console web; echo EXIT=\$?; stty -a | grep -qw -- -icanon || echo COOKED; echo DONE; sleep 60"
	pane() { tmux -L "$TMUX_SOCK" capture-pane -p -S -1000; }
	for _ in $(seq 1 50); do pane | grep -q tick && break; sleep 0.1; done
	pane >"$T/pane1.txt"
	check "console: attached, live output" grep -q "tick" "$T/pane1.txt"
	check "console: the scrollback came first (tick 1)" grep -q "tick 0000000000000001" "$T/pane1.txt"
	tmux -L "$TMUX_SOCK" send-keys C-a d
	for _ in $(seq 1 50); do pane | grep -q DONE && break; sleep 0.1; done
	pane >"$T/pane2.txt"
	check "console: Ctrl-A d detaches, status 0" grep -q "EXIT=0" "$T/pane2.txt"
	check "console: the terminal is cooked again" grep -q "COOKED" "$T/pane2.txt"
	check "console: the VM runs on" test "$(ls_field web state)" = running
else
	skip "console through tmux" "no tmux"
fi

# The client's keys: Ctrl-A Ctrl-A is one Ctrl-A, Ctrl-A d detaches (what
# follows is never sent). A socket of our own stands for the VM's console.
mkdir -p "$RT/keys" && chmod 700 "$RT/keys"
python3 - "$RT/keys/console.sock" "$T/keys.got" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(1)
c, _ = s.accept(); c.settimeout(10); got = b""
while True:
    d = c.recv(100)
    if not d:
        break
    got += d
open(sys.argv[2], "wb").write(got)
PY
keys_srv=$!
for _ in $(seq 1 50); do [ -S "$RT/keys/console.sock" ] && break; sleep 0.1; done
printf 'ab\001\001c\001dzz' | timeout 10 "$BANYAN" console keys >/dev/null 2>&1
check "console keys: status 0 after Ctrl-A d" status_is 0 "$?"
wait $keys_srv
check "...Ctrl-A Ctrl-A sent one Ctrl-A, nothing after the detach" \
	test "$(od -An -c "$T/keys.got" | tr -s ' ')" = " a b 001 c"
rm -rf "$RT/keys"

# Several readers at once, each with the scrollback.
python3 - "$RT/web/console.sock" >"$T/readers.txt" <<'PY'
import socket, sys, time
c = [socket.socket(socket.AF_UNIX) for _ in range(3)]
for s in c:
    s.connect(sys.argv[1])
time.sleep(0.5)
for s in c:
    s.settimeout(2)
    print(b"tick 0000000000000001" in s.recv(65536 + 4096))
PY
check "three readers, each given the scrollback" test "$(grep -c True "$T/readers.txt")" = 3

vmm=$(cat "$RT/db/pid")
kill -KILL "$vmm"
for _ in $(seq 1 50); do kill -0 "$vmm" 2>/dev/null || break; sleep 0.1; done
check "a killed VM is shown dead" sh -c "'$BANYAN' ls | grep -Eq '^db +dead'"
check "...once: its stale files are gone" test ! -e "$RT/db/pid" -a ! -e "$RT/db/console.sock" \
	-a ! -e "$RT/db/api.sock"
check "...and it is no longer listed" test "$(b ls -q | tr '\n' ' ')" = "web "
check "...its log stays" test -s "$RT/db/vm.log"
start db --memory 32M 2>"$T/db2.err"
check "the name of a dead VM can be taken again" status_is 0 "$?"

check "the console socket's thread ran sandboxed" sh -c "! grep -q 'without one' '$RT/web/vm.log'"

# Restores and clones take names too (clones: NAME-1, NAME-2).
b ctl --name web snapshot create "$T/snap" >/dev/null
b restore --snapshot "$T/snap" --name r --detach 2>"$T/r.err"
check "restore --name --detach: status 0" status_is 0 "$?"
check "...listed, running" test "$(ls_field r state)" = running
timeout -s KILL 60 "$BANYAN" restore --snapshot "$T/snap" --clones 2 --name c \
	>"$T/clones.out" 2>&1 &
for _ in $(seq 1 200); do [ "$(ls_field c-2 state)" = running ] && break; sleep 0.1; done
check "restore --clones 2 --name c: c-1 and c-2 run" \
	test "$(ls_field c-1 state) $(ls_field c-2 state)" = "running running"
check "...each on its own console socket" test -S "$RT/c-1/console.sock" -a -S "$RT/c-2/console.sock"
b ctl --name web clone "$T/snap" --count 2 --console "$T/k" --clone-name k >"$T/k.out" 2>&1
check "ctl clone --clone-name k (the API's clones endpoint): status 0" status_is 0 "$?"
check "...prints the clones' names" grep -q "clone 1: name k-2" "$T/k.out"
for _ in $(seq 1 200); do [ "$(ls_field k-2 state)" = running ] && break; sleep 0.1; done
check "...k-1 and k-2 run" test "$(ls_field k-1 state) $(ls_field k-2 state)" = "running running"
# Clones started by the VMM itself (no helper, --seccomp off) keep their API sockets too.
start off --memory 32M --seccomp off 2>"$T/off.err"
b ctl --name off clone "$T/snap" --count 1 --console "$T/o" --clone-api-socket "$RT/o.api" \
	>"$T/o.out" 2>&1
for _ in $(seq 1 100); do [ -S "$RT/o.api.0" ] && break; sleep 0.1; done
check "clones without the helper (--seccomp off) serve their API (--clone-api-socket)" \
	test -S "$RT/o.api.0"
b ctl --api-socket "$RT/o.api.0" stop >/dev/null 2>&1
for v in r c-1 c-2 k-1 k-2 off; do b stop "$v" --timeout 0 >/dev/null; done
wait
check "...stopped by name" test "$(b ls -q | tr '\n' ' ')" = "db web "

b stop web --timeout 1 >"$T/stop.out" 2>&1
check "stop NAME: status 0" status_is 0 "$?"
check "...the VMM is gone, its name free" test ! -e "$RT/web/pid" -a ! -e "$RT/web/console.sock"
check "...ls shows the other only" test "$(b ls -q | tr '\n' ' ')" = "db "
check "...its log says why it stopped" grep -q "VM stopped" "$RT/web/vm.log"
b stop web >"$T/stop2.out" 2>&1
check "stop of a VM not running: status 3" status_is 3 "$?"
timeout 30 "$BANYAN" logs db -f >"$T/follow.out" 2>&1 &
follower=$!
sleep 0.5
b ctl --name db stop >/dev/null
check "ctl --name NAME stop works too" status_is 0 "$?"
wait $follower
check "logs -f: ends by itself when the VM stops (status 0)" status_is 0 "$?"
check "...with the VM's last lines" grep -q "VM stopped" "$T/follow.out"
for _ in $(seq 1 50); do [ -e "$RT/db/pid" ] || break; sleep 0.1; done
check "...and the name is released" test "$(b ls -q | wc -l)" = 0

# In front (as a service manager runs it): same directory, the console is not the terminal.
b run --name fg --kernel "$GUESTS/hello.elf" >"$T/fg.out" 2>"$T/fg.err"
check "--name in front: the guest's status (0)" status_is 0 "$?"
check "...its console went to vm.log" grep -q "hello from a banyan test guest" "$RT/fg/vm.log"
check "...not to the terminal" test ! -s "$T/fg.out"
check "...and its files are removed at exit, but vm.log" \
	test "$(cd "$RT/fg" && ls | tr '\n' ' ')" = "vm.log "

tap_done
