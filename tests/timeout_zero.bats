#!/usr/bin/env bats
# timeout_zero.bats — "timeout":0 means no timeout, and the refusal of a
# negative one says so (code, message and man page agree).

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'

@test "timeout 0 means none; a negative timeout is refused with a reason that says 0 is none" {
	start_daemon
	out=$(request '{"type":"job","job_type":"tz","id":"neg","body":1,"timeout":-1}')
	[ "$(jq -r .error <<<"$out")" = invalid_type ]
	[[ "$(jq -r .reason <<<"$out")" == *'0 (none)'* ]]
	conn_open M
	send M '{"type":"job","job_type":"tz","id":"zero","body":1,"timeout":0}'
	settle M
	# Accepted, with no deadline.
	[ "$(status_json '"zero"' | jq -c '[.status, .timeout_ms]')" = '["queued",null]' ]
	join_worker W tz
	serve W 1
	wait_lines M 2
	[ "$(received M)" = '{"id":"zero","body":{"done":"zero"}}' ]
	assert_daemon_healthy
}
