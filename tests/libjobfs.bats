#!/usr/bin/env bats
# libjobfs.bats — the C client library as a user gets it: `make install`
# into a scratch root, then the example worker (examples/worker.c) and a
# master of the blocking calls (helpers/libjobfs_master.c) built with
# pkg-config against the installed header, jobfs.pc and libjobfs.so, and
# run against a real daemon: a job submitted with jobctl completes, the
# worker survives a restart of its daemon, and the master's calls work.

load 'helpers/daemon'
load 'helpers/durable'

SRC=$(cd "$BATS_TEST_DIRNAME/.." && pwd)

setup_file() {
	local root=$BATS_FILE_TMPDIR/root cflags=
	export LIBROOT=$root
	make -s -C "$SRC" install-lib B="$JOBFS_BIN" DESTDIR="$root" \
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
