#!/usr/bin/env bats
# requests.bats — master requests status, stats, ping and cancel, and the
# worker's "cancel":true option (SPEC 1.3).  Every job ends in exactly one
# state and its master hears that once.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/ext'

setup() {
	start_daemon
}

# ------------------------------------------------------------------- ping

@test "ping is answered with pong on the master port" {
	run "$JOBCTL" raw -n 1 <<<'{"type":"ping"}'
	[ "$status" = 0 ]
	[ "$output" = '{"type":"pong"}' ]
	run "$JOBCTL" raw -n 1 <<<'{"action":"ping"}'
	[ "$output" = '{"action":"pong"}' ]
	run timeout 10 "$JOBCTL" ping
	[ "$status" = 0 ]
}

@test "ping is answered with pong on the worker port, joined or not" {
	run "$JOBCTL" raw --worker -n 1 <<<'{"type":"ping"}'
	[ "$output" = '{"type":"pong"}' ]
	run "$JOBCTL" raw --worker -n 1 <<<'{"type":"join","job_type":"p"}
{"type":"ping"}'
	[ "$output" = '{"type":"pong"}' ]
}

# ----------------------------------------------------------------- status

@test "status of a queued job shows the fields of the tree's info" {
	conn_open M
	send M '{"type":"job","job_type":"st","id":"q","body":{"a":[1,2]},"priority":4,"timeout":60000}'
	settle M
	out=$(status_json '"q"')
	[ "$(jq -c '[.id,.type,.status,.priority,.requeues,.detach,.timeout_ms,.body_bytes]' <<<"$out")" = \
		'["q","st","queued",4,0,false,60000,11]' ]
	[ "$(jq -r '.submitted | type' <<<"$out")" = number ]
	[ "$(jq -c 'has("started"), has("worker"), has("result_bytes")' <<<"$out" | tr '\n' ' ')" = "false false false " ]
}

@test "status follows a job through running to done" {
	conn_open W --worker
	send W '{"type":"join","job_type":"st","worker":"w1"}'
	settle W
	conn_open M
	send M '{"type":"job","job_type":"st","id":17,"body":"x","detach":true}'
	wait_frame W '.type == "job"'
	out=$(status_json 17)
	[ "$(jq -c '[.id,.status,.worker,.detach]' <<<"$out")" = '[17,"running","w1",true]' ]
	[ "$(jq -r '.started >= .submitted' <<<"$out")" = true ]
	send W '{"type":"response","body":"done!"}'
	wait_lines M 1
	out=$(status_json 17)
	[ "$(jq -c '[.id,.status,.worker,.result_bytes]' <<<"$out")" = '[17,"done","w1",7]' ]
	[ "$(jq -r '.finished >= .started' <<<"$out")" = true ]
	# The integer id and its decimal string name the same job.
	[ "$(status_json '"17"' | jq -c '[.id,.status]')" = '[17,"done"]' ]
}

@test "status of an unknown id is unknown_id" {
	run "$JOBCTL" raw -n 1 <<<'{"type":"status","id":"nope"}'
	[ "$(jq -c '[.error,.id]' <<<"$output")" = '["unknown_id","nope"]' ]
	run "$JOBCTL" raw -n 1 <<<'{"type":"status"}'
	[ "$output" = '{"error":"missing_field","name":"id"}' ]
	run "$JOBCTL" raw -n 1 <<<'{"type":"status","id":[1]}'
	[ "$(jq -r .error <<<"$output")" = invalid_type ]
	run "$JOBCTL" raw --worker -n 1 <<<'{"type":"status","id":"nope"}'
	[ "$(jq -c '[.error,.id]' <<<"$output")" = '["unknown_type","nope"]' ]
	assert_daemon_healthy
}

# ------------------------------------------------------------------ stats

@test "stats counts jobs by outcome, overall and per type" {
	bg "$JOBCTL" work sa -- cat
	wait_until 5 workers_are sa 1
	conn_open M
	send M '{"type":"job","job_type":"sa","id":1,"body":1}' \
		'{"type":"job","job_type":"sa","id":2,"body":2}' \
		'{"type":"job","job_type":"sa","id":3,"body":3}' \
		'{"type":"job","job_type":"sb","id":4,"body":4}' \
		'{"type":"job","job_type":"sb","id":5,"body":5,"timeout":100}' \
		'{"type":"job","job_type":"sb","id":6,"body":6}'
	wait_lines M 4
	send M '{"type":"cancel","id":4}'
	wait_lines M 5
	out=$(printf '%s\n' '{"type":"stats"}' | "$JOBCTL" raw -n 1 -t 5000)
	[ "$(jq -c '.stats | [.submitted,.queued,.running,.done,.failed,.cancelled,.timeout,.requeued]' <<<"$out")" = \
		'[6,1,0,3,0,1,1,0]' ]
	[ "$(jq -c '.stats.types.sa | [.submitted,.queued,.running,.done,.cancelled,.timeout,.workers]' <<<"$out")" = \
		'[3,0,0,3,0,0,1]' ]
	[ "$(jq -c '.stats.types.sb | [.submitted,.queued,.running,.done,.cancelled,.timeout,.workers]' <<<"$out")" = \
		'[3,1,0,0,1,1,0]' ]
	[ "$(jq -r '[.stats.uptime, .stats.connections, .stats.masters, .stats.workers] | map(type) | unique | .[]' <<<"$out")" = number ]
	[ "$(jq -c '.stats | [.masters,.workers]' <<<"$out")" = '[2,1]' ]
	# jobctl stats prints the same counters as "name value" lines.
	run timeout 10 "$JOBCTL" stats
	[ "$status" = 0 ]
	[[ $output == *$'\ntypes.sb.cancelled 1\n'* ]]
	[[ $output == *$'\ndone 3\n'* ]]
}

@test "stats is refused on the worker port" {
	run "$JOBCTL" raw --worker -n 1 <<<'{"type":"stats"}'
	[ "$(jq -r .error <<<"$output")" = unknown_type ]
	assert_daemon_healthy
}

# ----------------------------------------------------------------- cancel

@test "cancelling a queued job ends it once and no worker ever gets it" {
	conn_open M
	send M '{"type":"job","job_type":"cq","id":"c1","body":1}'
	settle M
	send M '{"type":"cancel","id":"c1"}'
	wait_frame M "$ENDING"
	settle M
	[ "$(frames M)" = '{"error":"cancelled","reason":"c1","id":"c1"}' ]
	[ "$(job_status '"c1"')" = cancelled ]
	conn_open W --worker
	send W '{"type":"join","job_type":"cq"}'
	settle W
	[ "$(frames W)" = "" ]
	# A second cancel finds no unfinished job.
	send M '{"type":"cancel","id":"c1"}'
	settle M
	[ "$(endings M '"c1"')" = 1 ]
	[ "$(frames M | tail -n 1 | jq -c '[.error,.id]')" = '["unknown_id","c1"]' ]
	[ "$(daemon_stat .cancelled)" = 1 ]
}

@test "cancelling a running job sends a cancel to a worker that asked for them" {
	conn_open W --worker
	send W '{"type":"join","job_type":"cr","cancel":true}'
	settle W
	conn_open M
	send M '{"type":"job","job_type":"cr","id":9,"body":1}' \
		'{"type":"job","job_type":"cr","id":10,"body":2}'
	wait_frame W '.type == "job"'
	send M '{"type":"cancel","id":9}'
	wait_frame M "$ENDING"
	[ "$(frames M)" = '{"error":"cancelled","reason":"9","id":9}' ]
	# The cancel, then at once the next job: the slot is free.
	wait_frame W '.id == 10'
	[ "$(frames W)" = '{"type":"job","id":9,"body":1}
{"type":"cancel","id":9}
{"type":"job","id":10,"body":2}' ]
	[ "$(job_status 9)" = cancelled ]
	send W '{"type":"response","body":"ten"}'
	wait_frame M '.id == 10'
	[ "$(frames M '.id == 10')" = '{"id":10,"body":"ten"}' ]
}

@test "a cancel-accepting worker's late response naming its job is dropped, not taken for the next job" {
	conn_open W --worker
	send W '{"type":"join","job_type":"cr","cancel":true}'
	settle W
	conn_open M
	send M '{"type":"job","job_type":"cr","id":"first","body":1}' \
		'{"type":"job","job_type":"cr","id":"second","body":2}'
	wait_frame W '.type == "job"'
	send M '{"type":"cancel","id":"first"}'
	wait_frame W '.id == "second"'
	# The answer to "first" crossed the cancel; it names its job.
	send W '{"type":"response","id":"first","body":"stale"}'
	settle W M
	[ "$(frames M)" = '{"error":"cancelled","reason":"first","id":"first"}' ]
	[ "$(job_status '"second"')" = running ]
	[ "$(count W 'has("error")')" = 0 ]
	send W '{"type":"response","body":"fresh"}'
	wait_frame M '.id == "second"'
	[ "$(frames M '.id == "second"')" = '{"id":"second","body":"fresh"}' ]
}

@test "a worker without the cancel option gets no cancel frame; its late response is dropped silently" {
	conn_open W --worker
	send W '{"type":"join","job_type":"cr"}'
	settle W
	conn_open M
	send M '{"type":"job","job_type":"cr","id":"a","body":1}' \
		'{"type":"job","job_type":"cr","id":"b","body":2}'
	wait_frame W '.type == "job"'
	send M '{"type":"cancel","id":"a"}'
	wait_frame M "$ENDING"
	settle W
	[ "$(frames W)" = '{"type":"job","id":"a","body":1}' ]
	send W '{"type":"response","body":"late"}'
	wait_frame W '.id == "b"'
	settle W
	[ "$(frames W)" = '{"type":"job","id":"a","body":1}
{"type":"job","id":"b","body":2}' ]
	send W '{"type":"response","body":"B"}'
	wait_frame M '.id == "b"'
	settle M
	[ "$(frames M)" = '{"error":"cancelled","reason":"a","id":"a"}
{"id":"b","body":"B"}' ]
	[ "$(job_status '"a"')" = cancelled ]
}

@test "jobctl work --cancel stops the command of a cancelled job and stays silent" {
	bg "$JOBCTL" work --cancel --name killer cw -- sh -c "echo \$\$ >'$BATS_TEST_TMPDIR/pid'; exec sleep 30"
	wait_until 5 workers_are cw 1
	conn_open M
	send M '{"type":"job","job_type":"cw","id":"long","body":null}'
	wait_until 5 test -s "$BATS_TEST_TMPDIR/pid"
	cmd=$(cat "$BATS_TEST_TMPDIR/pid")
	proc_alive "$cmd"
	send M '{"type":"cancel","id":"long"}'
	wait_frame M "$ENDING"
	wait_until 10 eval '! proc_alive '"$cmd"
	settle M
	[ "$(frames M)" = '{"error":"cancelled","reason":"long","id":"long"}' ]
	[ "$(job_status '"long"')" = cancelled ]
	assert_daemon_healthy
}

cancel_race_once() {
	local i=$1 ending status
	send M "{\"type\":\"job\",\"job_type\":\"race\",\"id\":$i,\"body\":$i}"
	wait_frame W ".type == \"job\" and .id == $i"
	# Response and cancel on two connections at once: either may win.
	send W "{\"type\":\"response\",\"id\":$i,\"body\":\"r$i\"}" &
	local pid=$!
	send M "{\"type\":\"cancel\",\"id\":$i}"
	wait "$pid"
	settle W
	settle M
	[ "$(endings M "$i")" = 1 ] || { echo "job $i: $(endings M "$i") endings" >&2; return 1; }
	ending=$(frames M ".id == $i and $ENDING")
	status=$(job_status "$i")
	case $ending in
	"{\"id\":$i,\"body\":\"r$i\"}")
		# The response won: done, and the cancel found nothing to cancel.
		[ "$status" = done ] &&
			[ "$(count M ".id == $i and .error == \"unknown_id\"")" = 1 ] &&
			echo done >>"$BATS_TEST_TMPDIR/outcomes"
		;;
	"{\"error\":\"cancelled\",\"reason\":\"$i\",\"id\":$i}")
		# The cancel won: the worker's answer was dropped silently.
		[ "$status" = cancelled ] &&
			[ "$(count M ".id == $i and .error == \"unknown_id\"")" = 0 ] &&
			echo cancelled >>"$BATS_TEST_TMPDIR/outcomes"
		;;
	*)
		echo "job $i: unexpected ending $ending" >&2
		return 1
		;;
	esac
}

@test "a cancel racing the response ends the job exactly once, either way" {
	conn_open W --worker
	send W '{"type":"join","job_type":"race","cancel":true}'
	settle W
	conn_open M
	for i in $(seq 1 25); do
		cancel_race_once "$i"
	done
	[ "$(count W 'has("error")')" = 0 ]
	[ "$(($(daemon_stat .done) + $(daemon_stat .cancelled)))" = 25 ]
	[ "$(wc -l <"$BATS_TEST_TMPDIR/outcomes")" = 25 ]
	sort "$BATS_TEST_TMPDIR/outcomes" | uniq -c | sed "s/^ */# race outcomes: /" >&3 || true
}

@test "a cancel from another master: both the submitter and the canceller hear the ending" {
	conn_open M
	send M '{"type":"job","job_type":"cx","id":"shared","body":1}'
	settle M
	conn_open O
	send O '{"type":"cancel","id":"shared"}'
	wait_frame O "$ENDING"
	wait_frame M "$ENDING"
	settle M O
	[ "$(frames M)" = '{"error":"cancelled","reason":"shared","id":"shared"}' ]
	[ "$(frames O)" = '{"error":"cancelled","reason":"shared","id":"shared"}' ]
	[ "$(job_status '"shared"')" = cancelled ]
	[ "$(daemon_stat .cancelled)" = 1 ]
}

@test "cancelling a detached job after its master left: the canceller hears the ending" {
	conn_open M
	send M '{"type":"job","job_type":"cx","id":"orphan","body":1,"detach":true}'
	settle M
	conn_kill M
	wait_until 5 stat_is .masters 1  # the stats request itself
	run "$JOBCTL" raw -n 1 <<<'{"type":"cancel","id":"orphan"}'
	[ "$output" = '{"error":"cancelled","reason":"orphan","id":"orphan"}' ]
	[ "$(job_status '"orphan"')" = cancelled ]
}

@test "jobctl cancel of another master's running job reports the cancel" {
	conn_open W --worker
	send W '{"type":"join","job_type":"cx","cancel":true}'
	settle W
	conn_open M
	send M '{"type":"job","job_type":"cx","id":"r","body":1}'
	wait_frame W '.type == "job"'
	run timeout 10 "$JOBCTL" cancel r
	[ "$status" = 0 ]
	[ "$output" = '{"error":"cancelled","reason":"r","id":"r"}' ]
	wait_frame M "$ENDING"
	wait_frame W '.type == "cancel"'
	[ "$(frames M)" = '{"error":"cancelled","reason":"r","id":"r"}' ]
}

@test "cancelling an unknown or finished id is unknown_id" {
	bg "$JOBCTL" work cf -- cat
	wait_until 5 workers_are cf 1
	conn_open M
	send M '{"type":"cancel","id":"never"}' '{"type":"job","job_type":"cf","id":5,"body":1}'
	wait_frame M '.id == 5 and has("body")'
	send M '{"type":"cancel","id":5}' '{"type":"cancel","id":"5"}' '{"type":"cancel"}'
	settle M
	[ "$(frames M | jq -c '[.error,.id,.name]')" = '["unknown_id","never",null]
[null,5,null]
["unknown_id",5,null]
["unknown_id","5",null]
["missing_field",null,"id"]' ]
	[ "$(job_status 5)" = done ]
	run timeout 10 "$JOBCTL" cancel never
	[ "$status" = 1 ]
	assert_daemon_healthy
}

@test "a cancelled id may be submitted again" {
	conn_open M
	send M '{"type":"job","job_type":"again","id":"x","body":1}' '{"type":"cancel","id":"x"}' \
		'{"type":"job","job_type":"again","id":"x","body":2}'
	settle M
	[ "$(frames M)" = '{"error":"cancelled","reason":"x","id":"x"}' ]
	[ "$(job_status '"x"')" = queued ]
	bg "$JOBCTL" work again -- cat
	wait_frame M 'has("body")'
	[ "$(frames M | tail -n 1)" = '{"id":"x","body":2}' ]
}

@test "every job ends in exactly one state and its master hears it once" {
	# One of each ending, plus requeue after a lost worker.
	conn_open W --worker
	send W '{"type":"join","job_type":"all","capacity":4,"cancel":true}'
	settle W
	conn_open M
	send M '{"type":"job","job_type":"all","id":"done","body":1}' \
		'{"type":"job","job_type":"all","id":"cancel-running","body":2}' \
		'{"type":"job","job_type":"all","id":"timeout-running","body":3,"timeout":300}' \
		'{"type":"job","job_type":"all","id":"lost","body":4}' \
		'{"type":"job","job_type":"all","id":"cancel-queued","body":5}' \
		'{"type":"job","job_type":"all","id":"timeout-queued","body":6,"timeout":300}'
	wait_frame W '.type == "job"' 4
	send W '{"type":"response","id":"done","body":"ok"}'
	send M '{"type":"cancel","id":"cancel-running"}' '{"type":"cancel","id":"cancel-queued"}'
	wait_frame M '.id == "timeout-running" and .error == "timeout"'
	wait_frame M '.id == "timeout-queued" and .error == "timeout"'
	# The worker vanishes; "lost" goes back to the queue, once.
	conn_kill W
	wait_until 5 status_is '"lost"' queued
	# Three more losses fail it.
	for n in 1 2 3; do
		conn_open "L$n" --worker
		send "L$n" '{"type":"join","job_type":"all"}'
		wait_frame "L$n" '.id == "lost"'
		conn_kill "L$n"
	done
	wait_frame M '.id == "lost" and .error == "job_failed"'
	sleep 0.1
	settle M
	for id in done cancel-running timeout-running lost cancel-queued timeout-queued; do
		[ "$(endings M "\"$id\"")" = 1 ] || { echo "$id: $(endings M "\"$id\"") endings" >&2; false; }
	done
	[ "$(frames M "$ENDING" | jq -r '"\(.id) \(.error // "done")"' | sort)" = 'cancel-queued cancelled
cancel-running cancelled
done done
lost job_failed
timeout-queued timeout
timeout-running timeout' ]
	[ "$(job_status '"done"') $(job_status '"cancel-running"') $(job_status '"timeout-running"')" = "done cancelled timeout" ]
	[ "$(job_status '"lost"') $(job_status '"cancel-queued"') $(job_status '"timeout-queued"')" = "failed cancelled timeout" ]
	[ "$(daemon_stat '| [.done,.cancelled,.timeout,.failed,.requeued,.queued,.running]')" = '[1,2,2,1,3,0,0]' ]
}
