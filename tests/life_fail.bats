#!/usr/bin/env bats
# life_fail.bats — failure reports and retries with backoff:
# a worker's {"type":"fail","body":ERR} fails the job with ERR, or retries
# it after an exponential backoff while it has "retries" left; a lost
# worker is a failed attempt of a job with retries; info lists every
# attempt; bad input is refused and others' jobs still complete.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'

setup() {
	start_daemon
}

@test "a fail report without retries fails the job with the error as last_error" {
	join_worker W t
	conn_open M
	send M '{"type":"job","job_type":"t","id":"a","body":1,"retries":0}'
	wait_jobs W 1
	send W '{"type":"fail","body":{"exit":3,"stderr":"boom"}}'
	wait_lines M 1
	same_json "$(line M 1)" '{"error":"job_failed","reason":"a","id":"a","last_error":{"exit":3,"stderr":"boom"}}'
	# The slot is free at once: the worker takes the next job.
	send M '{"type":"job","job_type":"t","id":"b","body":2}'
	wait_jobs W 2
	serve W 1
	[ "$(jobs_of W | sed -n 2p | jq -c .id)" = '"b"' ]
	info=$(status_json '"a"')
	[ "$(jq -r .status <<<"$info")" = failed ]
	[ "$(jq -c '[(.attempts | length), .attempts[0].error.exit, .dead, .failures]' <<<"$info")" = '[1,3,true,1]' ]
	assert_daemon_healthy
}

@test "retries: each failed attempt is retried after a backoff, then job_failed with the last error" {
	join_worker W t
	conn_open M
	send M '{"type":"job","job_type":"t","id":"r","body":1,"retries":2,"backoff":20}'
	wait_jobs W 1
	send W '{"type":"fail","body":"e1"}'
	wait_jobs W 2
	send W '{"type":"fail","body":"e2"}'
	wait_jobs W 3
	send W '{"type":"fail","body":"e3"}'
	wait_lines M 1
	same_json "$(line M 1)" '{"error":"job_failed","reason":"r","id":"r","last_error":"e3"}'
	info=$(status_json '"r"')
	[ "$(jq -c '[.attempts[].error]' <<<"$info")" = '["e1","e2","e3"]' ]
	[ "$(jq -c '[.attempts[] | (.ended >= .started)] | all' <<<"$info")" = true ]
	[ "$(jq -r '.attempts[0].worker' <<<"$info")" != null ]
	# Each retry waited: the next attempt began after the previous ended.
	[ "$(jq -c '[.attempts[1].started >= .attempts[0].ended, .attempts[2].started >= .attempts[1].ended]' <<<"$info")" = '[true,true]' ]
	[ "$(daemon_stat .retried)" = 2 ]
	[ "$(daemon_stat .dead)" = 1 ]
	assert_daemon_healthy
}

@test "a retried job that then succeeds is done, its attempts listed" {
	join_worker W t
	conn_open M
	send M '{"type":"job","job_type":"t","id":"s","body":1,"retries":3,"backoff":10}'
	wait_jobs W 1
	send W '{"type":"fail","body":"flaky"}'
	wait_jobs W 2
	respond W '"ok"'
	wait_lines M 1
	[ "$(line M 1)" = '{"id":"s","body":"ok"}' ]
	[ "$(status_json '"s"' | jq -c '[.status, (.attempts | length), .attempts[0].error, .attempts[1].error]')" = '["done",2,"flaky",null]' ]
}

@test "a lost worker is a failed attempt of a job with retries: retried after its backoff" {
	join_worker W1 t
	conn_open M
	send M '{"type":"job","job_type":"t","id":"l","body":1,"retries":1,"backoff":10}'
	wait_jobs W1 1
	conn_kill W1
	wait_until 10 stat_is .retried 1
	join_worker W2 t
	wait_jobs W2 1
	respond W2 '"second"'
	wait_lines M 1
	[ "$(line M 1)" = '{"id":"l","body":"second"}' ]
	[ "$(status_json '"l"' | jq -r '.attempts[0].error')" = "worker lost" ]
}

@test "the type's default retries apply to jobs that do not say" {
	[ "$(request '{"type":"configure","job_type":"t","retries":1,"backoff":10}' | jq -c '[.retries,.backoff]')" = '[1,10]' ]
	join_worker W t
	conn_open M
	send M '{"type":"job","job_type":"t","id":"d","body":1}'
	wait_jobs W 1
	send W '{"type":"fail","body":"once"}'
	wait_jobs W 2
	respond W '"twice"'
	wait_lines M 1
	[ "$(line M 1)" = '{"id":"d","body":"twice"}' ]
}

@test "the later dialect: {\"action\":\"fail\"} is acknowledged" {
	conn_open W --worker
	send W '{"action":"join","type":"t"}'
	wait_lines W 1
	conn_open M
	send M '{"action":"submit","type":"t","id":"x","body":1,"retries":0}'
	wait_lines M 1
	wait_lines W 2
	send W '{"action":"fail","body":"bad"}'
	wait_lines W 3
	[ "$(line W 3)" = '{"ok":true}' ]
	wait_lines M 2
	[ "$(line M 2 | jq -c '[.error,.last_error]')" = '["job_failed","bad"]' ]
}

@test "bad input: fail with no job, fail without body, bad retries and backoff" {
	conn_open W --worker
	send W '{"type":"join","job_type":"t"}' '{"type":"fail","body":"x"}' '{"type":"fail"}'
	wait_lines W 2
	is_error "$(line W 1)" invalid_state
	[ "$(line W 2)" = '{"error":"missing_field","name":"body"}' ]
	conn_open M
	send M '{"type":"job","job_type":"t","id":1,"body":1,"retries":-1}' \
		'{"type":"job","job_type":"t","id":2,"body":1,"retries":101}' \
		'{"type":"job","job_type":"t","id":3,"body":1,"retries":"2"}' \
		'{"type":"job","job_type":"t","id":4,"body":1,"backoff":-5}' \
		'{"type":"job","job_type":"t","id":5,"body":1,"backoff":99999999999}' \
		'{"type":"configure","job_type":"t","retries":1000}'
	wait_lines M 6
	is_error "$(line M 1)" invalid_type 1
	line M 1 | grep -q '0 to 100'
	is_error "$(line M 2)" invalid_type 2
	is_error "$(line M 3)" invalid_type 3
	is_error "$(line M 4)" invalid_type 4
	line M 4 | grep -q 'milliseconds'
	is_error "$(line M 5)" invalid_type 5
	is_error "$(line M 6)" invalid_type
	line M 6 | grep -q '0 to 100'
	[ "$(daemon_stat .submitted)" = 0 ]
	assert_daemon_healthy
}

@test "a timeout of a running attempt with retries left is a failed attempt: its worker is told to cancel, the retry has a fresh timeout" {
	conn_open W --worker
	send W '{"type":"join","job_type":"t","cancel":true}'
	settle W
	conn_open M
	send M '{"type":"job","job_type":"t","id":"slow","body":1,"timeout":4000,"retries":1,"backoff":10}'
	wait_jobs W 1
	# It does not answer: the attempt times out, a cancel comes, then the retry.
	wait_jobs W 2
	[ "$(received W | sed -n 2p)" = '{"type":"cancel","id":"slow"}' ]
	send W '{"type":"response","id":"slow","body":"in time"}'
	wait_lines M 1
	[ "$(line M 1)" = '{"id":"slow","body":"in time"}' ]
	[ "$(status_json '"slow"' | jq -c '[.attempts[0].error, (.attempts | length)]')" = '["timeout",2]' ]
	assert_daemon_healthy
}

@test "the last attempt's timeout ends the job with timeout" {
	join_worker W t
	conn_open M
	send M '{"type":"job","job_type":"t","id":"late","body":1,"timeout":200,"retries":1,"backoff":10}'
	wait_jobs W 1
	wait_lines M 1
	is_error "$(line M 1)" timeout '"late"'
	[ "$(status_json '"late"' | jq -c '[.status, .attempts[0].error]')" = '["timeout","timeout"]' ]
}
