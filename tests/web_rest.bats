#!/usr/bin/env bats
# web_rest.bats — the REST mirror of the tree: submit, info,
# response (long-poll and ?wait=0), cancel, types and stats, and the
# errors, each as JSON with the TCP protocol's codes.

load 'helpers/daemon'
load 'helpers/web'
load 'helpers/conn'

setup() {
	start_web
}

@test "POST /types/T/jobs answers 201 with the id; a worker's result comes back on GET /jobs/ID/response" {
	run hcurl -i --json '{"n":1}' "$H/types/echo/jobs?id=j1&priority=5"
	[[ "$output" == *"201 Created"* ]]
	[[ "$output" == *"Location: /jobs/j1"* ]]
	[ "$(tail -n1 <<<"$output")" = '{"id":"j1"}' ]
	[ "$(hcurl "$H/jobs/j1" | jq -c '[.id,.type,.status,.priority]')" = '["j1","echo","queued",5]' ]
	[ "$(hstatus "$H/jobs/j1/response?wait=0")" = 202 ]
	# A long-poll waits for the worker.
	hcurl "$H/jobs/j1/response" >"$BATS_TEST_TMPDIR/resp" &
	BG_PIDS+=("$!")
	wait_until 10 http_stat_is .http.waiting 1
	bg "$JOBCTL" work echo -- cat
	wait_until 10 test -s "$BATS_TEST_TMPDIR/resp"
	[ "$(cat "$BATS_TEST_TMPDIR/resp")" = '{"n":1}' ]
	# Once done, it answers at once, and the job is in the tree's terms.
	[ "$(hcurl "$H/jobs/j1/response?wait=0")" = '{"n":1}' ]
	[ "$(hcurl "$H/jobs/j1" | jq -r .status)" = done ]
	# The broker assigns an id when none is given.
	id=$(hcurl --json '"x"' "$H/types/echo/jobs" | jq -r .id)
	[ -n "$id" ]
	[ "$(hcurl "$H/jobs/$id/response")" = '"x"' ]
	other_clients_ok
}

@test "GET /types, /types/T and /stats report what the TCP stats request does" {
	hcurl --json 1 "$H/types/a/jobs?id=q1" >/dev/null
	hcurl --json 2 "$H/types/a/jobs?id=q2" >/dev/null
	[ "$(hcurl "$H/types" | jq -c '.a | [.queued,.submitted]')" = '[2,2]' ]
	[ "$(hcurl "$H/types/a" | jq -c '[.name,.queued,.queue_head]')" = '["a",2,["q1","q2"]]' ]
	[ "$(hcurl "$H/stats" | jq -c '[.queued,.submitted]')" = "$(daemon_stat '| [.queued,.submitted]')" ]
	[ "$(hstatus "$H/types/nosuch")" = 404 ]
	other_clients_ok
}

@test "a failed, cancelled or timed-out job answers 500, 409, 504 with its ending" {
	hcurl --json 1 "$H/types/slow/jobs?id=c1" >/dev/null
	hcurl "$H/jobs/c1/response" -o "$BATS_TEST_TMPDIR/c1" -w '%{http_code}' >"$BATS_TEST_TMPDIR/c1.code" &
	BG_PIDS+=("$!")
	wait_until 10 http_stat_is .http.waiting 1
	[ "$(hcurl -X DELETE "$H/jobs/c1" | jq -c '[.status,.forgotten]')" = '["queued",true]' ]
	wait_until 10 test -s "$BATS_TEST_TMPDIR/c1.code"
	[ "$(cat "$BATS_TEST_TMPDIR/c1.code")" = 409 ]
	[ "$(jq -r .error "$BATS_TEST_TMPDIR/c1")" = cancelled ]
	[ "$(hstatus "$H/jobs/c1")" = 404 ]
	# timeout (the job's own, in ms)
	hcurl --json 1 "$H/types/slow/jobs?id=t1&timeout=100" >/dev/null
	run hcurl -w '%{http_code}' "$H/jobs/t1/response"
	[[ "$output" == *'"error":"timeout"'*504 ]]
	# failed: a worker lost four times
	hcurl --json 1 "$H/types/lossy/jobs?id=f1" >/dev/null
	for i in 1 2 3 4; do
		printf '%s\n' '{"type":"join","job_type":"lossy"}' | "$JOBCTL" raw --worker -n 1 -t 5000 >/dev/null
	done
	run hcurl -w '%{http_code}' "$H/jobs/f1/response"
	[[ "$output" == *'"error":"job_failed"'*500 ]]
	other_clients_ok
}

@test "bad input: 400 invalid_json, 400 invalid_type, 404, 405, 409 id_exists, all JSON" {
	run hcurl -w ' %{http_code}' --json 'nope' "$H/types/e/jobs"
	[[ "$output" == *'"error":"invalid_json"'*' 400' ]]
	run hcurl -w ' %{http_code}' -X POST "$H/types/e/jobs"
	[[ "$output" == *'"error":"invalid_json"'*' 400' ]]
	run hcurl -w ' %{http_code}' --json 1 "$H/types/e/jobs?priority=high"
	[[ "$output" == *'"error":"invalid_type"'*' 400' ]]
	run hcurl -w ' %{http_code}' --json 1 "$H/types/e/jobs?timeout=-1"
	[[ "$output" == *'"error":"invalid_type"'*' 400' ]]
	run hcurl -w ' %{http_code}' --json 1 "$H/types/%2E%2E/jobs"
	[[ "$output" == *'"error":"invalid_type"'*' 400' ]]
	run hcurl -w ' %{http_code}' "$H/no/such/path"
	[[ "$output" == *'"error":"not_found"'*' 404' ]]
	run hcurl -w ' %{http_code}' "$H/jobs/none"
	[[ "$output" == *'"error":"unknown_id"'*' 404' ]]
	run hcurl -i -X PUT "$H/jobs/none"
	[[ "$output" == *"405 Method Not Allowed"* ]]
	[[ "$output" == *"Allow: GET, DELETE"* ]]
	[[ "$output" == *'"error":"method_not_allowed"'* ]]
	run hcurl -w ' %{http_code}' -X GET "$H/types/e/jobs"
	[[ "$output" == *'"error":"method_not_allowed"'*' 405' ]]
	hcurl --json 1 "$H/types/e/jobs?id=dup" >/dev/null
	run hcurl -w ' %{http_code}' --json 1 "$H/types/e/jobs?id=dup"
	[[ "$output" == *'"error":"id_exists"'*'"id":"dup"'*' 409' ]]
	# Every error above is one JSON object.
	hcurl "$H/jobs/none" | jq -e .reason >/dev/null
	other_clients_ok
}

@test "ids that are not file names travel percent-encoded in the path" {
	run hcurl -i --json 1 "$H/types/e/jobs?id=a%2Fb%20c"
	[[ "$output" == *"Location: /jobs/a%2Fb%20c"* ]]
	[ "$(hcurl "$H/jobs/a%2Fb%20c" | jq -r .id)" = 'a/b c' ]
	[ "$(hstatus "$H/jobs/a%2Fb%20c/response?wait=0")" = 202 ]
	other_clients_ok
}

@test "GET /jobs/ID/body shows the body; POST /jobs/ID/cancel ends the job and keeps it listed" {
	hcurl --json '{"b": [1, 2]}' "$H/types/e/jobs?id=b1" >/dev/null
	[ "$(hcurl "$H/jobs/b1/body")" = '{"b":[1,2]}' ]
	[ "$(hcurl -X POST "$H/jobs/b1/cancel")" = '{"id":"b1","status":"cancelled"}' ]
	[ "$(hcurl "$H/jobs/b1" | jq -r .status)" = cancelled ]
	[ "$(daemon_stat .cancelled)" = 1 ]
	[ "$(hstatus -X POST "$H/jobs/b1/cancel")" = 404 ]
	[ "$(hstatus "$H/jobs/b1/cancel")" = 405 ]
	[ "$(hstatus "$H/jobs/nosuch/body")" = 404 ]
	other_clients_ok
}

@test "GET /types/T leaves out the head of a queue too long to sort on every look" {
	seq 1 10001 | sed 's/.*/{"type":"job","job_type":"long","id":&,"body":&,"detach":true}/' | "$JOBCTL" raw -t 1000 >/dev/null || true
	wait_until 20 http_stat_is .queued 10001
	[ "$(hcurl "$H/types/long" | jq -c '[.queued, .queue_head_omitted, (.queue_head | length)]')" = '[10001,true,0]' ]
	[ "$(hcurl "$H/types/long?queue=1" | jq -c '[.queue_head_omitted, (.queue_head | length)]')" = '[null,100]' ]
	other_clients_ok
}

@test "a query parameter a path does not take is refused with 400 naming it, not ignored" {
	run hcurl -w ' %{http_code}' --json 1 "$H/types/e/jobs?id=u1&delai=5000"
	[[ "$output" == *'"error":"invalid_type"'*'unknown query parameter \"delai\"'*' 400' ]]
	[[ "$output" == *'takes id, priority, timeout, retries, backoff, delay, at, after'* ]]
	[ "$(hstatus "$H/jobs/u1")" = 404 ]
	[ "$(daemon_stat .submitted)" = 0 ]
	hcurl --json 1 "$H/types/e/jobs?id=u2" >/dev/null
	run hcurl -w ' %{http_code}' "$H/jobs/u2/response?wiat=0"
	[[ "$output" == *'unknown query parameter \"wiat\"'*' 400' ]]
	run hcurl -w ' %{http_code}' "$H/jobs/u2?wait=0"
	[[ "$output" == *'unknown query parameter \"wait\"'*'takes none'*' 400' ]]
	run hcurl -w ' %{http_code}' "$H/types/e?qeue=1"
	[[ "$output" == *'unknown query parameter \"qeue\"'*' 400' ]]
	run hcurl -w ' %{http_code}' "$H/events?job=failed"
	[[ "$output" == *'unknown query parameter \"job\"'*' 400' ]]
	run hcurl -w ' %{http_code}' "$H/stats?verbose=1"
	[[ "$output" == *'unknown query parameter \"verbose\"'*' 400' ]]
	run hcurl -w ' %{http_code}' --json 1 "$H/pub/c?x"
	[[ "$output" == *'unknown query parameter \"x\"'*' 400' ]]
	# The parameters they do take still work.
	[ "$(hstatus "$H/jobs/u2/response?wait=0")" = 202 ]
	[ "$(hcurl "$H/types/e?queue=1" | jq -c .queue_head)" = '["u2"]' ]
	hcurl "$H/jobs/u2/response?wiat=0" | jq -e .reason >/dev/null
	other_clients_ok
}

@test "POST /types/T/jobs takes the lifecycle options of a TCP submit: delay, retries, backoff, at, after" {
	run hcurl -w ' %{http_code}' --json 1 "$H/types/l/jobs?id=d1&delay=60000&retries=3&backoff=50"
	[[ "$output" == *' 201' ]]
	[ "$(hcurl "$H/jobs/d1" | jq -c '[.status, .retries]')" = '["delayed",3]' ]
	hcurl "$H/jobs/d1" | jq -e '.due > now + 50'
	at=$(( $(date +%s) * 1000 + 60000 ))
	[ "$(hstatus --json 1 "$H/types/l/jobs?id=a1&at=$at")" = 201 ]
	[ "$(hcurl "$H/jobs/a1" | jq -r .status)" = delayed ]
	# after: one id per parameter
	[ "$(hstatus --json 1 "$H/types/l/jobs?id=w1&after=d1&after=a1")" = 201 ]
	[ "$(hcurl "$H/jobs/w1" | jq -c '[.status, .after]')" = '["waiting",["d1","a1"]]' ]
	# retries=0: one failure and the job is dead, not retried.
	[ "$(hstatus --json 1 "$H/types/f/jobs?id=f0&retries=0")" = 201 ]
	bg "$JOBCTL" work --fail f -- sh -c "cat >/dev/null; exit 1"
	wait_until 10 eval '[ "$(hcurl "$H/jobs/f0" | jq -r .status)" = failed ]'
	[ "$(hcurl "$H/jobs/f0" | jq -c '[.retries, .attempts_total]')" = '[0,1]' ]
	other_clients_ok
}

@test "a lifecycle option out of its range answers 400 with the broker's reason, as over TCP" {
	run hcurl -w ' %{http_code}' --json 1 "$H/types/e/jobs?retries=-1"
	[[ "$output" == *'"error":"invalid_type"'*'\"retries\" must be 0 to'*' 400' ]]
	run hcurl -w ' %{http_code}' --json 1 "$H/types/e/jobs?delay=999999999999"
	[[ "$output" == *'\"delay\" must be 0 to'*' 400' ]]
	run hcurl -w ' %{http_code}' --json 1 "$H/types/e/jobs?backoff=0"
	[[ "$output" == *'\"backoff\" must be 1 to'*' 400' ]]
	run hcurl -w ' %{http_code}' --json 1 "$H/types/e/jobs?at=-5"
	[[ "$output" == *'\"at\" must be epoch milliseconds'*' 400' ]]
	run hcurl -w ' %{http_code}' --json 1 "$H/types/e/jobs?delay=soon"
	[[ "$output" == *'\"delay\" must be an integer'*' 400' ]]
	run hcurl -w ' %{http_code}' --json 1 "$H/types/e/jobs?after=nosuch"
	[[ "$output" == *'"error":"unknown_id"'*'nosuch'*' 400' ]]
	run hcurl -w ' %{http_code}' --json 1 "$H/types/e/jobs?id=s1&after=s1"
	[[ "$output" == *'cannot wait for itself'*' 400' ]]
	[ "$(daemon_stat .submitted)" = 0 ]
	other_clients_ok
}
