#!/usr/bin/env bats
# worker_slots.bats — a worker's slots after a job ends under it.  A
# worker that did not ask for cancels still owes the
# answer to a job that ended while it ran: its slot stays taken until that
# answer comes, the answer is matched to the ended job and never to another
# one, and a job of the same id is not given to that worker meanwhile.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/ext'

setup() {
	start_daemon
}

# Frames of one dialect: D is "seed" or "action".
join_frame() {  # TYPE CAPACITY
	if [ "$D" = action ]; then
		echo "{\"action\":\"join\",\"type\":\"$1\",\"capacity\":$2}"
	else
		echo "{\"type\":\"join\",\"job_type\":\"$1\",\"capacity\":$2}"
	fi
}

submit_frame() {  # TYPE ID BODY
	if [ "$D" = action ]; then
		echo "{\"action\":\"submit\",\"type\":\"$1\",\"id\":$2,\"body\":$3}"
	else
		echo "{\"type\":\"job\",\"job_type\":\"$1\",\"id\":$2,\"body\":$3}"
	fi
}

respond_frame() {  # ID BODY (ID "" for none)
	local kind='"type":"response"'
	[ "$D" = action ] && kind='"action":"respond"'
	if [ -n "$1" ]; then
		echo "{$kind,\"id\":$1,\"body\":$2}"
	else
		echo "{$kind,\"body\":$2}"
	fi
}

cancel_frame() {  # ID
	if [ "$D" = action ]; then
		echo "{\"action\":\"cancel\",\"id\":$1}"
	else
		echo "{\"type\":\"cancel\",\"id\":$1}"
	fi
}

# job_is: jq filter for a job frame of either dialect with this id and body.
job_is() {  # ID BODY
	echo "(.type == \"job\" or .action == \"job\") and .id == $1 and .body == $2"
}

# cancel_then_reuse CAPACITY: worker W (no cancel option) runs job "x";
# its master cancels it and submits "x" again with body 2.
cancel_then_reuse() {
	conn_open W --worker
	send W "$(join_frame ws "$1")"
	settle W
	conn_open M
	send M "$(submit_frame ws '"x"' 1)"
	wait_frame W "$(job_is '"x"' 1)"
	send M "$(cancel_frame '"x"')"
	wait_frame M '.error == "cancelled" and .id == "x"'
	send M "$(submit_frame ws '"x"' 2)"
	settle M W
}

# id_reuse_frees_slot: the late answer naming the reused id frees the slot.
id_reuse_frees_slot() {
	cancel_then_reuse 1
	# The slot is taken by the cancelled job: the new "x" waits.
	[ "$(job_status '"x"')" = queued ]
	[ "$(count W "$(job_is '"x"' 2)")" = 0 ]
	send W "$(respond_frame '"x"' '"old answer"')"
	# The late answer is dropped quietly, and frees the slot for the new "x".
	wait_frame W "$(job_is '"x"' 2)"
	settle W
	[ "$(count W 'has("error")')" = 0 ]
	[ "$(count M 'has("body")')" = 0 ]
	send W "$(respond_frame '"x"' '"new answer"')"
	wait_frame M '.id == "x" and has("body")'
	settle M
	[ "$(frames M 'has("body")')" = '{"id":"x","body":"new answer"}' ]
	[ "$(count W 'has("error")')" = 0 ]
	# The worker's slot is free: it takes a fresh job.
	send M "$(submit_frame ws 9 '"nine"')"
	wait_frame W "$(job_is 9 '"nine"')"
	send W "$(respond_frame 9 '"ok9"')"
	wait_frame M '.id == 9 and has("body")'
	assert_daemon_healthy
}

# late_answer_completes_nothing_else: capacity 2, the reused id is not
# given to the worker that holds it stale; other jobs are.
late_answer_completes_nothing_else() {
	cancel_then_reuse 2
	# The worker holds "x" stale: the new "x" is not given to it ...
	[ "$(job_status '"x"')" = queued ]
	[ "$(count W "$(job_is '"x"' 2)")" = 0 ]
	# ... but its free slot takes other jobs.
	send M "$(submit_frame ws '"y"' 3)"
	wait_frame W "$(job_is '"y"' 3)"
	# The late answer to the old "x" completes nothing.
	send W "$(respond_frame '"x"' '"old answer"')"
	wait_frame W "$(job_is '"x"' 2)"
	settle W M
	[ "$(count M 'has("body")')" = 0 ]
	[ "$(count W 'has("error")')" = 0 ]
	send W "$(respond_frame '"x"' '"new answer"')" "$(respond_frame '"y"' '"why"')"
	wait_frame M '.id == "y" and has("body")'
	settle M
	[ "$(frames M 'has("body")')" = '{"id":"x","body":"new answer"}
{"id":"y","body":"why"}' ]
	[ "$(count W 'has("error")')" = 0 ]
	assert_daemon_healthy
}

@test "seed: a late answer naming a reused id frees the worker's slot (capacity 1)" {
	D=seed id_reuse_frees_slot
}

@test "action: a late answer naming a reused id frees the worker's slot (capacity 1)" {
	D=action id_reuse_frees_slot
}

@test "seed: a reused id is not dispatched to the worker holding it; the late answer completes nothing (capacity 2)" {
	D=seed late_answer_completes_nothing_else
}

@test "action: a reused id is not dispatched to the worker holding it; the late answer completes nothing (capacity 2)" {
	D=action late_answer_completes_nothing_else
}

@test "a late answer without id, while the worker holds an ended job and runs another, is refused with missing_field id" {
	D=seed
	conn_open W --worker
	send W "$(join_frame ws 2)"
	settle W
	conn_open M
	send M "$(submit_frame ws '"a"' 1)"
	wait_frame W "$(job_is '"a"' 1)"
	send M "$(cancel_frame '"a"')"
	wait_frame M '.error == "cancelled"'
	send M "$(submit_frame ws '"b"' 2)"
	wait_frame W "$(job_is '"b"' 2)"
	# Which job is it about?  Not "b" for sure: refused.
	send W "$(respond_frame '' '"which?"')"
	settle W M
	[ "$(frames W 'has("error")')" = '{"error":"missing_field","name":"id"}' ]
	[ "$(job_status '"b"')" = running ]
	[ "$(count M 'has("body")')" = 0 ]
	send W "$(respond_frame '"a"' '"old"')" "$(respond_frame '' '"bee"')"
	wait_frame M '.id == "b" and has("body")'
	[ "$(frames M 'has("body")')" = '{"id":"b","body":"bee"}' ]
	assert_daemon_healthy
}

@test "a worker that leaves while holding ended jobs frees everything; another worker takes the reused id" {
	D=seed
	cancel_then_reuse 1
	[ "$(job_status '"x"')" = queued ]
	conn_kill W
	wait_until 10 workers_are ws 0
	conn_open W2 --worker
	send W2 "$(join_frame ws 1)"
	wait_frame W2 "$(job_is '"x"' 2)"
	send W2 "$(respond_frame '' '"two"')"
	wait_frame M '.id == "x" and has("body")'
	[ "$(frames M 'has("body")')" = '{"id":"x","body":"two"}' ]
	assert_daemon_healthy
}
