#!/usr/bin/env bats
# schedule.bats — repeating jobs on one daemon: a schedule fires a job of
# its type at each due time ("every" ms since the epoch, or "cron"), with
# its body and an id sched:TYPE:NAME:DUE; a second schedule of the same
# name replaces it, unschedule stops it, bad input is refused; with
# --data a restart keeps schedules and their last fired due time, and due
# times missed while down fire once.  The jobs here stay queued (no
# worker, unless a test joins one), so the queue lists every one fired.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'
load 'helpers/durable'
load 'helpers/web'

# sched_dues TYPE NAME: the due times of the queued jobs the schedule
# fired, sorted, one a line.
sched_dues() {
	request '{"type":"list","state":"queued","limit":1000}' |
		jq -r --arg p "sched:$1:$2:" '.jobs[].id | select(startswith($p)) | ltrimstr($p)' |
		sort -n
}

fired_at_least() {
	[ "$(sched_dues "$1" "$2" | wc -l)" -ge "$3" ]
}

stat_greater() {
	[ "$(daemon_stat "$1")" -gt "$2" ]
}

# now_past MS: the wall clock has passed MS (epoch milliseconds).
now_past() {
	[ "$(date +%s%3N)" -gt "$1" ]
}

@test "every: fires at each multiple of its period, with its body, as a normal job" {
	start_daemon
	out=$(request '{"type":"schedule","job_type":"t","name":"tick","every":200,"body":{"n":7}}')
	[ "$(jq -c '[.job_type,.name,.every,.body,.last]' <<<"$out")" = '["t","tick",200,{"n":7},null]' ]
	[ "$(( $(jq .next <<<"$out") % 200 ))" = 0 ]
	wait_until 20 fired_at_least t tick 3
	# Each due time once, each a multiple of 200 ms.
	dues=$(sched_dues t tick)
	[ "$(sort -u <<<"$dues" | wc -l)" = "$(wc -l <<<"$dues")" ]
	for d in $dues; do [ "$((d % 200))" = 0 ]; done
	[ "$(status_json "\"sched:t:tick:$(head -1 <<<"$dues")\"" | jq -r .status)" = queued ]
	# A worker gets them with the schedule's body.
	join_worker W t
	wait_jobs W 1
	[ "$(jobs_of W | head -1 | jq -c .body)" = '{"n":7}' ]
	[ "$(request '{"type":"schedules"}' | jq -c '[.schedules[] | [.name, (.last % 200), (.next > .last)]]')" = '[["tick",0,true]]' ]
}

@test "cron: parsed, listed with its next due minute (UTC); a schedule of the same name replaces it" {
	start_daemon
	out=$(request '{"action":"schedule","type":"t","name":"r","cron":"*/5 * * * *"}')
	[ "$(jq -c '[.cron,.body]' <<<"$out")" = '["*/5 * * * *",{}]' ]
	[ "$(( $(jq .next <<<"$out") % 300000 ))" = 0 ]
	request '{"type":"schedule","job_type":"t","name":"other","cron":"0 0 1 1 *"}' >/dev/null
	# Replaced by an every of 200 ms: one schedule, the new spec, and it fires.
	out=$(request '{"type":"schedule","job_type":"t","name":"r","every":200,"body":"new"}')
	[ "$(jq -c '[.every,.cron,.body]' <<<"$out")" = '[200,null,"new"]' ]
	[ "$(request '{"type":"schedules","job_type":"t"}' | jq -c '[.schedules[] | [.name, .every, .cron]]')" = '[["other",null,"0 0 1 1 *"],["r",200,null]]' ]
	wait_until 20 fired_at_least t r 2
	[ "$(sched_dues t other | wc -l)" = 0 ]
	[ "$(request '{"type":"schedules","job_type":"nope"}' | jq -c .schedules)" = '[]' ]
}

@test "unschedule stops it; another schedule goes on" {
	start_daemon
	request '{"type":"schedule","job_type":"t","name":"a","every":200}' >/dev/null
	wait_until 20 fired_at_least t a 1
	[ "$(request '{"type":"unschedule","job_type":"t","name":"a"}' | jq -c '[.unscheduled,.job_type,.name]')" = '[1,"t","a"]' ]
	n=$(sched_dues t a | wc -l)
	# b fires three times meanwhile: a would have fired at each too.
	request '{"type":"schedule","job_type":"t","name":"b","every":200}' >/dev/null
	wait_until 20 fired_at_least t b 3
	[ "$(sched_dues t a | wc -l)" = "$n" ]
	[ "$(request '{"type":"schedules"}' | jq -c '[.schedules[].name]')" = '["b"]' ]
}

@test "bad schedules are refused with a reason; another client's job completes" {
	start_daemon
	is_error "$(request '{"type":"schedule","job_type":"t","name":"x","cron":"* * * *"}')" invalid_type
	[[ "$(request '{"type":"schedule","job_type":"t","name":"x","cron":"* * * *"}' | jq -r .reason)" == *"not 5"* ]]
	[[ "$(request '{"type":"schedule","job_type":"t","name":"x","cron":"60 * * * *"}' | jq -r .reason)" == *"minute"* ]]
	[[ "$(request '{"type":"schedule","job_type":"t","name":"x","cron":"*/0 * * * *"}' | jq -r .reason)" == *"STEP"* ]]
	[[ "$(request '{"type":"schedule","job_type":"t","name":"x","cron":"0 0 31 2 *"}' | jq -r .reason)" == *"no day"* ]]
	[[ "$(request '{"type":"schedule","job_type":"t","name":"x","every":0}' | jq -r .reason)" == *"positive"* ]]
	[[ "$(request '{"type":"schedule","job_type":"t","name":"x","every":-5}' | jq -r .reason)" == *"positive"* ]]
	[[ "$(request '{"type":"schedule","job_type":"t","name":"x"}' | jq -r .reason)" == *"one of"* ]]
	[[ "$(request '{"type":"schedule","job_type":"t","name":"x","every":1000,"cron":"* * * * *"}' | jq -r .reason)" == *"one of"* ]]
	[[ "$(request '{"type":"schedule","job_type":"t","name":"a b","every":1000}' | jq -r .reason)" == *"name"* ]]
	[ "$(request '{"type":"schedule","job_type":"t","every":1000}')" = '{"error":"missing_field","name":"name"}' ]
	is_error "$(request '{"type":"schedule","job_type":"t","name":"x","every":"1s"}')" invalid_type
	is_error "$(request '{"type":"unschedule","job_type":"t","name":"none"}')" unknown_schedule
	[ "$(request '{"type":"schedules"}' | jq -c .schedules)" = '[]' ]
	assert_daemon_healthy
}

@test "with --data a restart keeps schedules and their last due time: no due time fires twice" {
	start_durable
	request '{"type":"schedule","job_type":"t","name":"yearly","cron":"0 0 1 1 *","body":{"big":[1,"x"]}}' >/dev/null
	request '{"type":"schedule","job_type":"t","name":"f","every":200,"priority":5}' >/dev/null
	wait_until 20 fired_at_least t f 2
	before=$(request '{"type":"schedules"}')
	crash_daemon
	start_durable
	after=$(request '{"type":"schedules","job_type":"t"}')
	[ "$(jq -c '[.schedules[] | [.name,.created,.cron,.every]]' <<<"$after")" = "$(jq -c '[.schedules[] | [.name,.created,.cron,.every]]' <<<"$before")" ]
	[ "$(jq -c '.schedules[] | select(.name == "f") | .last >= 0' <<<"$after")" = true ]
	[ "$(jq -c '.schedules[] | select(.name == "f") | .priority' <<<"$after")" = 5 ]
	wait_until 20 fired_at_least t f 4
	dues=$(sched_dues t f)
	[ "$(sort -u <<<"$dues" | wc -l)" = "$(wc -l <<<"$dues")" ]
	[ "$(sched_dues t yearly | wc -l)" = 0 ]
	[ "$(jq -c '.schedules[] | select(.name == "yearly") | .body' <<<"$after")" = '{"big":[1,"x"]}' ]
	request '{"type":"unschedule","job_type":"t","name":"f"}' >/dev/null
	crash_daemon
	start_durable
	[ "$(request '{"type":"schedules"}' | jq -c '[.schedules[].name]')" = '["yearly"]' ]
}

@test "due times missed while the daemon was down fire once on return" {
	start_durable
	request '{"type":"schedule","job_type":"t","name":"m","every":1000}' >/dev/null
	wait_until 20 fired_at_least t m 1
	crashed=$(date +%s%3N)
	crash_daemon
	# Down across at least two more due times.
	wait_until 20 now_past "$((crashed + 3000))"
	start_durable
	wait_until 20 grep -q 'schedule t/m: due times .* missed: fired once' "$DAEMON_LOG"
	[ "$(grep -c 'schedule t/m: due times .* missed' "$DAEMON_LOG")" = 1 ]
	dues=$(sched_dues t m)
	first_after=$(awk -v t="$crashed" '$1 > t' <<<"$dues" | head -1)
	# The earlier missed due times did not fire: the first after the
	# crash is the last before the restart.
	[ -n "$first_after" ]
	[ "$((first_after - crashed))" -ge 2000 ]
	[ "$(sort -u <<<"$dues" | wc -l)" = "$(wc -l <<<"$dues")" ]
}

@test "jobctl schedule, schedules, unschedule" {
	start_daemon
	out=$("$JOBCTL" schedule --priority 3 t tick --every 200ms '{"via":"jobctl"}')
	[ "$(jq -c '[.every,.body,.priority]' <<<"$out")" = '[200,{"via":"jobctl"},3]' ]
	"$JOBCTL" schedule t hourly --cron '0 * * * *' >/dev/null
	run "$JOBCTL" schedules t
	[ "$status" = 0 ]
	[ "${#lines[@]}" = 2 ]
	[[ "${lines[0]}" == $'t\thourly\tcron=0 * * * *\t'*':00:00Z' ]]
	[[ "${lines[1]}" == $'t\ttick\tevery=200ms\t'*Z ]]
	[ "$("$JOBCTL" schedules --json | jq -c '[.schedules[].name]')" = '["hourly","tick"]' ]
	wait_until 20 fired_at_least t tick 2
	run "$JOBCTL" schedule t bad --cron '0 * * *'
	[ "$status" = 1 ]
	[[ "$output" == *"not 5"* ]]
	run "$JOBCTL" schedule t bad --every 5x
	[ "$status" = 2 ]
	run "$JOBCTL" schedule t bad --every 1s --cron '* * * * *'
	[ "$status" = 2 ]
	[ "$("$JOBCTL" unschedule t tick | jq -c .unscheduled)" = 1 ]
	run "$JOBCTL" unschedule t tick
	[ "$status" = 1 ]
	[[ "$output" == *unknown_schedule* ]]
	[ "$("$JOBCTL" schedules)" = $'t\thourly\tcron=0 * * * *\t'"$("$JOBCTL" schedules | cut -f4)" ]
	assert_daemon_healthy
}

@test "types/T/schedules lists the type's schedules, one a line" {
	start_daemon_mounted
	request '{"type":"schedule","job_type":"t","name":"tick","every":200}' >/dev/null
	request '{"type":"schedule","job_type":"t","name":"daily","cron":"30 4 * * *"}' >/dev/null
	request '{"type":"schedule","job_type":"u","name":"other","cron":"0 0 1 1 *"}' >/dev/null
	wait_until 20 test -e "$MNT/types/t/schedules"
	run cat "$MNT/types/t/schedules"
	[ "$status" = 0 ]
	[ "${#lines[@]}" = 2 ]
	[[ "${lines[0]}" == $'daily\tcron=30 4 * * *\t'*'T04:30:00Z' ]]
	[[ "${lines[1]}" == $'tick\tevery=200ms\t'*Z ]]
	request '{"type":"unschedule","job_type":"t","name":"daily"}' >/dev/null
	[ "$(cut -f1 "$MNT/types/t/schedules")" = tick ]
}

@test "REST: PUT, GET, DELETE /types/T/schedules/N and GET /schedules" {
	start_web
	out=$(hcurl -X PUT --json '{"every":200,"body":{"via":"rest"},"retries":2}' "$H/types/t/schedules/tick")
	[ "$(jq -c '[.job_type,.name,.every,.body,.retries]' <<<"$out")" = '["t","tick",200,{"via":"rest"},2]' ]
	[ "$(hstatus -X PUT --json '{"cron":"15 3 * * 1-5"}' "$H/types/u/schedules/weekdays")" = 200 ]
	[ "$(hcurl "$H/schedules" | jq -c '[.schedules[] | [.job_type,.name]]')" = '[["t","tick"],["u","weekdays"]]' ]
	[ "$(hcurl "$H/types/u/schedules" | jq -c '[.schedules[].cron]')" = '["15 3 * * 1-5"]' ]
	[ "$(hcurl "$H/types/u/schedules/weekdays" | jq -c '.next % 60000')" = 0 ]
	wait_until 20 fired_at_least t tick 2
	# Refusals: bad spec, not JSON, unknown name, a method it does not take.
	[ "$(hcurl -X PUT --json '{"cron":"61 * * * *"}' "$H/types/t/schedules/x" | jq -r .error)" = invalid_type ]
	[ "$(hstatus -X PUT --json '{"every":100,"cron":"* * * * *"}' "$H/types/t/schedules/x")" = 400 ]
	[ "$(hstatus -X PUT --json '{"every":"1s"}' "$H/types/t/schedules/x")" = 400 ]
	[ "$(hstatus -X PUT --json 'nope' "$H/types/t/schedules/x")" = 400 ]
	[ "$(hstatus -X PUT --json '{"every":100}' "$H/types/t/schedules/a%20b")" = 400 ]
	[ "$(hstatus "$H/types/t/schedules/x")" = 404 ]
	[ "$(hstatus -X POST --json '{}' "$H/types/t/schedules/x")" = 405 ]
	# PUT without the JSON content type: the cross-site guard refuses it.
	[ "$(hstatus -X PUT -d '{"every":100}' "$H/types/t/schedules/x")" != 200 ]
	[ "$(hcurl -X DELETE -H 'Content-Type: application/json' "$H/types/t/schedules/tick" | jq -c .unscheduled)" = 1 ]
	[ "$(hcurl -X DELETE -H 'Content-Type: application/json' "$H/types/t/schedules/tick" | jq -r .error)" = unknown_schedule ]
	[ "$(hcurl "$H/schedules" | jq -c '[.schedules[].name]')" = '["weekdays"]' ]
	other_clients_ok
}

@test "a compaction of the journal keeps the schedules and their last due time" {
	export JOBFS_SEGMENT_BYTES=262144
	start_durable --keep-max 1
	request '{"type":"schedule","job_type":"s","name":"yearly","cron":"0 0 1 1 *","body":"y"}' >/dev/null
	request '{"type":"schedule","job_type":"s","name":"f","every":200}' >/dev/null
	request '{"type":"schedule","job_type":"s","name":"gone","every":200}' >/dev/null
	request '{"type":"unschedule","job_type":"s","name":"gone"}' >/dev/null
	wait_until 20 fired_at_least s f 1
	# 600 jobs of 1 KiB, cancelled and forgotten (--keep-max 1): the
	# journal compacts its segments into a snapshot.
	mkdir -p "$BATS_TEST_TMPDIR/out"
	python3 "$BATS_TEST_DIRNAME/helpers/compact_load.py" fill "$JOBFS_MASTER_PORT" q 600 1000 "$BATS_TEST_TMPDIR/out"
	python3 "$BATS_TEST_DIRNAME/helpers/compact_load.py" cancel "$JOBFS_MASTER_PORT" "$BATS_TEST_TMPDIR/out" q0-599
	wait_until 30 stat_greater .journal_compactions 0
	before=$(request '{"type":"schedules"}')
	crash_daemon
	start_durable --keep-max 1
	after=$(request '{"type":"schedules"}')
	[ "$(jq -c '[.schedules[] | [.name,.created,.body]]' <<<"$after")" = "$(jq -c '[.schedules[] | [.name,.created,.body]]' <<<"$before")" ]
	[ "$(jq -c '[.schedules[].name]' <<<"$after")" = '["f","yearly"]' ]
	# f's last due time is kept: at least the one before the crash.
	[ "$(jq '.schedules[0].last' <<<"$after")" -ge "$(jq '.schedules[0].last' <<<"$before")" ]
}
