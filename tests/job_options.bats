#!/usr/bin/env bats
# job_options.bats — "timeout", "detach", "notify" and "worker" in a
# submission (SPEC 1.3).

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/ext'

setup() {
	start_daemon
}

now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# ---------------------------------------------------------------- timeout

@test "a job with timeout 300 and no worker ends with a timeout error" {
	conn_open M
	t0=$(now_ms)
	send M '{"type":"job","job_type":"nobody","id":"t1","body":1,"timeout":300}' \
		'{"type":"job","job_type":"nobody","id":42,"body":2,"timeout":300}'
	wait_lines M 2
	# Not before its deadline (how soon after is the benchmark's business).
	elapsed=$(($(now_ms) - t0))
	[ "$elapsed" -ge 280 ]
	[ "$(out_of M | sort)" = '{"error":"timeout","reason":"42","id":42}
{"error":"timeout","reason":"t1","id":"t1"}' ]
	[ "$(job_status '"t1"')" = timeout ]
	[ "$(job_status 42)" = timeout ]
	[ "$(daemon_stat .timeout)" = 2 ]
	[ "$(daemon_stat .types.nobody.timeout)" = 2 ]
	[ "$(daemon_stat .types.nobody.queued)" = 0 ]
	# Ended and gone from the queue: a worker that joins now gets nothing.
	conn_open W --worker
	send W '{"type":"join","job_type":"nobody"}'
	settle W
	[ "$(frames W)" = "" ]
}

@test "a deadline that passes while the job runs sends the cancel-accepting worker a cancel" {
	conn_open W --worker
	send W '{"type":"join","job_type":"to","cancel":true}'
	settle W
	conn_open M
	send M '{"type":"job","job_type":"to","id":"slow","body":1,"timeout":300}'
	wait_frame W '.type == "job"'
	wait_frame M "$ENDING"
	[ "$(frames M)" = '{"error":"timeout","reason":"slow","id":"slow"}' ]
	wait_frame W '.type == "cancel"'
	[ "$(frames W)" = '{"type":"job","id":"slow","body":1}
{"type":"cancel","id":"slow"}' ]
	# Its answer, racing the cancel, is dropped without a word.
	send W '{"type":"response","id":"slow","body":"too late"}'
	settle W M
	[ "$(frames W)" = '{"type":"job","id":"slow","body":1}
{"type":"cancel","id":"slow"}' ]
	[ "$(endings M '"slow"')" = 1 ]
	[ "$(frames M)" = '{"error":"timeout","reason":"slow","id":"slow"}' ]
	[ "$(job_status '"slow"')" = timeout ]
	# Its slot was freed at the cancel: it takes the next job.
	send M '{"type":"job","job_type":"to","id":"next","body":2}'
	wait_frame W '.id == "next"'
	send W '{"type":"response","body":"n"}'
	wait_frame M '.id == "next"'
	[ "$(frames M '.id == "next"')" = '{"id":"next","body":"n"}' ]
}

@test "a running job that times out on a worker without cancel: its late response is dropped silently, then it gets the next job" {
	conn_open W --worker
	send W '{"type":"join","job_type":"to"}'
	settle W
	conn_open M
	send M '{"type":"job","job_type":"to","id":"s","body":1,"timeout":200}' \
		'{"type":"job","job_type":"to","id":"queued-behind","body":2}'
	wait_frame M "$ENDING"
	[ "$(frames M)" = '{"error":"timeout","reason":"s","id":"s"}' ]
	settle W
	# No cancel frame, and the next job waits for the late answer.
	[ "$(frames W)" = '{"type":"job","id":"s","body":1}' ]
	send W '{"type":"response","body":"late"}'
	wait_frame W '.id == "queued-behind"'
	[ "$(frames W)" = '{"type":"job","id":"s","body":1}
{"type":"job","id":"queued-behind","body":2}' ]
	send W '{"type":"response","body":"on time"}'
	wait_frame M '.id == "queued-behind"'
	settle M W
	[ "$(frames M)" = '{"error":"timeout","reason":"s","id":"s"}
{"id":"queued-behind","body":"on time"}' ]
	[ "$(count W 'has("error")')" = 0 ]
}

@test "a job that finishes before its deadline never times out" {
	bg "$JOBCTL" work fast -- cat
	wait_until 5 workers_are fast 1
	conn_open M
	send M '{"type":"job","job_type":"fast","id":1,"body":"quick","timeout":2000}'
	wait_lines M 1
	# A witness with the same timeout, on a type nobody serves, sent
	# after: once it has timed out, job 1's deadline has passed too.
	send M '{"type":"job","job_type":"nobody","id":2,"body":0,"timeout":2000}'
	wait_lines M 2
	[ "$(line M 1)" = '{"id":1,"body":"quick"}' ]
	[ "$(line M 2)" = '{"error":"timeout","reason":"2","id":2}' ]
	[ "$(job_status 1)" = done ]
	[ "$(daemon_stat .timeout)" = 1 ]
}

@test "timeout counts from submission, not from dispatch" {
	conn_open M
	send M '{"type":"job","job_type":"late","id":1,"body":0,"timeout":4000}'
	sleep 1
	conn_open W --worker
	send W '{"type":"join","job_type":"late"}'
	wait_frame W '.type == "job"'
	wait_frame M "$ENDING"
	[ "$(frames M)" = '{"error":"timeout","reason":"1","id":1}' ]
	# By the daemon's own clock: dispatched at least 1 s after submission,
	# and ended less than the 4 s timeout after dispatch.
	status_json 1 | jq -e '(.started - .submitted >= 0.99) and (.finished - .started < 4)'
}

@test "timeout must be a non-negative integer; 0 means none" {
	conn_open M
	send M '{"type":"job","job_type":"bad","id":1,"body":0,"timeout":-1}' \
		'{"type":"job","job_type":"bad","id":2,"body":0,"timeout":"100"}' \
		'{"type":"job","job_type":"bad","id":3,"body":0,"timeout":1.5}'
	settle M
	[ "$(frames M | jq -c '[.error,.id]')" = '["invalid_type",1]
["invalid_type",2]
["invalid_type",3]' ]
	[ "$(daemon_stat .submitted)" = 0 ]
	send M '{"type":"job","job_type":"bad","id":4,"body":0,"timeout":0}'
	sleep 0.2
	settle M
	[ "$(job_status 4)" = queued ]
	assert_daemon_healthy
}

# ----------------------------------------------------------------- detach

@test "a detached job survives its master's disconnect; an attached queued one is cancelled" {
	conn_open M
	send M '{"type":"job","job_type":"det","id":"keep","body":"k","detach":true}' \
		'{"type":"job","job_type":"det","id":"drop","body":"d"}' \
		'{"type":"job","job_type":"det","id":"nodetach","body":"n","detach":false}'
	settle M
	conn_kill M
	wait_until 5 status_is '"drop"' cancelled
	[ "$(job_status '"nodetach"')" = cancelled ]
	[ "$(job_status '"keep"')" = queued ]
	bg "$JOBCTL" work det -- cat
	wait_until 5 status_is '"keep"' done
	[ "$(status_json '"keep"' | jq -c '[.detach,.result_bytes]')" = '[true,3]' ]
	[ "$(daemon_stat .types.det.done)" = 1 ]
	[ "$(daemon_stat .types.det.cancelled)" = 2 ]
}

@test "a running job finishes after its master disconnects, detached or not" {
	conn_open W --worker
	send W '{"type":"join","job_type":"det","capacity":2}'
	settle W
	conn_open M
	send M '{"type":"job","job_type":"det","id":"a","body":1}' \
		'{"type":"job","job_type":"det","id":"b","body":2,"detach":true}'
	wait_frame W '.type == "job"' 2
	conn_kill M
	wait_until 5 stat_is .masters 1  # the stats request itself
	send W '{"type":"response","id":"a","body":"A"}' '{"type":"response","id":"b","body":"B"}'
	settle W
	[ "$(count W 'has("error")')" = 0 ]
	[ "$(job_status '"a"')" = done ]
	[ "$(job_status '"b"')" = done ]
}

@test "a detached job times out even with no master to tell" {
	conn_open M
	send M '{"type":"job","job_type":"det","id":"x","body":1,"detach":true,"timeout":3000}'
	settle M
	conn_kill M
	[ "$(job_status '"x"')" = queued ]
	wait_until 20 status_is '"x"' timeout
}

# ----------------------------------------------------------------- notify

@test "notify sends running with the worker's name at dispatch" {
	conn_open W --worker
	send W '{"type":"join","job_type":"nt","worker":"worker-7"}'
	settle W
	conn_open M
	send M '{"type":"job","job_type":"nt","id":"n1","body":1,"notify":true}'
	wait_lines M 1
	[ "$(line M 1)" = '{"id":"n1","status":"running","worker":"worker-7"}' ]
	send W '{"type":"response","body":"r"}'
	wait_lines M 2
	[ "$(line M 2)" = '{"id":"n1","body":"r"}' ]
	[ "$(count W 'has("error")')" = 0 ]
}

@test "notify names an unnamed worker by its address, as the status does" {
	conn_open W --worker
	send W '{"type":"join","job_type":"nt"}'
	settle W
	conn_open M
	send M '{"type":"job","job_type":"nt","id":2,"body":1,"notify":true}'
	wait_lines M 1
	name=$(line M 1 | jq -r .worker)
	[[ $name =~ ^127\.0\.0\.1:[0-9]+$ ]]
	[ "$(line M 1)" = "{\"id\":2,\"status\":\"running\",\"worker\":\"$name\"}" ]
	[ "$(status_json 2 | jq -r .worker)" = "$name" ]
}

@test "notify waits for dispatch: a queued job sends nothing until a worker takes it" {
	conn_open M
	send M '{"type":"job","job_type":"nt","id":3,"body":1,"notify":true}'
	settle M
	[ "$(frames M)" = "" ]
	conn_open W --worker
	send W '{"type":"join","job_type":"nt","worker":"late"}'
	wait_frame M '.status == "running"'
	[ "$(frames M)" = '{"id":3,"status":"running","worker":"late"}' ]
}

@test "without notify no running notice is sent" {
	conn_open W --worker
	send W '{"type":"join","job_type":"nt","worker":"quiet"}'
	settle W
	conn_open M
	send M '{"type":"job","job_type":"nt","id":4,"body":1,"notify":false}'
	wait_frame W '.type == "job"'
	send W '{"type":"response","body":"r"}'
	wait_lines M 1
	settle M
	[ "$(frames M)" = '{"id":4,"body":"r"}' ]
}

# ---------------------------------------------------------- targeted worker

@test "a job for a named worker goes only to it, though others of the type are idle" {
	conn_open A --worker
	conn_open B --worker
	send A '{"type":"join","job_type":"tg","worker":"alpha"}'
	send B '{"type":"join","job_type":"tg","worker":"beta"}'
	settle A B
	conn_open M
	send M '{"type":"job","job_type":"tg","id":"for-beta","body":1,"worker":"beta"}'
	wait_frame B '.type == "job"'
	settle A
	[ "$(frames B)" = '{"type":"job","id":"for-beta","body":1}' ]
	[ "$(frames A)" = "" ]
	# alpha still takes untargeted work.
	send M '{"type":"job","job_type":"tg","id":"any","body":2}'
	wait_frame A '.type == "job"'
	[ "$(frames A)" = '{"type":"job","id":"any","body":2}' ]
	send B '{"type":"response","body":"b"}'
	send A '{"type":"response","body":"a"}'
	wait_lines M 2
	[ "$(out_of M | sort)" = '{"id":"any","body":"a"}
{"id":"for-beta","body":"b"}' ]
}

@test "a job for a worker not yet joined waits for it while others idle" {
	conn_open A --worker
	send A '{"type":"join","job_type":"tg","worker":"alpha"}'
	settle A
	conn_open M
	send M '{"type":"job","job_type":"tg","id":"g","body":1,"worker":"gamma","notify":true}'
	settle M A
	[ "$(frames A)" = "" ]
	[ "$(job_status '"g"')" = queued ]
	[ "$(status_json '"g"' | jq -r .target)" = gamma ]
	# A worker of another type with that name does not take it either.
	conn_open X --worker
	send X '{"type":"join","job_type":"other","worker":"gamma"}'
	settle X
	[ "$(frames X)" = "" ]
	conn_open G --worker
	send G '{"type":"join","job_type":"tg","worker":"gamma"}'
	wait_frame G '.type == "job"'
	[ "$(frames G)" = '{"type":"job","id":"g","body":1}' ]
	[ "$(frames M)" = '{"id":"g","status":"running","worker":"gamma"}' ]
	settle A
	[ "$(frames A)" = "" ]
}

@test "a targeted job does not hold up untargeted ones behind it" {
	conn_open M
	send M '{"type":"job","job_type":"tg","id":1,"body":1,"worker":"gamma","priority":9}' \
		'{"type":"job","job_type":"tg","id":2,"body":2}'
	settle M
	conn_open A --worker
	send A '{"type":"join","job_type":"tg","worker":"alpha"}'
	wait_frame A '.type == "job"'
	[ "$(frames A)" = '{"type":"job","id":2,"body":2}' ]
	[ "$(job_status 1)" = queued ]
}

@test "a named worker takes its own and untargeted jobs in priority order" {
	conn_open M
	send M '{"type":"job","job_type":"tg","id":"low-mine","body":1,"worker":"alpha","priority":1}' \
		'{"type":"job","job_type":"tg","id":"high-any","body":2,"priority":5}' \
		'{"type":"job","job_type":"tg","id":"top-mine","body":3,"worker":"alpha","priority":9}'
	settle M
	conn_open A --worker
	send A '{"type":"join","job_type":"tg","worker":"alpha"}'
	for i in 1 2 3; do
		wait_frame A '.type == "job"' "$i"
		send A '{"type":"response","body":null}'
	done
	[ "$(frames A | jq -r .id | tr '\n' ' ')" = "top-mine high-any low-mine " ]
}

@test "a targeted job goes back to wait for its worker when that worker is lost" {
	conn_open B --worker
	send B '{"type":"join","job_type":"tg","worker":"beta"}'
	settle B
	conn_open A --worker
	send A '{"type":"join","job_type":"tg","worker":"alpha"}'
	settle A
	conn_open M
	send M '{"type":"job","job_type":"tg","id":"b","body":1,"worker":"beta"}'
	wait_frame B '.type == "job"'
	conn_kill B
	wait_until 5 status_is '"b"' queued
	settle A
	[ "$(frames A)" = "" ]
	conn_open B2 --worker
	send B2 '{"type":"join","job_type":"tg","worker":"beta"}'
	wait_frame B2 '.type == "job"'
	send B2 '{"type":"response","body":"second try"}'
	wait_lines M 1
	[ "$(out_of M)" = '{"id":"b","body":"second try"}' ]
}

@test "a target worker name must be a non-empty string" {
	conn_open M
	send M '{"type":"job","job_type":"tg","id":1,"body":0,"worker":""}' \
		'{"type":"job","job_type":"tg","id":2,"body":0,"worker":7}'
	settle M
	[ "$(frames M | jq -c '[.error,.id]')" = '["invalid_type",1]
["invalid_type",2]' ]
	[ "$(daemon_stat .submitted)" = 0 ]
	assert_daemon_healthy
}

@test "job options of the wrong JSON type are refused" {
	conn_open M
	send M '{"type":"job","job_type":"o","id":1,"body":0,"detach":"yes"}' \
		'{"type":"job","job_type":"o","id":2,"body":0,"notify":1}' \
		'{"type":"job","job_type":"o","id":3,"body":0,"stream":null}'
	settle M
	[ "$(frames M | jq -c '[.error,.id]')" = '["invalid_type",1]
["invalid_type",2]
["invalid_type",3]' ]
	[ "$(daemon_stat .submitted)" = 0 ]
	assert_daemon_healthy
}
