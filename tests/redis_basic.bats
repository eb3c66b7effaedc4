#!/usr/bin/env bats
# redis_basic.bats — cluster mode: several daemons on one real
# redis-server serve one set of queues.  Masters on one daemon, workers on
# others (both dialects); each job to exactly one worker; priority then
# submission order across the cluster; ids unique across it; the tree on
# one host answered through another; bad options.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'
load 'helpers/redis'
load 'helpers/cluster'

setup() {
	redis_start
}



@test "a seed master on one daemon, a seed worker on another: the frames of gloom.txt" {
	start_node A
	start_node B
	use_node B
	join_worker W echo
	use_node A
	conn_open M
	send M '{"type": "job", "job_type": "echo", "id": "m1", "body": {"text": "hello"}}'
	wait_jobs W 1
	same_json "$(jobs_of W)" '{"type":"job","id":"m1","body":{"text":"hello"}}'
	send W '{"type": "response", "body": {"echo": "hello"}}'
	wait_lines M 1
	same_json "$(line M 1)" '{"id":"m1","body":{"echo":"hello"}}'
	settle M
	[ "$(received M | wc -l)" = 1 ]
	[ "$(rcli HGET "$(rkey j:m1)" st)" = done ]
	round_trip B A
}

@test "the later dialect across daemons: ok, then the result; integer ids" {
	start_node A
	start_node B
	use_node B
	conn_open W --worker
	send W '{"action":"join","type":"echo"}'
	settle W
	use_node A
	conn_open M
	send M '{"action":"submit","type":"echo","id":7,"body":[1,2]}'
	wait_lines M 1
	same_json "$(line M 1)" '{"ok":true,"id":7}'
	wait_lines W 2
	same_json "$(received W | tail -n 1)" '{"action":"job","type":"echo","id":7,"body":[1,2]}'
	send W '{"action":"respond","id":7,"body":{"sum":3}}'
	wait_lines M 2
	same_json "$(line M 2)" '{"id":7,"body":{"sum":3}}'
	round_trip A B
}

@test "200 jobs from one daemon, workers on two others: each runs exactly once" {
	local i out
	start_node A
	start_node B
	start_node C
	on B "$JOBCTL" work --capacity 4 n -- sh -c 'cat; echo " B"' >/dev/null 2>&1 &
	BG_PIDS+=("$!")
	on C "$JOBCTL" work --capacity 4 n -- sh -c 'cat; echo " C"' >/dev/null 2>&1 &
	BG_PIDS+=("$!")
	use_node A
	conn_open M
	for ((i = 1; i <= 200; i++)); do
		send M "{\"type\":\"job\",\"job_type\":\"n\",\"id\":$i,\"body\":$i}"
	done
	wait_until 60 conn_has_lines M 200
	settle M
	out=$BATS_TEST_TMPDIR/results
	received M >"$out"
	[ "$(wc -l <"$out")" = 200 ]
	# Every id once, each with its own number as the worker printed it.
	[ "$(jq -r '.id' "$out" | sort -n | uniq | wc -l)" = 200 ]
	[ "$(jq -r 'select(.body != null) | "\(.id)"' "$out" | wc -l)" = 200 ]
	[ "$(rcli HGET "$(rkey t:n)" done)" = 200 ]
	[ "$(rcli ZCARD "$(rkey q:n)")" = 0 ]
	round_trip C A
}

@test "priority, then submission order, across daemons" {
	local order
	start_node A
	start_node B
	start_node C
	use_node A
	conn_open MA
	use_node B
	conn_open MB
	send MA '{"type":"job","job_type":"p","id":"a1","priority":1,"body":"a1"}'
	settle MA
	send MB '{"type":"job","job_type":"p","id":"b5","priority":5,"body":"b5"}'
	settle MB
	send MA '{"type":"job","job_type":"p","id":"a5","priority":5,"body":"a5"}'
	settle MA
	send MB '{"type":"job","job_type":"p","id":"b0","body":"b0"}'
	settle MB
	send MA '{"type":"job","job_type":"p","id":"aneg","priority":-9223372036854775808,"body":"aneg"}'
	send MB '{"type":"job","job_type":"p","id":"bmax","priority":9223372036854775807,"body":"bmax"}'
	settle MA MB
	[ "$(rcli ZCARD "$(rkey q:p)")" = 6 ]
	on C "$JOBCTL" work p -- sh -c "cat >>'$BATS_TEST_TMPDIR/order'; echo" >/dev/null 2>&1 &
	BG_PIDS+=("$!")
	wait_until 20 lines_in "$BATS_TEST_TMPDIR/order" 6
	order=$(tr -d '"' <"$BATS_TEST_TMPDIR/order" | tr '\n' ' ')
	[ "$order" = "bmax b5 a5 a1 b0 aneg " ]
	round_trip A C
}

@test "an id in use on one daemon is refused on another, and free again once done" {
	start_node A
	start_node B
	use_node A
	conn_open MA
	send MA '{"action":"submit","type":"x","id":"same","body":1}'
	wait_lines MA 1
	same_json "$(line MA 1)" '{"ok":true,"id":"same"}'
	use_node B
	conn_open MB
	send MB '{"action":"submit","type":"x","id":"same","body":2}'
	wait_lines MB 1
	is_error "$(line MB 1)" id_exists '"same"'
	# Done on A's side: B may use the id again.
	use_node B
	conn_open W --worker
	send W '{"action":"join","type":"x"}'
	wait_lines W 2
	send W '{"action":"respond","id":"same","body":"one"}'
	wait_lines MA 2
	same_json "$(line MA 2)" '{"id":"same","body":"one"}'
	send MB '{"action":"submit","type":"x","id":"same","body":2}'
	wait_lines MB 2
	same_json "$(line MB 2)" '{"ok":true,"id":"same"}'
	round_trip B A
}

@test "a job written in one host's tree is answered by a worker on another and read there" {
	local id
	start_node A --mount
	start_node B --mount
	on B "$JOBCTL" work echo -- cat >/dev/null 2>&1 &
	BG_PIDS+=("$!")
	# A's tree lists the type once a worker on B has joined it.
	wait_until 10 test -d "$(node_mnt A)/types/echo"
	local fd
	exec {fd}<>"$(node_mnt A)/types/echo/queue"
	echo '{"n":1}' >&"$fd"
	read -r id <&"$fd"
	exec {fd}>&-
	[[ "$id" =~ ^[0-9]{16}\.[0-9]+$ ]]
	[ "$(timeout 20 cat "$(node_mnt A)/jobs/$id/response")" = '{"n":1}' ]
	# B's worker ran it (daemon 2); the id carries A's number (daemon 1),
	# so ids the trees give out are never the same twice.
	[[ "$(rcli HGET "$(rkey j:$id)" wk)" == *@2 ]]
	[ "${id##*.}" = 1 ]
	[ "$(rcli HGET "$(rkey j:$id)" o)" = 1 ]
	round_trip A B
}

@test "bad cluster options are refused at start" {
	run "$JOBFS" -f --redis http://x --master-port 0 --worker-port 0
	[ "$status" = 1 ]
	[[ "$output" == *"redis://"* ]]
	run "$JOBFS" -f --redis "$REDIS_URL" --data "$BATS_TEST_TMPDIR/d"
	[ "$status" = 1 ]
	[[ "$output" == *"do not go together"* ]]
	run "$JOBFS" -f --redis "$REDIS_URL" --redis-prefix 'a b'
	[ "$status" = 1 ]
	run "$JOBFS" -f --redis "$REDIS_URL" --redis-lease 50
	[ "$status" = 1 ]
	start_node A
	start_node B
	round_trip A B
}
