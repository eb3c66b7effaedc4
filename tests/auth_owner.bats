#!/usr/bin/env bats
# auth_owner.bats — a job belongs to the name that submitted it
# (status, wait and cancel of another name's job get unknown_id unless
# admin; the owner is journalled), and a response may only answer a job
# that the responding connection holds.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/ext'
load 'helpers/auth'

@test "status, wait and cancel of another name's job get unknown_id; its owner and admin see it" {
	start_auth_daemon
	conn_open W --worker
	send W "$(auth_frame wk)" '{"type":"join","job_type":"own"}'
	wait_lines W 1
	conn_open A
	send A "$(auth_frame alice)" '{"type":"job","job_type":"own","id":"a1","body":1}'
	wait_frame W '.type == "job"'
	conn_open B
	send B "$(auth_frame bob)" '{"type":"status","id":"a1"}' '{"type":"wait","id":"a1"}' \
		'{"action":"cancel","id":"a1"}'
	wait_lines B 4
	[ "$(frames B '.error == "unknown_id" and .id == "a1"' | wc -l)" = 3 ]
	# Not cancelled: it still runs, and bob learns nothing more.
	[ "$(as alice job_status '"a1"')" = running ]
	[ "$(as bob job_status '"a1"')" = unknown_id ]
	[ "$(as alice status_json '"a1"' | jq -r .owner)" = alice ]
	[ "$(as root status_json '"a1"' | jq -r .owner)" = alice ]
	send W '{"type":"response","body":"r"}'
	wait_frame A '.id == "a1" and .body == "r"'
	settle B
	[ "$(frames B 'has("body")' | wc -l)" = 0 ]
	# admin may cancel anyone's job.
	send A '{"type":"job","job_type":"nobody","id":"a2","body":2}'
	settle A
	run as root request '{"type":"cancel","id":"a2"}'
	[ "$(jq -r .error <<<"$output")" = cancelled ]
	wait_frame A '.id == "a2" and .error == "cancelled"'
	auth_healthy
}

@test "a job's owner is journalled: after a restart it is still only its owner's" {
	TOKENS=$BATS_TEST_TMPDIR/tokens
	write_tokens "$TOKENS"
	data=$BATS_TEST_TMPDIR/data
	start_daemon --auth "$TOKENS" --data "$data"
	printf '%s\n' '{"action":"submit","type":"later","id":"keep","body":1,"detach":true}' |
		as alice "$JOBCTL" raw -n 1 -t 5000
	stop_daemon
	start_daemon --auth "$TOKENS" --data "$data"
	[ "$(as alice job_status '"keep"')" = queued ]
	[ "$(as alice status_json '"keep"' | jq -r .owner)" = alice ]
	[ "$(as bob job_status '"keep"')" = unknown_id ]
	bg as wk "$JOBCTL" work later -- cat
	wait_until 10 as alice status_is '"keep"' done
	auth_healthy
}

@test "a response about a job the worker does not hold gets unknown_id, not silence" {
	start_daemon
	conn_open W1 --worker
	send W1 '{"type":"join","job_type":"ans","cancel":true,"capacity":2}'
	conn_open W2 --worker
	send W2 '{"type":"join","job_type":"other"}'
	settle W1 W2
	conn_open M
	send M '{"type":"job","job_type":"ans","id":"held","body":1}'
	wait_frame W1 '.type == "job"'
	# W2 holds nothing: answering W1's running job is refused ...
	send W2 '{"type":"response","id":"held","body":"stolen"}'
	settle W2
	[ "$(frames W2 '.error == "unknown_id" and .id == "held"' | wc -l)" = 1 ]
	send W1 '{"type":"response","id":"held","body":"mine"}'
	wait_frame M '.id == "held" and .body == "mine"'
	# ... and so is answering it once it has finished.
	send W2 '{"type":"response","id":"held","body":"late"}'
	settle W2
	[ "$(frames W2 '.error == "unknown_id" and .id == "held"' | wc -l)" = 2 ]
	# The worker that ran it may still answer late, quietly (SPEC 1.3).
	send W1 '{"type":"response","id":"held","body":"again"}'
	settle W1
	[ "$(frames W1 'has("error")' | wc -l)" = 0 ]
	settle M
	[ "$(frames M '.id == "held"' | wc -l)" = 1 ]
	assert_daemon_healthy
}

@test "an id that another name's finished job keeps gets id_exists: its owner's status and wait still answer it" {
	start_auth_daemon
	conn_open W --worker
	send W "$(auth_frame wk)" '{"type":"join","job_type":"ids"}'
	wait_lines W 1
	conn_open A
	send A "$(auth_frame alice)" '{"type":"job","job_type":"ids","id":"same","body":"a"}'
	wait_frame W '.type == "job" and .id == "same"'
	send W '{"type":"response","body":"alice-result"}'
	wait_frame A '.id == "same" and .body == "alice-result"'
	[ "$(as alice job_status '"same"')" = done ]
	# bob submits the same id: refused, and told nothing of alice's job.
	conn_open B
	send B "$(auth_frame bob)" '{"type":"job","job_type":"ids","id":"same","body":"b"}'
	wait_frame B '.error == "id_exists" and .id == "same"'
	settle B W
	[ "$(count B 'has("body")')" = 0 ]
	[[ "$(frames B '.error == "id_exists"')" != *alice* ]]
	[ "$(count W '.type == "job"')" = 1 ]
	# alice's status and wait still answer her job, not bob's.
	[ "$(as alice job_status '"same"')" = done ]
	[ "$(as alice status_json '"same"' | jq -r .owner)" = alice ]
	[ "$(as alice request '{"type":"wait","id":"same"}' | jq -c .body)" = '"alice-result"' ]
	[ "$(as bob job_status '"same"')" = unknown_id ]
	# alice may use her own finished job's id again.
	send A '{"type":"job","job_type":"ids","id":"same","body":"again"}'
	wait_frame W '.type == "job" and .body == "again"'
	send W '{"type":"response","body":"second"}'
	wait_frame A '.id == "same" and .body == "second"'
	auth_healthy
}
