#!/usr/bin/env bats
# fs_response.bats — jobs/ID/response (SPEC 2): a read parked until the job
# ends, partial results streamed first, errors for jobs that did not
# succeed, interrupts, poll and O_NONBLOCK; thousands may wait at once.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/fs'

setup() {
	require_fuse
	start_daemon_mounted
	mkdir "$MNT/types/r"
}

# submit BODY: submit through the tree; prints the id.
submit() {
	local fd id
	exec {fd}<>"$MNT/types/r/queue"
	echo "$1" >&$fd
	id=$(read_line "$fd")
	exec {fd}>&-
	echo "$id"
}

# blocked PID: PID is alive (still waiting in its read).
alive() {
	kill -0 "$1" 2>/dev/null
}

@test "cat response waits for a TCP worker, then prints the result and ends" {
	local id out=$BATS_TEST_TMPDIR/cat.out
	id=$(submit '{"q":1}')
	cat "$MNT/jobs/$id/response" >"$out" &
	local cpid=$!
	wait_until 10 has_open "$cpid" "$MNT/jobs/$id/response"
	# Parked, not answered: the job has no worker yet.
	alive "$cpid"
	[ ! -s "$out" ]
	[ "$(cat "$MNT/jobs/$id/status")" = queued ]
	bg "$GLOOM" worker r
	wait "$cpid"
	[ "$(cat "$out")" = '{"q":1}' ]
	[ "$(cat "$MNT/jobs/$id/status")" = done ]
	# A later read gets the same answer at once.
	[ "$(timeout 5 cat "$MNT/jobs/$id/response")" = '{"q":1}' ]
}

@test "partial results stream as lines before the final result" {
	local id out=$BATS_TEST_TMPDIR/cat.out
	id=$(submit '{"p":1}')
	cat "$MNT/jobs/$id/response" >"$out" &
	local cpid=$!
	bg "$GLOOM" worker r --partials 3 --hold "$BATS_TEST_TMPDIR/go"
	# The partials arrive while the job still runs.
	wait_until 10 file_has_lines "$out" 3
	alive "$cpid"
	[ "$(cat "$MNT/jobs/$id/status")" = running ]
	touch "$BATS_TEST_TMPDIR/go"
	wait "$cpid"
	[ "$(cat "$out")" = '{"part":0}
{"part":1}
{"part":2}
{"p":1}' ]
}

@test "200 blocked readers are all answered when one worker finishes the job" {
	local id i pids=()
	id=$(submit '{"many":1}')
	for ((i = 0; i < 200; i++)); do
		cat "$MNT/jobs/$id/response" >"$BATS_TEST_TMPDIR/r$i" &
		pids+=("$!")
	done
	wait_until 20 has_open "${pids[199]}" "$MNT/jobs/$id/response"
	# While they wait the daemon serves the tree and TCP as usual.
	[ "$(cat "$MNT/jobs/$id/status")" = queued ]
	run gloom submit other '"tcp"' '{}' --detach
	[ "$status" = 0 ]
	[ -d "$MNT/jobs/tcp" ]
	for i in 0 99 199; do alive "${pids[$i]}"; done
	bg "$GLOOM" worker r
	for ((i = 0; i < 200; i++)); do
		wait "${pids[$i]}"
	done
	for ((i = 0; i < 200; i++)); do
		[ "$(cat "$BATS_TEST_TMPDIR/r$i")" = '{"many":1}' ] ||
			{ echo "reader $i got '$(cat "$BATS_TEST_TMPDIR/r$i")'"; return 1; }
	done
}

@test "an interrupted reader returns at once and the daemon still serves" {
	local id
	id=$(submit '{"i":1}')
	# Background jobs of a script ignore SIGINT: restore it for cat.
	env --default-signal=INT cat "$MNT/jobs/$id/response" &
	local cpid=$!
	wait_until 10 has_open "$cpid" "$MNT/jobs/$id/response"
	kill -INT "$cpid"
	wait_until 2 eval "! kill -0 $cpid 2>/dev/null"
	local rc=0
	wait "$cpid" || rc=$?
	[ "$rc" = 130 ]
	# The job is untouched and another reader can still get its answer.
	[ "$(cat "$MNT/jobs/$id/status")" = queued ]
	bg "$GLOOM" worker r
	[ "$(timeout 10 cat "$MNT/jobs/$id/response")" = '{"i":1}' ]
	assert_tree_healthy
}

@test "poll: a response turns readable when its job finishes" {
	local id
	id=$(submit '{"poll":1}')
	[ "$(gloom poll "$MNT/jobs/$id/response" 0.3)" = timeout ]
	( sleep 0.5; exec "$GLOOM" worker r --count 1 >/dev/null ) &
	local wpid=$!
	[ "$(gloom poll "$MNT/jobs/$id/response" 10)" = ready ]
	wait "$wpid"
	[ "$(cat "$MNT/jobs/$id/response")" = '{"poll":1}' ]
}

@test "O_NONBLOCK reads give EAGAIN until the job finishes" {
	local id
	id=$(submit '{"nb":1}')
	[ "$(gloom nonblock "$MNT/jobs/$id/response")" = EAGAIN ]
	run dd if="$MNT/jobs/$id/response" iflag=nonblock status=none
	[ "$status" != 0 ]
	[[ $output == *"Resource temporarily unavailable"* ]]
	gloom worker r --count 1 >/dev/null
	[ "$(gloom nonblock "$MNT/jobs/$id/response")" = '{"nb":1}' ]
}

@test "a cancelled job's response fails with ECANCELED after its partials" {
	local id out=$BATS_TEST_TMPDIR/cat.out
	id=$(submit '{"c":1}')
	bg "$GLOOM" worker r --partials 1 --hold "$BATS_TEST_TMPDIR/never"
	wait_until 10 file_is "$MNT/jobs/$id/status" running
	cat "$MNT/jobs/$id/response" >"$out" 2>"$out.err" &
	local cpid=$!
	wait_until 10 test -s "$out"
	alive "$cpid"
	[ "$(gloom cancel "$id")" = "{\"error\":\"cancelled\",\"reason\":\"$id\",\"id\":\"$id\"}" ]
	local rc=0
	wait "$cpid" || rc=$?
	[ "$rc" = 1 ]
	[ "$(cat "$out")" = '{"part":0}' ]
	grep -q 'Operation canceled' "$out.err"
	[ "$(cat "$MNT/jobs/$id/status")" = cancelled ]
}

@test "a timed-out job's response fails with ETIMEDOUT" {
	gloom submit r '"slow"' '{}' --timeout 300 --detach
	run timeout 10 cat "$MNT/jobs/slow/response"
	[ "$status" = 1 ]
	[[ $output == *"Connection timed out"* ]]
	[ "$(cat "$MNT/jobs/slow/status")" = timeout ]
}

@test "a job that failed (its worker lost it 4 times) makes the read fail with EIO" {
	local id i
	id=$(submit '{"f":1}')
	cat "$MNT/jobs/$id/response" >/dev/null 2>"$BATS_TEST_TMPDIR/err" &
	local cpid=$!
	for i in 1 2 3 4; do
		gloom worker r --die >/dev/null
	done
	local rc=0
	wait "$cpid" || rc=$?
	[ "$rc" = 1 ]
	grep -q 'Input/output error' "$BATS_TEST_TMPDIR/err"
	wait_until 5 file_is "$MNT/jobs/$id/status" failed
}

@test "the response of a job submitted over TCP is readable in the tree too" {
	"$GLOOM" submit r '"tcpjob"' '{"t":1}' --wait >"$BATS_TEST_TMPDIR/master.out" &
	local mpid=$!
	wait_until 10 test -d "$MNT/jobs/tcpjob"
	cat "$MNT/jobs/tcpjob/response" >"$BATS_TEST_TMPDIR/cat.out" &
	local cpid=$!
	bg "$GLOOM" worker r
	wait "$mpid" "$cpid"
	[ "$(cat "$BATS_TEST_TMPDIR/master.out")" = '{"id":"tcpjob","body":{"t":1}}' ]
	[ "$(cat "$BATS_TEST_TMPDIR/cat.out")" = '{"t":1}' ]
}
