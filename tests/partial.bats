#!/usr/bin/env bats
# partial.bats — {"type":"partial"} from workers, streamed to masters that
# submitted with "stream":true (SPEC 1.3, from omdp's partial replies).

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/ext'

setup() {
	start_daemon
	conn_open W --worker
	send W '{"type":"join","job_type":"pt"}'
	settle W
}

@test "a streaming master receives each partial in order, then the final reply" {
	conn_open M
	send M '{"type":"job","job_type":"pt","id":"s1","body":"go","stream":true}'
	wait_frame W '.type == "job"'
	send W '{"type":"partial","body":"p1"}' \
		'{"type":"partial","body":{"n":2}}' \
		'{"type":"partial","body":[3,3,3]}' \
		'{"type":"partial","body":null}' \
		'{"type":"response","body":"final"}'
	wait_frame M "$ENDING"
	settle M W
	[ "$(frames M)" = '{"id":"s1","body":"p1","partial":true}
{"id":"s1","body":{"n":2},"partial":true}
{"id":"s1","body":[3,3,3],"partial":true}
{"id":"s1","body":null,"partial":true}
{"id":"s1","body":"final"}' ]
	# The worker hears nothing back for partials.
	[ "$(frames W)" = '{"type":"job","id":"s1","body":"go"}' ]
	[ "$(daemon_stat .partials)" = 4 ]
}

@test "a master that did not ask to stream receives only the final reply" {
	conn_open M
	send M '{"type":"job","job_type":"pt","id":7,"body":"go"}'
	wait_frame W '.type == "job"'
	send W '{"type":"partial","body":"p1"}' '{"type":"partial","body":"p2"}' \
		'{"type":"response","body":"final"}'
	wait_lines M 1
	settle W M
	[ "$(frames M)" = '{"id":7,"body":"final"}' ]
}

@test "stream false is the same as no stream" {
	conn_open M
	send M '{"type":"job","job_type":"pt","id":7,"body":"go","stream":false}'
	wait_frame W '.type == "job"'
	send W '{"type":"partial","body":"p1"}' '{"type":"response","body":"final"}'
	wait_lines M 1
	settle W M
	[ "$(frames M)" = '{"id":7,"body":"final"}' ]
}

@test "partials of two jobs on one worker go to their own masters" {
	conn_open C --worker
	send C '{"type":"join","job_type":"pc","capacity":2}'
	settle C
	conn_open A
	conn_open B
	send A '{"type":"job","job_type":"pc","id":"a","body":1,"stream":true}'
	settle A
	send B '{"type":"job","job_type":"pc","id":"b","body":2,"stream":true}'
	wait_frame C '.type == "job"' 2
	send C '{"type":"partial","id":"b","body":"b1"}' \
		'{"type":"partial","id":"a","body":"a1"}' \
		'{"type":"partial","id":"b","body":"b2"}' \
		'{"type":"response","id":"a","body":"A"}' \
		'{"type":"response","id":"b","body":"B"}'
	wait_frame A "$ENDING"
	wait_frame B "$ENDING"
	settle A B C
	[ "$(frames A)" = '{"id":"a","body":"a1","partial":true}
{"id":"a","body":"A"}' ]
	[ "$(frames B)" = '{"id":"b","body":"b1","partial":true}
{"id":"b","body":"b2","partial":true}
{"id":"b","body":"B"}' ]
	[ "$(count C 'has("error")')" = 0 ]
}

@test "a partial without id while two jobs run is refused with missing_field id" {
	conn_open C --worker
	send C '{"type":"join","job_type":"pc","capacity":2}'
	settle C
	conn_open A
	send A '{"type":"job","job_type":"pc","id":1,"body":1,"stream":true}' \
		'{"type":"job","job_type":"pc","id":2,"body":2,"stream":true}'
	wait_frame C '.type == "job"' 2
	send C '{"type":"partial","body":"whose?"}'
	settle C A
	[ "$(frames C 'has("error")')" = '{"error":"missing_field","name":"id"}' ]
	[ "$(frames A)" = "" ]
	[ "$(daemon_stat .partials)" = 0 ]
	assert_daemon_healthy
}

@test "a partial when no job runs is refused with invalid_state" {
	send W '{"type":"partial","body":"nobody asked"}'
	settle W
	[ "$(frames W | jq -c '{error}')" = '{"error":"invalid_state"}' ]
	# And one without its body is missing a field.
	send W '{"type":"partial"}'
	settle W
	[ "$(frames W | tail -n 1)" = '{"error":"missing_field","name":"body"}' ]
	assert_daemon_healthy
}

@test "partials after the job was cancelled are dropped silently" {
	conn_open M
	send M '{"type":"job","job_type":"pt","id":"c","body":0,"stream":true}'
	wait_frame W '.type == "job"'
	send W '{"type":"partial","body":"before"}'
	wait_lines M 1
	send M '{"type":"cancel","id":"c"}'
	wait_frame M "$ENDING"
	send W '{"type":"partial","body":"after"}' '{"type":"response","body":"late"}'
	settle W M
	[ "$(frames M)" = '{"id":"c","body":"before","partial":true}
{"error":"cancelled","reason":"c","id":"c"}' ]
	# This worker did not ask for cancels: no cancel frame, no error.
	[ "$(frames W)" = '{"type":"job","id":"c","body":0}' ]
}

@test "a notified, streaming master hears running, the partials, then the result" {
	send W '{"type":"join","job_type":"pt","worker":"streamer"}'
	settle W
	conn_open M
	send M '{"type":"job","job_type":"pt","id":5,"body":"x","stream":true,"notify":true}'
	wait_frame W '.type == "job"'
	send W '{"type":"partial","body":1}' '{"type":"partial","body":2}' \
		'{"type":"response","body":3}'
	wait_frame M "$ENDING"
	settle M
	[ "$(frames M)" = '{"id":5,"status":"running","worker":"streamer"}
{"id":5,"body":1,"partial":true}
{"id":5,"body":2,"partial":true}
{"id":5,"body":3}' ]
}

@test "many partials past the 16 MiB kept for the tree all reach a streaming master" {
	# 20 partials of 1 MiB: the tree keeps at most 16 MiB of a job's
	# partials, but a streaming master gets every one.
	conn_open M
	send M '{"type":"job","job_type":"pt","id":"big","body":0,"stream":true}'
	wait_frame W '.type == "job"'
	python3 - "$BATS_TEST_TMPDIR/big.in" <<-'EOF'
		import json, sys
		with open(sys.argv[1], "w") as f:
		    for i in range(20):
		        body = "%02d" % i + "x" * (1 << 20)
		        f.write(json.dumps({"type": "partial", "body": body}) + "\n")
		    f.write('{"type":"response","body":"done"}\n')
	EOF
	cat "$BATS_TEST_TMPDIR/big.in" >&"${CONN_FD[W]}"
	wait_lines M 21 30
	[ "$(jq -r 'if .partial then .body[0:2] else .body end' "$(conn_file M)" | tr '\n' ' ')" = \
		"00 01 02 03 04 05 06 07 08 09 10 11 12 13 14 15 16 17 18 19 done " ]
	[ "$(jq -r 'select(.partial) | .body | length' "$(conn_file M)" | sort -u)" = 1048578 ]
	[ "$(daemon_stat .partials)" = 20 ]
}

@test "a partial in the later dialect is streamed the same way" {
	conn_open A --worker
	send A '{"action":"join","type":"pa"}'
	wait_lines A 1
	conn_open M
	send M '{"action":"submit","type":"pa","id":"d","body":1,"stream":true}'
	wait_lines A 2
	[ "$(line A 2)" = '{"action":"job","id":"d","type":"pa","body":1}' ]
	send A '{"action":"partial","body":"half"}' '{"action":"respond","body":"whole"}'
	wait_lines M 3
	[ "$(out_of M)" = '{"ok":true,"id":"d"}
{"id":"d","body":"half","partial":true}
{"id":"d","body":"whole"}' ]
	[ "$(out_of A)" = '{"ok":true}
{"action":"job","id":"d","type":"pa","body":1}
{"ok":true}' ]
}
