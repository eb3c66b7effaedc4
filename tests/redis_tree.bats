#!/usr/bin/env bats
# redis_tree.bats — cluster mode: the tree on every host shows
# the whole cluster: a job submitted in one tree is listed, read and
# waited for in another; rmdir in one tree removes a job running on
# another daemon's worker; workers (with their daemon), queues and counters
# are the cluster's.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'
load 'helpers/redis'
load 'helpers/cluster'

setup() {
	redis_start
	start_node A --mount
	start_node B --mount
}

# reading PID FILE: the cat that PID (a timeout) runs has FILE open.
reading() {
	local p
	p=$(pgrep -P "$1" cat) || return 1
	ls -l "/proc/$p/fd" 2>/dev/null | grep -qF "$2"
}

# submit_in NODE TYPE BODY: a job written in NODE's tree; prints its id.
submit_in() {
	local fd id
	exec {fd}<>"$(node_mnt "$1")/types/$2/queue"
	echo "$3" >&"$fd"
	read -r id <&"$fd"
	exec {fd}>&-
	echo "$id"
}


@test "a job written in A's tree is listed, read and waited for in B's" {
	local id a b
	a=$(node_mnt A)
	b=$(node_mnt B)
	mkdir "$a/types/echo"
	wait_until 10 test -d "$b/types/echo"
	id=$(submit_in A echo '{"n":7}')
	# B lists it, and shows what it is, though only A held it.
	ls "$b/jobs" | grep -qx "$id"
	[ "$(cat "$b/jobs/$id/status")" = queued ]
	[ "$(cat "$b/jobs/$id/body")" = '{"n":7}' ]
	[ "$(cat "$b/jobs/$id/type")" = echo ]
	# A reader in B waits for it; a worker on B answers it.
	timeout 20 cat "$b/jobs/$id/response" >"$BATS_TEST_TMPDIR/resp" &
	local rpid=$!
	wait_until 10 reading "$rpid" "$b/jobs/$id/response"
	on B "$JOBCTL" work echo -- cat >/dev/null 2>&1 &
	BG_PIDS+=("$!")
	wait "$rpid"
	[ "$(cat "$BATS_TEST_TMPDIR/resp")" = '{"n":7}' ]
	[ "$(cat "$a/jobs/$id/response")" = '{"n":7}' ]
	[ "$(cat "$b/jobs/$id/status")" = done ]
	# A name no daemon knows is no job.
	[ ! -e "$b/jobs/0000000000000001.99" ]
	round_trip
}

@test "rmdir in B's tree removes a job running on A's worker, which is told" {
	local id
	use_node A
	conn_open W --worker
	send W '{"type":"join","job_type":"long","cancel":true}'
	settle W
	wait_until 10 test -d "$(node_mnt B)/types/long"
	id=$(submit_in B long '"forever"')
	wait_jobs W 1
	rmdir "$(node_mnt B)/jobs/$id"
	wait_until 10 grep -q '"cancel"' "$(conn_file W)"
	[ -z "$(rcli HGET "$(rkey "j:$id")" st)" ]
	[ ! -e "$(node_mnt B)/jobs/$id" ]
	round_trip
}

@test "workers, queue and counters in any tree are the cluster's" {
	local a b i
	a=$(node_mnt A)
	b=$(node_mnt B)
	use_node B
	conn_open W --worker
	send W '{"type":"join","job_type":"q","worker":"bee"}'
	settle W
	wait_until 10 test -d "$a/types/q"
	# A's tree lists B's worker, with its daemon's number.
	wait_until 10 grep -Eqx 'bee@2 127\.0\.0\.1:[0-9]+ idle' "$a/types/q/workers"
	wait_jobs W 0
	# Three jobs queued from A's tree behind a busy worker: B's tree lists
	# them in dispatch order.
	send W '{"type":"join","job_type":"q","worker":"bee","capacity":1}'
	submit_in A q '"first"' >/dev/null
	wait_jobs W 1
	for i in 1 2 3; do
		submit_in A q "$i" >>"$BATS_TEST_TMPDIR/ids"
	done
	[ "$(cat "$b/types/q/queue")" = "$(cat "$BATS_TEST_TMPDIR/ids")" ]
	grep -qx 'queued 3' "$b/types/q/stats"
	grep -qx 'running 1' "$b/types/q/stats"
	grep -qx 'workers 1' "$b/types/q/stats"
	wait_until 10 grep -Eq '^bee@2 [^ ]+ busy ' "$a/types/q/workers"
	grep -qx 'cluster_submitted 4' "$b/stats"
	round_trip
}

@test "the web face on one daemon shows and waits for another daemon's jobs" {
	local hp out
	hp=$(random_port)
	start_node C --http "127.0.0.1:$hp"
	use_node A
	conn_open M
	send M '{"action":"submit","type":"web","id":"w1","body":{"x":1}}' \
		'{"action":"submit","type":"web","id":"w2","body":2}'
	wait_lines M 2
	# C never held either: it asks Redis.
	out=$(curl -s --max-time 20 "http://127.0.0.1:$hp/jobs/w1")
	[ "$(jq -r .status <<<"$out")" = queued ]
	[ "$(curl -s --max-time 20 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$hp/jobs/nope")" = 404 ]
	curl -s --max-time 20 "http://127.0.0.1:$hp/jobs/w1/response" >"$BATS_TEST_TMPDIR/resp" &
	local cpid=$!
	on B "$JOBCTL" work web -- cat >/dev/null 2>&1 &
	BG_PIDS+=("$!")
	wait "$cpid"
	same_json "$(cat "$BATS_TEST_TMPDIR/resp")" '{"x":1}'
	wait_until 10 st_is w2 done
	round_trip
}
