#!/usr/bin/env bats
# redis_failures.bats — cluster mode when things go wrong: Redis
# killed and restarted under load (with its AOF), a wrong password, a key
# of the wrong type planted by hand, bad frames.  Each ends with a fresh
# job across daemons.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'
load 'helpers/redis'
load 'helpers/cluster'

setup() {
	redis_start
}


# redis_kill9: Redis dies at once (SIGKILL), then starts again on its AOF.
redis_kill9() {
	kill -KILL "$REDIS_PID"
	wait "$REDIS_PID" 2>/dev/null || true
	REDIS_PID=
}


# acks NAME: how many {"ok":true} NAME received.
acks() {
	grep -c '"ok":true' "$(conn_file "$1")"
}

acks_are() {
	[ "$(acks "$1")" = "$2" ]
}

@test "Redis killed under load: unavailable while away, then every acknowledged job completes" {
	local fd i out
	start_node A --mount
	start_node B
	on B "$JOBCTL" work --capacity 2 ld -- sh -c 'sleep 0.1; cat' >/dev/null 2>&1 &
	BG_PIDS+=("$!")
	use_node A
	conn_open M
	for ((i = 1; i <= 40; i++)); do
		send M "{\"action\":\"submit\",\"type\":\"ld\",\"id\":$i,\"body\":$i}"
	done
	wait_until 20 acks_are M 40
	wait_until 20 conn_has_lines M 45
	redis_kill9
	wait_until 10 grep -q ': lost (' "$(node_log A)"
	# Away: submissions are refused with a reason, and so are tree writes.
	send M '{"action":"submit","type":"ld","id":"away","body":0}'
	wait_until 10 grep -q '"unavailable"' "$(conn_file M)"
	is_error "$(grep '"unavailable"' "$(conn_file M)" | head -n 1)" unavailable '"away"'
	run sh -c "echo '{\"t\":1}' > '$(node_mnt A)/types/ld/queue'"
	[ "$status" != 0 ]
	[[ "$output" == *"I/O error"* || "$output" == *"Input/output error"* ]] || { echo "tree write: $output" >&2; false; }
	redis_run
	wait_until 20 grep -q 'back after' "$(node_log A)"
	wait_until 20 grep -q 'back after' "$(node_log B)"
	# All 40 acknowledged jobs end, each once, with its own body.
	wait_until 60 conn_has_lines M 81
	out=$(grep -v '"ok"\|"error"' "$(conn_file M)")
	[ "$(jq -r .id <<<"$out" | sort -n | uniq | wc -l)" = 40 ]
	[ "$(jq -c 'select(.body == .id)' <<<"$out" | wc -l)" = 40 ]
	round_trip
}

@test "a wrong password: a clear log line, unavailable, the daemon stays up; the right one works" {
	rcli CONFIG SET requirepass s3cret >/dev/null
	start_node B --redis "redis://:s3cret@127.0.0.1:$REDIS_PORT"
	# A has no password: it says why and keeps trying.
	local mp wp
	mp=$(random_port)
	wp=$(random_port)
	"$JOBFS" -f --master-port "$mp" --worker-port "$wp" --redis "$REDIS_URL" \
		--redis-prefix "t$BATS_TEST_NUMBER" >"$BATS_TEST_TMPDIR/nopw.log" 2>&1 &
	BG_PIDS+=("$!")
	wait_until 10 grep -q 'NOAUTH\|Authentication required' "$BATS_TEST_TMPDIR/nopw.log"
	kill -0 "${BG_PIDS[-1]}"
	# The password from the environment, kept out of ps.
	JOBFS_REDIS_PASSWORD=s3cret start_node A
	run ps -o args= -p "${NODE_PID[A]}"
	[ "$status" = 0 ]
	[[ "$output" == *jobfs* ]]
	[[ "$output" != *s3cret* ]]
	round_trip
}

@test "a key of the wrong type planted by hand: a clear error for that type, others work" {
	start_node A
	start_node B
	rcli SET "$(rkey q:echo)" planted >/dev/null
	use_node A
	conn_open M
	send M '{"action":"submit","type":"echo","id":"e1","body":1}'
	wait_lines M 1
	is_error "$(line M 1)" unavailable '"e1"'
	[[ "$(line M 1)" == *WRONGTYPE*"q:echo"* ]]
	grep -q 'WRONGTYPE' "$(node_log A)"
	# Nothing of it was written.
	[ -z "$(rcli HGET "$(rkey j:e1)" st)" ]
	round_trip
	rcli DEL "$(rkey q:echo)" >/dev/null
	on B "$JOBCTL" work echo -- cat >/dev/null 2>&1 &
	BG_PIDS+=("$!")
	[ "$(on A timeout 20 "$JOBCTL" submit echo '"again"')" = '"again"' ]
}

@test "bad frames to a cluster daemon get their errors; other clients' jobs still complete" {
	start_node A
	start_node B
	use_node A
	conn_open M
	send M '{"type":"job","job_type":"x","id":1' '{"type":"job","job_type":"x","id":{},"body":1}'
	wait_lines M 2
	[ "$(line M 1 | jq -r .error)" = invalid_json ]
	[ "$(line M 2 | jq -r .error)" = invalid_type ]
	round_trip
}

@test "an ending published while a daemon's subscription was down still reaches its master" {
	NODE_LEASE=5000 start_node A
	NODE_LEASE=5000 start_node B
	use_node B
	join_worker W rs
	use_node A
	conn_open M
	send M '{"type":"job","job_type":"rs","id":"x1","body":1}'
	wait_jobs W 1
	# A is frozen and Redis drops its subscription: the ending B's worker
	# makes now is published to nobody (pub/sub keeps nothing).
	kill -STOP "${NODE_PID[A]}"
	rcli CLIENT KILL TYPE pubsub >/dev/null
	send W '{"type":"response","body":"done while away"}'
	wait_until 10 st_is x1 done || { kill -CONT "${NODE_PID[A]}"; false; }
	kill -CONT "${NODE_PID[A]}"
	# Back, A looks at its unfinished jobs again.
	wait_lines M 1 15
	same_json "$(line M 1)" '{"id":"x1","body":"done while away"}'
	grep -q 'looked at again' "$(node_log A)"
	round_trip
}

@test "20,000 submissions and their resync go to Redis a window at a time: the heartbeat is not kept waiting" {
	NODE_LEASE=3000 start_node A
	use_node A
	conn_open M
	# Detached jobs of a type no worker takes, written at once: all
	# unfinished, and every one is looked at again after the
	# subscription drops.
	awk 'BEGIN { for (i = 1; i <= 20000; i++)
		printf "{\"type\":\"job\",\"job_type\":\"many\",\"id\":\"m%d\",\"body\":%d,\"detach\":true}\n", i, i }' \
		>&"${CONN_FD[M]}"
	wait_until 120 stat_is .types.many.submitted 20000
	rcli CLIENT KILL TYPE pubsub >/dev/null
	wait_until 60 grep -q 'redis: the resync is over' "$(node_log A)"
	grep -q '20000 unfinished job(s) looked at again' "$(node_log A)"
	# The heartbeat shares the link and is answered after all sent before
	# it: sent at once, the calls kept it waiting past half the lease, the
	# link was dropped, and the resync began again, on and on.  Jobs in
	# calls not yet answered stay under the window (1,024, and one call of
	# at most 128 more), the resync's lookups under 256.
	local most
	most=$(daemon_stat .redis_in_flight_max)
	[ "$most" -gt 0 ]
	[ "$most" -le $((1024 + 128)) ]
	most=$(daemon_stat .redis_resync_in_flight_max)
	[ "$most" -gt 0 ]
	[ "$most" -le 256 ]
	round_trip A A
}
