#!/usr/bin/env bats
# auth_limits.bats — limits a stranger could otherwise use to
# exhaust the daemon: connections per peer address, unauthenticated
# connections at once, their time to authenticate, and frames before auth.
# Each test checks that other clients' jobs still complete meanwhile.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/ext'
load 'helpers/auth'

# stranger NAME: a connection without a token.
stranger() {
	JOBFS_TOKEN= conn_open "$@"
}

@test "--max-conns-per-addr: past it a new connection from that address gets full and is closed" {
	start_daemon --max-conns-per-addr 3
	conn_open W --worker
	send W '{"type":"join","job_type":"pa"}'
	conn_open M
	settle W M
	conn_open X
	settle X
	conn_open Y
	wait_until 10 conn_gone Y
	[[ "$(line Y 1)" == *'"error":"full"'*'--max-conns-per-addr'* ]]
	grep -q 'over --max-conns-per-addr' "$DAEMON_LOG"
	# The connections it holds still work.
	send M '{"type":"job","job_type":"pa","id":"p1","body":1}'
	wait_frame W '.id == "p1"'
	send W '{"type":"response","body":"ok"}'
	wait_frame M '.id == "p1" and .body == "ok"'
	conn_kill X
	conn_kill M
	wait_until 10 stat_is .connections 2  # W and the request
	assert_daemon_healthy
}

@test "--max-unauth and --auth-timeout: strangers hold at most N connections, and only for a while" {
	start_auth_daemon --max-unauth 2 --auth-timeout 3
	conn_open W --worker
	send W "$(auth_frame wk)" '{"type":"join","job_type":"ua"}'
	conn_open A
	send A "$(auth_frame alice)"
	wait_lines W 1
	wait_lines A 1
	stranger S1
	send S1 '{"type":"ping"}'
	wait_lines S1 1
	stranger S2
	send S2 '{"type":"ping"}'
	wait_lines S2 1
	# A third makes the oldest go.
	stranger S3
	send S3 '{"type":"ping"}'
	wait_lines S3 1
	wait_until 10 conn_gone S1
	[[ "$(line S1 2)" == *'"error":"full"'*'--max-unauth'* ]]
	# S2 was not the oldest: it stays, unless its --auth-timeout passed
	# meanwhile (a loaded machine), and then that is what it heard.
	if conn_gone S2; then
		[[ "$(line S2 2)" == *'"error":"auth_required"'*'--auth-timeout'* ]]
	fi
	# Authenticated clients go on meanwhile.
	send A '{"type":"job","job_type":"ua","id":"u1","body":1}'
	wait_frame W '.id == "u1"'
	send W '{"type":"response","body":"ok"}'
	wait_frame A '.id == "u1" and .body == "ok"'
	# The strangers are dropped once their time is up; the others are not.
	wait_until 20 conn_gone S2
	wait_until 20 conn_gone S3
	[[ "$(line S2 2)" == *'"error":"auth_required"'*'--auth-timeout'* ]]
	conn_alive A
	conn_alive W
	auth_healthy
}

@test "--max-unauth-frames: a connection that keeps talking without authenticating is dropped" {
	start_auth_daemon --max-unauth-frames 3
	stranger S
	send S '{"type":"stats"}' '{"type":"ping"}' 'not json'
	wait_lines S 3
	conn_alive S
	send S '{"type":"stats"}'
	wait_until 10 conn_gone S
	[[ "$(line S 4)" == *'"error":"auth_required"'*'--max-unauth-frames'* ]]
	# Authenticating in time is not limited: the auth frame counts, and
	# after it nothing is.
	conn_open A
	send A '{"type":"ping"}' '{"type":"ping"}' "$(auth_frame alice)" \
		'{"type":"ping"}' '{"type":"ping"}' '{"type":"ping"}'
	wait_lines A 6
	conn_alive A
	auth_healthy
}

# stat_is_as PATH VALUE: stat_is with the admin token.
stat_is_as() {
	JOBFS_TOKEN=$TOK_ROOT stat_is "$@"
}
