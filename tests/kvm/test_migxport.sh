#!/usr/bin/env bash
# KVM layer, migration transports: TLS on tcp: and the same-host upgrade
# on unix:. Certificates are made here (openssl): two CAs, A and B.
# - TLS: a verified migration with certificates from CA A succeeds (the
#   count continues, the pattern holds, the source exits "migrated"); a
#   source whose certificate CA B signed, one with an expired certificate,
#   and a plaintext source are each refused with the reason and the VM
#   runs on at the source.
# - Upgrade: a VM whose RAM is a memfd (--memory 64M,shared) moves to a
#   second process over unix: with its memory handed over by descriptor:
#   verified, the count continues, the pattern holds, the source exits
#   "migrated", and far less than the guest's RAM crossed. A destination
#   killed after it mapped the memory and before the switch (held there by
#   the test build's hook) leaves the VM running at the source, its memory
#   intact.
# Usage: test_migxport.sh BANYAN GUEST_DIR BANYAN_TEST_HOOKS
set -u
. "$(dirname "$0")/../lib/tap.sh"

BANYAN=$(realpath "$1")
GUESTS=$2
HOOKS=$(realpath "$3")
T=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

"$BANYAN" run --tls-cert x </dev/null >/dev/null 2>"$T/opt.err"
check "--tls-cert without --incoming: exit 2" status_is 2 "$?"

if [ ! -c /dev/kvm ] || [ ! -w /dev/kvm ]; then
	skip "migrations with a guest" "no usable /dev/kvm"
	tap_done
	exit
fi
if ! command -v openssl >/dev/null; then
	skip "TLS migrations" "no openssl to make certificates"
	NO_TLS=1
fi

count_at() { local v; v=$(grep "^count [0-9a-f]\{16\}$" "$1" | sed -n "$2"p | cut -d' ' -f2); echo $((16#${v:-0})); }
first_count() { count_at "$1" 1; }
last_count() { local v; v=$(grep '^count [0-9a-f]\{16\}$' "$1" | tail -1 | cut -d' ' -f2); echo $((16#${v:-0})); }
wait_for() { # wait_for FILE TEXT [SECONDS]
	for _ in $(seq 1 $((${3:-20} * 100))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.01; done
	return 1
}
running() { kill -0 "$1" 2>/dev/null; }
grows() { # grows FILE: the count goes on
	local a b
	a=$(last_count "$1")
	for _ in $(seq 1 50); do
		sleep 0.2
		b=$(last_count "$1")
		[ "$b" -gt "$a" ] && return 0
	done
	echo "count stuck at $a"
	return 1
}
no_bad() { test -z "$(grep 'pattern BAD' "$@")"; }
ctl() { local s=$1; shift; "$BANYAN" ctl --api-socket "$s" "$@"; }

# source_vm NAME [MEMORY]: a fresh source VM on $T/NAME.api, counting.
source_vm() {
	"$BANYAN" run --kernel "$GUESTS/migrate.elf" --memory "${2:-64M}" --api-socket "$T/$1.api" \
		</dev/null >"$T/$1.out" 2>"$T/$1.err" &
	SRC=$!
	PIDS+=($SRC)
	wait_for "$T/$1.out" "count 0000000000000003"
}
# dest_vm NAME URL [--binary PATH] [options]: a destination waiting on URL.
dest_vm() {
	local n=$1 u=$2 bin=$BANYAN
	shift 2
	if [ "${1:-}" = --binary ]; then
		bin=$2
		shift 2
	fi
	"$bin" run --incoming "$u" --api-socket "$T/$n.api" "$@" </dev/null >"$T/$n.out" \
		2>"$T/$n.err" &
	DST=$!
	PIDS+=($DST)
	wait_for "$T/$n.err" "waiting for a migration"
}
# moved KIND SRC DST: the VM left SRC for DST whole.
moved() {
	local kind=$1 s=$2 d=$3 before first
	wait "$SRC"
	check "$kind: the source exits 0" status_is 0 "$?"
	check "... with the reason migrated" contains "$T/$s.err" "VM stopped (migrated)"
	check "$kind: the destination runs the VM" running "$DST"
	wait_for "$T/$d.out" "^count " 10
	before=$(last_count "$T/$s.out")
	first=$(first_count "$T/$d.out")
	check "$kind: the count continues where the source left it ($before, then $first)" \
		test "$first" -gt "$before" -a "$first" -le $((before + 2))
	check "... and goes on" grows "$T/$d.out"
	sleep 3 # every page of the pattern is checked in turn
	check "$kind: the memory pattern holds" no_bad "$T/$s.out" "$T/$d.out"
	ctl "$T/$d.api" stop >/dev/null
	wait "$DST"
}
# still_source NAME: after a failed migration the VM runs on at the source.
still_source() {
	check "$1: the source keeps running" running "$SRC"
	check "... and the guest with it" grows "$T/$2.out"
	check "... its API says Running" sh -c "'$BANYAN' ctl --api-socket '$T/$2.api' status | grep -q Running"
}

# certs CA: CA's certificate and a server and a client certificate it signed (127.0.0.1).
certs() {
	local ca=$1 who
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-keyout "$T/$ca-ca.key" -out "$T/$ca-ca.pem" -subj "/CN=test CA $ca" 2>/dev/null || return 1
	printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$T/ext.cnf"
	for who in server client; do
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$ca $who" \
			-keyout "$T/$ca-$who.key" -out "$T/$ca-$who.csr" 2>/dev/null &&
			openssl x509 -req -in "$T/$ca-$who.csr" -CA "$T/$ca-ca.pem" -CAkey "$T/$ca-ca.key" \
				-CAcreateserial -days 1 -extfile "$T/ext.cnf" -out "$T/$ca-$who.pem" 2>/dev/null ||
			return 1
	done
}
# expired: a client certificate CA A signed, valid for a day in 2020.
expired() {
	printf '[ca]\ndefault_ca=d\n[d]\ndatabase=%s/index.txt\nnew_certs_dir=%s\nserial=%s/serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n' \
		"$T" "$T" "$T" >"$T/ca.cnf"
	: >"$T/index.txt"
	echo 01 >"$T/serial"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=old client" \
		-keyout "$T/old.key" -out "$T/old.csr" 2>/dev/null &&
		openssl ca -batch -config "$T/ca.cnf" -cert "$T/A-ca.pem" -keyfile "$T/A-ca.key" \
			-in "$T/old.csr" -out "$T/old.pem" -startdate 20200101000000Z \
			-enddate 20200102000000Z -extfile "$T/ext.cnf" >/dev/null 2>&1
}
tls_of() { echo "--tls-cert $T/$1-$2.pem --tls-key $T/$1-$2.key --tls-ca $T/$3-ca.pem"; }

if [ -z "${NO_TLS:-}" ]; then
	certs A && certs B && expired
	check "test certificates made (openssl)" test -s "$T/B-client.pem" -a -s "$T/old.pem"
	PORT=$((20000 + RANDOM % 20000))
	URL="tcp:127.0.0.1:$PORT"

	# shellcheck disable=SC2046
	{
		source_vm tls
		dest_vm dtls "$URL" $(tls_of A server A)
		check "TLS: the destination says it waits with TLS" contains "$T/dtls.err" "(TLS)"
		ctl "$T/tls.api" migrate "$URL" --verify $(tls_of A client A) >"$T/ctls.out" 2>&1
		check "TLS: ctl migrate --verify exits 0" sh -c "[ $? = 0 ] || { cat '$T/ctls.out'; exit 1; }"
		check "... and says migrated" contains "$T/ctls.out" "migrated"
		check "... the source logged TLS" contains "$T/tls.err" ", TLS)"
		moved TLS tls dtls

		# Refusals: each destination exits saying why; the source runs on.
		source_vm rf
		n=0
		for case in "a certificate from another CA|B client A|issuer is unknown" \
			"an expired certificate|old|expired" "a plaintext source||TLS"; do
			IFS='|' read -r what cert why <<<"$case"
			n=$((n + 1))
			PORT=$((PORT + 1))
			dest_vm "drf$n" "tcp:127.0.0.1:$PORT" $(tls_of A server A)
			case $cert in
			old) opts="--tls-cert $T/old.pem --tls-key $T/old.key --tls-ca $T/A-ca.pem" ;;
			"") opts="" ;;
			*) opts=$(tls_of $cert) ;;
			esac
			ctl "$T/rf.api" migrate "tcp:127.0.0.1:$PORT" $opts >"$T/crf$n.out" 2>&1
			check "TLS, $what: ctl migrate exits 1" status_is 1 "$?"
			wait "$DST"
			check "... the destination refuses it (exit not 0)" test "$?" -ne 0
			check "... saying why ($why)" contains "$T/drf$n.err" "$why"
			[ -n "$cert" ] && check "... the source hears a TLS refusal" contains "$T/crf$n.out" "TLS"
			still_source "TLS, $what" rf
		done
		# The other way round: the destination's certificate is from a CA the source does not trust.
		PORT=$((PORT + 1))
		dest_vm drfs "tcp:127.0.0.1:$PORT" $(tls_of B server B)
		ctl "$T/rf.api" migrate "tcp:127.0.0.1:$PORT" $(tls_of A client A) >"$T/crfs.out" 2>&1
		check "TLS, a destination from another CA: ctl migrate exits 1" status_is 1 "$?"
		check "... the source says why" contains "$T/crfs.out" "issuer is unknown"
		wait "$DST"
		still_source "TLS, a destination from another CA" rf
		check "... its memory pattern held" no_bad "$T/rf.out"
		ctl "$T/rf.api" stop >/dev/null
		wait "$SRC"
	}
fi

# Same-host upgrade: the memfd crosses, not the memory.
source_vm up 64M,shared
dest_vm dup "unix:$T/up.sock"
ctl "$T/up.api" migrate "unix:$T/up.sock" --verify >"$T/cup.out" 2>&1
check "upgrade: ctl migrate --verify exits 0" sh -c "[ $? = 0 ] || { cat '$T/cup.out'; exit 1; }"
check "... the destination took the memory by descriptor" contains "$T/dup.err" "handed over by descriptor"
sent=$(sed -n 's/.* \([0-9]*\) bytes).*/\1/p' "$T/cup.out" | tail -1)
check "... ${sent:-?} bytes crossed, far less than the guest's 64 MiB (under 1 MiB)" \
	test "${sent:-999999999}" -lt 1048576
moved upgrade up dup
check "... a verified upgrade sends the parts together" \
	sh -c "grep -q 'pause split' '$T/up.err' && ! grep -q 'each part sent as read' '$T/up.err'"

# Unverified, the source sends each state part as soon as it has read it
# and the destination loads the vCPUs while the rest is read.
source_vm upq 64M,shared
dest_vm dupq "unix:$T/upq.sock"
ctl "$T/upq.api" migrate "unix:$T/upq.sock" >"$T/cupq.out" 2>&1
check "upgrade, parts sent as read: ctl migrate exits 0" sh -c "[ $? = 0 ] || { cat '$T/cupq.out'; exit 1; }"
check "... the source sent each part as it read it" contains "$T/upq.err" "each part sent as read"
check "... the destination loaded them" contains "$T/dupq.err" "state loaded in"
moved "upgrade, parts sent as read" upq dupq

# A destination killed after it mapped the memory, before the switch: the VM runs on here.
# The test build holds the destination once it has sent READY (the VM built, the
# memory mapped, the source free to pause), so the kill lands there every time.
source_vm upk 64M,shared
BANYAN_TEST_HOLD=incoming-ready dest_vm dupk "unix:$T/upk.sock" --binary "$HOOKS"
ctl "$T/upk.api" migrate "unix:$T/upk.sock" --verify >"$T/cupk.out" 2>&1 &
CTL=$!
check "upgrade, destination killed: the destination took the memory and held after READY" \
	wait_for "$T/dupk.err" "test hook: holding at incoming-ready" 30
kill -9 "$DST"
{ wait "$DST"; } 2>/dev/null
wait "$CTL"
check "upgrade, destination killed: ctl migrate exits 1" sh -c "[ $? = 1 ] || { cat '$T/cupk.out'; exit 1; }"
still_source "upgrade, destination killed" upk
sleep 3
check "... and its memory pattern holds" no_bad "$T/upk.out"
ctl "$T/upk.api" stop >/dev/null
wait "$SRC"

tap_done
