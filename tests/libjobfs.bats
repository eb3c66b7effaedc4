#!/usr/bin/env bats
# libjobfs.bats — the C client library as a user gets it: `make install`
# (its library part, install-lib-files: no rebuild of this build)
# into a scratch root, then the example worker (examples/worker.c) and a
# master of the blocking calls (helpers/libjobfs_master.c) built with
# pkg-config against the installed header, jobfs.pc and libjobfs.so, and
# run against a real daemon: a job submitted with jobctl completes, the
# worker survives a restart of its daemon, and the master's calls work.

load 'helpers/daemon'
load 'helpers/durable'
load 'helpers/auth'
load 'helpers/certs'

SRC=$(cd "$BATS_TEST_DIRNAME/.." && pwd)

setup_file() {
	local root=$BATS_FILE_TMPDIR/root cflags=
	export LIBROOT=$root
	make -s -C "$SRC" install-lib-files B="$JOBFS_BIN" DESTDIR="$root" \
		PREFIX=/opt/jobfs >/dev/null
	export PKG_CONFIG_PATH=$root/opt/jobfs/lib/pkgconfig
	export PKG_CONFIG_SYSROOT_DIR=$root
	# A sanitizer build's library needs its runtime in the program too.
	if ldd "$root/opt/jobfs/lib/libjobfs.so.0" | grep -q libasan; then
		cflags="-fsanitize=address,undefined"
	fi
	cc $cflags -Wall -Werror -o "$BATS_FILE_TMPDIR/worker" \
		"$SRC/examples/worker.c" $(pkg-config --cflags --libs jobfs)
	cc $cflags -Wall -Werror -o "$BATS_FILE_TMPDIR/master" \
		"$SRC/tests/helpers/libjobfs_master.c" $(pkg-config --cflags --libs jobfs)
	export LD_LIBRARY_PATH=$root/opt/jobfs/lib
}

# start_worker: the example worker in the background, its stderr kept.
start_worker() {
	"$BATS_FILE_TMPDIR/worker" "$@" 2>"$BATS_TEST_TMPDIR/worker.err" &
	WORKER_PID=$!
	BG_PIDS+=("$WORKER_PID")
}

workers_are() {
	"$JOBCTL" stats 2>/dev/null | grep -qx "workers $1"
}

@test "the installed header, jobfs.pc and libjobfs.so build the example worker, under 40 lines" {
	[ "$(wc -l <"$SRC/examples/worker.c")" -lt 40 ]
	[ -x "$BATS_FILE_TMPDIR/worker" ]
	ldd "$BATS_FILE_TMPDIR/worker" | grep -q "$LIBROOT/opt/jobfs/lib/libjobfs.so.0"
	[ -f "$LIBROOT/opt/jobfs/include/jobfs_client.h" ]
	[ -f "$LIBROOT/opt/jobfs/lib/libjobfs.a" ]
	[ "$(pkg-config --modversion jobfs)" = "$("$JOBCTL" --version | cut -d' ' -f2)" ]
}

@test "libjobfs.so exports the jfc_ API only; libjobfs.a hides base/ too" {
	run bash -c "nm -D --defined-only '$LIBROOT/opt/jobfs/lib/libjobfs.so.0' | awk '\$2 != \"A\" {print \$3}' | grep -v '^jfc_'"
	[ "$output" = "" ]
	nm -D --defined-only "$LIBROOT/opt/jobfs/lib/libjobfs.so.0" | grep -q ' jfc_worker_run@'
	run bash -c "nm '$LIBROOT/opt/jobfs/lib/libjobfs.a' | awk 'NF == 3 && \$2 ~ /[TDBR]/ {print \$3}' | grep -v '^jfc_'"
	[ "$output" = "" ]
}

@test "the example worker completes a job submitted with jobctl, with its partial" {
	start_daemon
	start_worker
	wait_until 10 workers_are 1
	run "$JOBCTL" submit echo '{"a":1}'
	[ "$status" -eq 0 ]
	[ "$output" = '{"echo":{"a":1}}' ]
	run "$JOBCTL" submit --stream echo '[2]'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = '"working"' ]
	[ "${lines[1]}" = '{"echo":[2]}' ]
}

@test "the example worker survives a restart of its daemon" {
	start_daemon
	start_worker
	wait_until 10 workers_are 1
	[ "$("$JOBCTL" submit echo 1)" = '{"echo":1}' ]
	stop_daemon
	: >"$DAEMON_LOG"
	"$JOBFS" -f --master-port "$JOBFS_MASTER_PORT" \
		--worker-port "$JOBFS_WORKER_PORT" >>"$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	wait_until 15 workers_are 1 || { cat "$BATS_TEST_TMPDIR/worker.err"; return 1; }
	run "$JOBCTL" submit echo 2
	[ "$status" -eq 0 ]
	[ "$output" = '{"echo":2}' ]
	kill -0 "$WORKER_PID"
	grep -q 'connection lost (' "$BATS_TEST_TMPDIR/worker.err"
	grep -q 'reconnected after' "$BATS_TEST_TMPDIR/worker.err"
}

@test "the blocking calls: submit with options, wait, stream, status, cancel, publish and subscribe" {
	start_daemon
	start_worker
	wait_until 10 workers_are 1
	M=$BATS_FILE_TMPDIR/master
	run "$M" submit echo '{"b":2}' '{"id":"m1","priority":5,"retries":2,"timeout":10000}'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = m1 ]
	[ "${lines[1]}" = '{"echo":{"b":2}}' ]
	run "$M" stream echo '"s"'
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = '"working"' ]
	[ "${lines[1]}" = '{"echo":"s"}' ]
	run "$M" status m1
	[ "$status" -eq 0 ]
	[ "$(jq -r .status <<<"$output")" = done ]
	run "$M" wait m1
	[ "$output" = '{"echo":{"b":2}}' ]
	# a job of a type no worker serves: detached, then cancelled
	run "$M" submit-nowait nobody 1 '{"id":"c1","detach":true}'
	[ "$output" = c1 ]
	run "$M" cancel c1
	[ "$status" -eq 0 ]
	run "$M" status c1
	[ "$(jq -r .status <<<"$output")" = cancelled ]
	run "$M" cancel nosuchjob
	[ "$status" -eq 11 ]
	[[ "$output" == *unknown_id* ]]
	run "$M" submit echo '1' '{"id":"m1"}'
	[ "$status" -eq 0 ]
	run "$M" submit echo '{bad'
	[ "$status" -eq 11 ]
	run "$M" pubsub news '{"n":1}'
	[ "$status" -eq 0 ]
	[ "$output" = $'news\t{"n":1}' ]
	run "$M" request '{"type":"stats"}'
	[ "$status" -eq 0 ]
	[ "$(jq -r .stats.workers <<<"$output")" = 1 ]
	# bad input did not disturb another client's job
	[ "$("$JOBCTL" submit echo 3)" = '{"echo":3}' ]
}

@test "jobctl and the example worker read JOBFS_TOKEN_FILE; JOBFS_TOKEN wins over it" {
	start_auth_daemon
	printf '%s\n' "$TOK_WK" >"$BATS_TEST_TMPDIR/wk.token"
	printf '%s\n' "$TOK_ALICE" >"$BATS_TEST_TMPDIR/alice.token"
	JOBFS_TOKEN_FILE=$BATS_TEST_TMPDIR/wk.token start_worker
	export JOBFS_TOKEN_FILE=$BATS_TEST_TMPDIR/alice.token
	wait_until 10 workers_are 1
	[ "$("$JOBCTL" submit echo '"f"')" = '{"echo":"f"}' ]
	# a wrong token in JOBFS_TOKEN is used, not the good file
	run env JOBFS_TOKEN=wrong-0123456789abcdef0123 "$JOBCTL" submit echo 1
	[ "$status" -eq 3 ]
	[[ "$output" == *"authentication refused"* ]]
	run env JOBFS_TOKEN_FILE=$BATS_TEST_TMPDIR/nothing "$JOBCTL" stats
	[ "$status" -eq 2 ]
	[[ "$output" == *JOBFS_TOKEN_FILE* ]]
	[ "$("$JOBCTL" submit echo 2)" = '{"echo":2}' ]
}

@test "jobctl and the example worker speak TLS from JOBFS_TLS, JOBFS_CA, JOBFS_CERT and JOBFS_KEY" {
	command -v openssl >/dev/null || skip "no openssl(1)"
	C=$BATS_TEST_TMPDIR/certs
	mkdir -p "$C"
	make_ca ca
	make_cert srv localhost ca 'subjectAltName=DNS:localhost,IP:127.0.0.1'
	make_cert cli worker ca
	start_daemon --tls-cert "$C/srv.pem" --tls-key "$C/srv.key" --tls-ca "$C/ca.pem"
	export JOBFS_CA=$C/ca.pem JOBFS_CERT=$C/cli.pem JOBFS_KEY=$C/cli.key
	start_worker
	wait_until 10 workers_are 1
	[ "$("$JOBCTL" submit echo '"tls"')" = '{"echo":"tls"}' ]
	# JOBFS_TLS=1 alone: TLS with the system's CAs, which refuse ours
	run env -u JOBFS_CA -u JOBFS_CERT -u JOBFS_KEY JOBFS_TLS=1 "$JOBCTL" stats
	[ "$status" -eq 3 ]
	[[ "$output" == *"TLS handshake"* ]]
	# only one of the pair is a usage error
	run env -u JOBFS_KEY "$JOBCTL" stats
	[ "$status" -eq 2 ]
	[ "$("$JOBCTL" submit echo 3)" = '{"echo":3}' ]
}
