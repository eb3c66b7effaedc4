#!/usr/bin/env bats
# redis_jobs.bats — cluster mode: what SPEC 1 gives one job, with
# its master and its worker on different daemons: stream partials, notify,
# cancel, timeout, detach, a master's disconnect, a worker that vanishes,
# targeted jobs.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'
load 'helpers/redis'
load 'helpers/cluster'

setup() {
	redis_start
	start_node A
	start_node B
}



# has_reply NAME: NAME received a frame besides settle's pongs.
has_reply() {
	[ -n "$(received "$1")" ]
}


@test "stream partials and the running notice reach a master on another daemon, in order" {
	use_node B
	join_worker W pt
	use_node A
	conn_open M
	send M '{"type":"job","job_type":"pt","id":"s1","body":"go","stream":true,"notify":true}'
	wait_jobs W 1
	wait_lines M 1
	same_json "$(line M 1)" "{\"id\":\"s1\",\"status\":\"running\",\"worker\":\"$(rcli HGET "$(rkey j:s1)" wk | sed 's/@2$//')\"}"
	send W '{"type":"partial","body":"p1"}' '{"type":"partial","body":{"n":2}}' \
		'{"type":"partial","body":[3,3,3]}' '{"type":"response","body":"final"}'
	wait_lines M 5
	[ "$(received M)" = "$(line M 1)
{\"id\":\"s1\",\"body\":\"p1\",\"partial\":true}
{\"id\":\"s1\",\"body\":{\"n\":2},\"partial\":true}
{\"id\":\"s1\",\"body\":[3,3,3],\"partial\":true}
{\"id\":\"s1\",\"body\":\"final\"}" ]
	[ "$(rcli LLEN "$(rkey p:s1)")" = 3 ]
	round_trip
}

@test "a big result (over an event's size) reaches the other daemon's master whole" {
	local big
	big=$(head -c 100000 /dev/zero | tr '\0' x)
	on B "$JOBCTL" work big -- sh -c "printf '\"%s\"' '$big'" >/dev/null 2>&1 &
	BG_PIDS+=("$!")
	[ "$(on A timeout 20 "$JOBCTL" submit big 1)" = "\"$big\"" ]
	round_trip
}

@test "cancel on the master's daemon stops the job on the worker's daemon" {
	use_node B
	conn_open W --worker
	send W '{"action":"join","type":"c","cancel":true}'
	settle W
	use_node A
	conn_open M
	send M '{"action":"submit","type":"c","id":"c1","body":1}'
	wait_jobs W 1
	send M '{"action":"cancel","id":"c1"}'
	wait_until 10 st_is c1 cancelled
	# The worker is told, and takes the next job at once.
	wait_lines W 4
	same_json "$(received W | tail -n 1)" '{"action":"cancel","id":"c1"}'
	send M '{"action":"submit","type":"c","id":"c2","body":2}'
	wait_jobs W 2
	send W '{"action":"respond","id":"c2","body":"two"}'
	wait_until 10 st_is c2 done
	round_trip
}

@test "a job may be cancelled from a daemon that neither submitted nor runs it" {
	start_node C
	use_node B
	conn_open W --worker
	send W '{"action":"join","type":"c","cancel":true}'
	settle W
	use_node A
	conn_open M
	send M '{"action":"submit","type":"c","id":"far","body":1}'
	wait_jobs W 1
	use_node C
	conn_open X
	send X '{"action":"cancel","id":"far"}'
	wait_until 10 st_is far cancelled
	wait_lines W 4
	same_json "$(received W | tail -n 1)" '{"action":"cancel","id":"far"}'
	# Its master on A hears the ending, and so does the canceller.
	wait_lines M 2
	is_error "$(line M 2)" cancelled '"far"'
	wait_lines X 1
	is_error "$(line X 1)" cancelled '"far"'
	round_trip
}

@test "timeout: a queued job and a running one end timeout across daemons" {
	use_node A
	conn_open M
	send M '{"type":"job","job_type":"slow","id":"q","body":1,"timeout":300}'
	wait_lines M 1
	is_error "$(line M 1)" timeout '"q"'
	[ "$(st q)" = timeout ]
	use_node B
	join_worker W slow
	use_node A
	send M '{"type":"job","job_type":"slow","id":"r","body":1,"timeout":500}'
	wait_jobs W 1
	wait_lines M 2
	is_error "$(line M 2)" timeout '"r"'
	[ "$(st r)" = timeout ]
	# The worker's late answer is dropped; it then takes the next job.
	send W '{"type":"response","body":"late"}'
	send M '{"type":"job","job_type":"slow","id":"next","body":1}'
	wait_jobs W 2
	send W '{"type":"response","body":"ok"}'
	wait_lines M 3
	same_json "$(line M 3)" '{"id":"next","body":"ok"}'
	round_trip
}

@test "a master's disconnect cancels its queued jobs, not its detached ones, cluster-wide" {
	use_node A
	conn_open M
	send M '{"type":"job","job_type":"det","id":"keep","body":"k","detach":true}' \
		'{"type":"job","job_type":"det","id":"drop","body":"d"}'
	settle M
	conn_kill M
	wait_until 10 st_is drop cancelled
	[ "$(st keep)" = queued ]
	on B "$JOBCTL" work det -- cat >/dev/null 2>&1 &
	BG_PIDS+=("$!")
	wait_until 10 st_is keep done
	[ "$(rcli HGET "$(rkey j:keep)" r)" = '"k"' ]
	round_trip
}

@test "a worker that vanishes: its job goes to a worker on another daemon; the 4th loss fails it" {
	local i node
	start_node C
	use_node A
	conn_open M
	send M '{"type":"job","job_type":"lose","id":"hot","body":"potato"}'
	settle M
	for i in 1 2 3 4; do
		node=B
		[ $((i % 2)) = 0 ] && node=C
		use_node $node
		join_worker "W$i" lose
		wait_jobs "W$i" 1
		conn_kill "W$i"
		if [ "$i" -lt 4 ]; then
			wait_until 10 st_is hot queued
			[ "$(rcli HGET "$(rkey j:hot)" ls)" = "$i" ]
		fi
	done
	wait_until 10 st_is hot failed
	wait_until 10 has_reply M
	is_error "$(received M)" job_failed '"hot"'
	round_trip
}

@test "a targeted job goes only to the named worker, on whichever daemon it is" {
	start_node C
	use_node B
	conn_open WA --worker
	send WA '{"type":"join","job_type":"tg","worker":"alpha"}'
	use_node C
	conn_open WB --worker
	send WB '{"type":"join","job_type":"tg","worker":"beta"}'
	settle WA WB
	use_node A
	conn_open M
	send M '{"type":"job","job_type":"tg","id":"for-beta","body":1,"worker":"beta"}'
	wait_jobs WB 1
	send M '{"type":"job","job_type":"tg","id":"any","body":2}'
	wait_jobs WA 1
	[ "$(jobs_of WA)" = '{"type":"job","id":"any","body":2}' ]
	[ "$(jobs_of WB)" = '{"type":"job","id":"for-beta","body":1}' ]
	send WB '{"type":"response","body":"b"}'
	send WA '{"type":"response","body":"a"}'
	wait_lines M 2
	[ "$(out_of M | sort)" = '{"id":"any","body":"a"}
{"id":"for-beta","body":"b"}' ]
	round_trip
}

@test "a worker's failure report fails the job on its master's daemon" {
	use_node B
	conn_open W --worker
	send W '{"action":"join","type":"f"}'
	settle W
	use_node A
	conn_open M
	send M '{"action":"submit","type":"f","id":"bad","body":1}'
	wait_jobs W 1
	send W '{"action":"fail","id":"bad","body":"disk on fire"}'
	wait_until 10 st_is bad failed
	wait_lines M 2
	is_error "$(line M 2)" job_failed '"bad"'
	round_trip
}

@test "after (dependencies) is refused in cluster mode, with a reason" {
	use_node A
	conn_open M
	send M '{"action":"submit","type":"x","id":"q","body":1}'
	wait_lines M 1
	send M '{"action":"submit","type":"x","id":"r","body":1,"after":["q"]}'
	wait_lines M 2
	is_error "$(line M 2)" invalid_type '"r"'
	[[ "$(line M 2)" == *"cluster mode"* ]]
	round_trip
}

@test "status and wait on one daemon for a job submitted on another" {
	start_node C
	use_node A
	conn_open M
	send M '{"action":"submit","type":"sw","id":"sw1","body":{"x":1}}'
	wait_lines M 1
	use_node B
	conn_open Q
	send Q '{"action":"status","id":"sw1"}'
	wait_lines Q 1
	[ "$(line Q 1 | jq -r .status)" = queued ]
	send Q '{"action":"wait","id":"sw1"}' '{"action":"status","id":"nope"}'
	wait_lines Q 2
	is_error "$(line Q 2)" unknown_id '"nope"'
	# A worker on C answers: the waiter on B hears the ending as the master does.
	on C "$JOBCTL" work sw -- cat >/dev/null 2>&1 &
	BG_PIDS+=("$!")
	wait_lines M 2
	same_json "$(line M 2)" '{"id":"sw1","body":{"x":1}}'
	wait_lines Q 3
	same_json "$(line Q 3)" '{"id":"sw1","body":{"x":1}}'
	send Q '{"action":"status","id":"sw1"}'
	wait_lines Q 4
	[ "$(line Q 4 | jq -r .status)" = done ]
	round_trip
}

@test "a pause on one daemon holds every daemon's workers; default retries are taken" {
	start_node C
	use_node B
	[ "$(request '{"type":"pause","job_type":"pz"}' | jq -c .paused)" = true ]
	join_worker WB pz
	use_node A
	conn_open M
	send M '{"type":"job","job_type":"pz","id":"p1","body":1}'
	settle M
	# The pause is the cluster's: a worker on C does not take it either.
	use_node C
	join_worker WC pz
	round_trip A C
	round_trip C B
	st_is p1 queued
	[ "$(jobs_of WB)$(jobs_of WC)" = "" ]
	use_node B
	[ "$(request '{"type":"resume","job_type":"pz"}' | jq -c .paused)" = false ]
	wait_until 10 st_is p1 running
	run request '{"type":"configure","job_type":"pz","retries":2}'
	[ "$(jq -c .retries <<<"$output")" = 2 ]
	round_trip
}
