#!/usr/bin/env bats
# auth_reload.bats — SIGHUP reloads the token file; connections
# whose name is still there with the same roles stay, the others go; a
# file that cannot be loaded keeps the old tokens.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/ext'
load 'helpers/auth'

TOK_CAROL=carol-0123456789abcdef01234

log_has() {
	grep -q "$1" "$DAEMON_LOG"
}

@test "SIGHUP: a withdrawn or changed token's connections go, kept ones stay, new tokens work" {
	start_auth_daemon
	conn_open A
	send A "$(auth_frame alice)"
	conn_open B
	send B "$(auth_frame bob)"
	conn_open W --worker
	send W "$(auth_frame wk)" '{"type":"join","job_type":"rl"}'
	wait_lines A 1
	wait_lines B 1
	wait_lines W 1
	# bob goes, wk gets another role, carol comes, alice stays as she was.
	cat >"$TOKENS" <<TOKENS
alice master $TOK_ALICE
wk    worker admin $TOK_WK
carol master $TOK_CAROL
root  admin  $TOK_ROOT
TOKENS
	kill -HUP "$DAEMON_PID"
	wait_until 10 log_has 'SIGHUP: 4 token(s) loaded'
	wait_until 10 conn_gone B
	wait_until 10 conn_gone W
	[ "$(line B 2 | jq -r .error)" = auth_failed ]
	conn_alive A
	# alice's connection still submits; a new worker (carol cannot join,
	# wk can) runs it.
	bg as wk "$JOBCTL" work rl -- cat
	send A '{"type":"job","job_type":"rl","id":"after","body":{"v":1}}'
	wait_frame A '.id == "after" and .body.v == 1'
	[ "$(JOBFS_TOKEN=$TOK_CAROL "$JOBCTL" submit rl '"c"')" = '"c"' ]
	run as bob "$JOBCTL" stats
	[ "$status" = 3 ]
	auth_healthy
}

@test "SIGHUP with a file that cannot be loaded keeps the old tokens and every connection" {
	start_auth_daemon
	conn_open A
	send A "$(auth_frame alice)"
	wait_lines A 1
	chmod 644 "$TOKENS"
	kill -HUP "$DAEMON_PID"
	wait_until 10 log_has 'SIGHUP: keeping the old tokens'
	send A '{"type":"stats"}'
	wait_frame A 'has("stats")'
	chmod 600 "$TOKENS"
	as bob "$JOBCTL" stats >/dev/null
	auth_healthy
}
