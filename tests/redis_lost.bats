#!/usr/bin/env bats
# redis_lost.bats — cluster mode when Redis loses the cluster's data while
# the daemons run: FLUSHALL (the functions stay), or Redis restarted
# without persistence (the functions go too).  Every daemon notices (the
# epoch key P:epoch changed), registers again, and ends each job Redis no
# longer has as failed, with a reason naming Redis: its master hears it,
# a worker running it is told to cancel, a tree reader waiting for its
# response gets EIO.  A library flushed alone (FUNCTION FLUSH) is loaded
# again, and what waited for it is sent again.  Each test ends with fresh
# jobs across daemons.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'
load 'helpers/redis'
load 'helpers/cluster'

setup() {
	redis_start
}

# lost_frame NAME ID: NAME's one frame about job ID is the ending of a
# job that Redis lost: job_failed, with a reason that says so.
lost_frame() {
	local f
	f=$(received "$1" | jq -c --arg id "$2" 'select(.id == $id)')
	is_error "$f" job_failed "\"$2\"" || return 1
	[[ "$(jq -r .reason <<<"$f")" == "Redis lost this job"* ]] || {
		echo "reason: $f" >&2
		return 1
	}
}

# cancels NAME: the cancel frames worker NAME received, as their ids.
cancels() {
	received "$1" | jq -r 'select(.type == "cancel") | .id' | sort | tr '\n' ' '
}

cancels_are() {
	[ "$(cancels "$1")" = "$2" ]
}

# workers_counted T N: Redis counts N workers of type T in the cluster.
workers_counted() {
	[ "$(rcli HGET "$(rkey "t:$1")" workers)" = "$2" ]
}

# reading PID FILE: the cat that PID (a timeout) runs has FILE open.
reading() {
	local p
	p=$(pgrep -P "$1" cat) || return 1
	ls -l "/proc/$p/fd" 2>/dev/null | grep -qF "$2"
}

@test "FLUSHALL: every master hears its jobs end failed naming Redis; workers and the tree go on" {
	local rpid rc id
	start_node A --mount
	start_node B --mount
	# A's jobs run on B's worker, B's on A's; two more of each wait.
	use_node B
	conn_open WB --worker
	send WB '{"type":"join","job_type":"fl","worker":"wb","capacity":2,"cancel":true}'
	settle WB
	use_node A
	conn_open MA
	send MA '{"type":"job","job_type":"fl","id":"a1","body":1}' \
		'{"type":"job","job_type":"fl","id":"a2","body":2}'
	wait_jobs WB 2 20
	conn_open WA --worker
	send WA '{"type":"join","job_type":"fl","worker":"wa","capacity":2}'
	settle WA
	use_node B
	conn_open MB
	send MB '{"type":"job","job_type":"fl","id":"b1","body":1}' \
		'{"type":"job","job_type":"fl","id":"b2","body":2}'
	wait_jobs WA 2 20
	send MA '{"type":"job","job_type":"fl","id":"a3","body":3}'
	send MB '{"type":"job","job_type":"fl","id":"b3","body":3}'
	wait_until 20 st_is a3 queued
	wait_until 20 st_is b3 queued
	# B's tree waits for A's queued job.
	timeout 60 cat "$(node_mnt B)/jobs/a3/response" >"$BATS_TEST_TMPDIR/resp" \
		2>"$BATS_TEST_TMPDIR/resp.err" &
	rpid=$!
	wait_until 20 reading "$rpid" "$(node_mnt B)/jobs/a3/response"
	[ "$(rcli FLUSHALL)" = OK ]
	# Every master hears each of its jobs end, with the reason.
	wait_lines MA 3 60
	wait_lines MB 3 60
	for id in a1 a2 a3; do lost_frame MA "$id"; done
	for id in b1 b2 b3; do lost_frame MB "$id"; done
	# The worker that takes cancels is told; the reader gets EIO, not a hang.
	wait_until 30 cancels_are WB "a1 a2 "
	rc=0
	wait "$rpid" || rc=$?
	[ "$rc" = 1 ]
	grep -q 'Input/output error' "$BATS_TEST_TMPDIR/resp.err"
	[ "$(cat "$(node_mnt A)/jobs/a3/status")" = failed ]
	wait_until 20 grep -q 'lost by Redis' "$(node_log A)"
	wait_until 20 grep -q 'lost by Redis' "$(node_log B)"
	# Both daemons registered again: their leases and their workers.
	wait_until 30 workers_counted fl 2
	[ "$(rcli HLEN "$(rkey daemons)")" = 2 ]
	# The late answers of the worker that takes no cancels are dropped.
	send WA '{"type":"response","id":"b1","body":"late"}' \
		'{"type":"response","id":"b2","body":"late"}'
	settle WA
	[ -z "$(received WA | jq -c 'select(.error)')" ]
	# Both workers take fresh jobs, across daemons, on the same connections.
	send MA '{"type":"job","job_type":"fl","id":"n1","body":"n1","worker":"wb"}'
	send MB '{"type":"job","job_type":"fl","id":"n2","body":"n2","worker":"wa"}'
	wait_jobs WB 3 30
	wait_jobs WA 3 30
	[ "$(jobs_of WB | sed -n 3p | jq -r .id)" = n1 ]
	[ "$(jobs_of WA | sed -n 3p | jq -r .id)" = n2 ]
	send WB '{"type":"response","id":"n1","body":"n1 done"}'
	send WA '{"type":"response","id":"n2","body":"n2 done"}'
	wait_lines MA 4 30
	wait_lines MB 4 30
	same_json "$(line MA 4)" '{"id":"n1","body":"n1 done"}'
	same_json "$(line MB 4)" '{"id":"n2","body":"n2 done"}'
	round_trip A B
	round_trip B A
}

@test "Redis restarted empty: its jobs end failed naming Redis; the cluster works again" {
	start_node A
	start_node B
	use_node B
	conn_open W --worker
	send W '{"type":"join","job_type":"re","worker":"w","cancel":true}'
	settle W
	use_node A
	conn_open M
	send M '{"type":"job","job_type":"re","id":"r1","body":1}'
	wait_jobs W 1 20
	send M '{"type":"job","job_type":"re","id":"r2","body":2}'
	wait_until 20 st_is r2 queued
	# Redis goes, and comes back with nothing: no data, no functions.
	redis_stop
	rm -rf "$REDIS_DIR"
	redis_run
	wait_lines M 2 60
	lost_frame M r1
	lost_frame M r2
	wait_until 30 cancels_are W "r1 "
	wait_until 30 workers_counted re 1
	# The same worker takes a fresh job from A.
	send M '{"type":"job","job_type":"re","id":"r3","body":3}'
	wait_jobs W 2 30
	[ "$(jobs_of W | sed -n 2p | jq -r .id)" = r3 ]
	send W '{"type":"response","body":"r3 done"}'
	wait_lines M 3 30
	same_json "$(line M 3)" '{"id":"r3","body":"r3 done"}'
	round_trip
}

@test "FUNCTION FLUSH under a running job: loaded again, and the result still reaches its master" {
	# (a long lease: the result meets the missing library before a heartbeat does)
	NODE_LEASE=10000 start_node A
	NODE_LEASE=10000 start_node B
	use_node B
	join_worker W ff
	use_node A
	conn_open M
	send M '{"type":"job","job_type":"ff","id":"f1","body":1}'
	wait_jobs W 1 20
	[ "$(rcli FUNCTION FLUSH)" = OK ]
	send W '{"type":"response","body":"kept"}'
	wait_lines M 1 30
	same_json "$(line M 1)" '{"id":"f1","body":"kept"}'
	st_is f1 done
	# Whichever call met the empty library first (B's result, or either
	# daemon's heartbeat on a loaded machine) said so, and loaded it again.
	grep -q 'Function not found' "$(node_log A)" "$(node_log B)"
	round_trip
}
