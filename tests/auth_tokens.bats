#!/usr/bin/env bats
# auth_tokens.bats — --auth FILE, the auth frame in both
# dialects, auth_required and auth_failed, the token file's mode, roles,
# and jobctl's JOBFS_TOKEN and --token-file.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/ext'
load 'helpers/auth'

@test "before auth every message gets auth_required, in both dialects, and the connection stays usable" {
	start_auth_daemon
	conn_open M
	send M '{"type":"job","job_type":"t","id":"j1","body":1}'
	send M '{"action":"submit","type":"t","id":"j2","body":2}'
	send M '{"type":"stats"}'
	wait_lines M 3
	[ "$(line M 1 | jq -r '.error + " " + (.id|tostring)')" = "auth_required j1" ]
	[ "$(line M 2 | jq -r '.error + " " + (.id|tostring)')" = "auth_required j2" ]
	[ "$(line M 3 | jq -r .error)" = auth_required ]
	# Nothing was submitted.
	[ "$(as root daemon_stat .submitted)" = 0 ]
	send M "$(auth_frame alice action)"
	wait_lines M 4
	[ "$(line M 4)" = '{"ok":true,"name":"alice"}' ]
	send M '{"type":"stats"}'
	wait_frame M 'has("stats")'
	auth_healthy
}

@test "the seed dialect's auth frame is answered with the token's name; workers authenticate too" {
	start_auth_daemon
	conn_open W --worker
	send W "$(auth_frame wk)" '{"type":"join","job_type":"t"}'
	wait_lines W 1
	[ "$(line W 1)" = '{"ok":true,"name":"wk"}' ]
	wait_until 5 as root workers_are t 1
	out=$(as alice timeout 10 "$JOBCTL" submit --id 7 t '{"n":7}' &
		wait_frame W '.type == "job"' && send W '{"type":"response","body":"done"}'; wait)
	[ "$out" = '"done"' ]
	auth_healthy
}

@test "a wrong token gets auth_failed; the third closes the connection and the log names the peer, never the token" {
	start_auth_daemon
	conn_open M
	send M '{"type":"auth","token":"wrong-token-number-one"}'
	wait_lines M 1
	[ "$(line M 1 | jq -r .error)" = auth_failed ]
	conn_alive M
	send M '{"type":"auth","token":"wrong-token-number-two"}' '{"action":"auth","token":"wrong-token-number-three"}'
	wait_lines M 3
	[ "$(line M 3 | jq -r .error)" = auth_failed ]
	wait_until 10 conn_gone M
	grep -q '127.0.0.1:[0-9]*: authentication failed (3 of 3)' "$DAEMON_LOG"
	run ! grep -q 'wrong-token' "$DAEMON_LOG"
	run ! grep -qF "$TOK_ALICE" "$DAEMON_LOG"
	auth_healthy
}

@test "a worker token cannot submit and a master token cannot join, in either dialect; admin may do both" {
	start_auth_daemon
	conn_open M
	send M "$(auth_frame wk)" '{"type":"job","job_type":"t","id":"x","body":1}' \
		'{"action":"submit","type":"t","id":"y","body":1}'
	wait_lines M 3
	[ "$(line M 2 | jq -r '.error + " " + .id')" = "forbidden x" ]
	[ "$(line M 3 | jq -r '.error + " " + .id')" = "forbidden y" ]
	conn_open W --worker
	send W "$(auth_frame alice)" '{"type":"join","job_type":"t"}' \
		'{"action":"join","type":"t"}'
	wait_lines W 3
	[ "$(line W 2 | jq -r .error)" = forbidden ]
	[ "$(line W 3 | jq -r .error)" = forbidden ]
	[ "$(as root workers_of t)" = 0 ]
	[ "$(as root daemon_stat .submitted)" = 0 ]
	# jobctl says so and fails.
	run as wk "$JOBCTL" submit t 1
	[ "$status" = 1 ]
	[[ "$output" == *forbidden* ]]
	# admin has both roles.
	auth_healthy
}

@test "jobctl takes the token from --token-file and from JOBFS_TOKEN; a wrong one fails" {
	start_auth_daemon
	printf '%s\n' "$TOK_WK" >"$BATS_TEST_TMPDIR/wk.token"
	bg "$JOBCTL" --token-file "$BATS_TEST_TMPDIR/wk.token" work tf -- cat
	wait_until 10 as root workers_are tf 1
	[ "$(JOBFS_TOKEN=$TOK_BOB timeout 10 "$JOBCTL" submit tf '{"a":1}')" = '{"a":1}' ]
	run env JOBFS_TOKEN=not-a-token-at-all-0000 "$JOBCTL" stats
	[ "$status" = 3 ]
	[[ "$output" == *auth_failed* ]]
	run env -u JOBFS_TOKEN "$JOBCTL" stats
	[ "$status" != 0 ]
	[[ "$output" == *auth_required* ]]
	auth_healthy
}

@test "a token file that group or others may read is refused at start" {
	TOKENS=$BATS_TEST_TMPDIR/tokens
	write_tokens "$TOKENS"
	chmod 644 "$TOKENS"
	run "$JOBFS" -f --master-port 0 --worker-port 0 --auth "$TOKENS"
	[ "$status" = 1 ]
	[[ "$output" == *"chmod 600"* ]]
	chmod 600 "$TOKENS"
	echo "eve master short" >>"$TOKENS"
	run "$JOBFS" -f --master-port 0 --worker-port 0 --auth "$TOKENS"
	[ "$status" = 1 ]
	[[ "$output" == *"line 6"*"shorter"* ]]
}

@test "without --auth an auth frame is an unknown type, as before, and jobctl with a token still works" {
	start_daemon
	run request '{"type":"auth","token":"whatever-it-is-0000"}'
	[ "$(jq -r .error <<<"$output")" = unknown_type ]
	JOBFS_TOKEN=$TOK_ALICE assert_daemon_healthy
}

@test "constant-time comparison: auth_check hashes the token and compares with every entry through CRYPTO_memcmp" {
	# By reading: no strcmp/memcmp on tokens, no early exit.
	src=$BATS_TEST_DIRNAME/../src/base/auth.c
	body=$(sed -n '/^auth_check(/,/^}/p' "$src")
	grep -q 'CRYPTO_memcmp' <<<"$body"
	grep -q 'auth_hash(token' <<<"$body"
	run ! grep -qE '\b(strcmp|memcmp|strncmp)\(' <<<"$body"
	! grep -qE '\b(break|return)\b.*;' <<<"$(sed -n '/for (i = 0; i < table->n/,/^	}/p' <<<"$body")"
}
