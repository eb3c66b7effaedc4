#!/usr/bin/env bats
# web_sse.bats — EventSource: GET /sub/C streams channel C,
# POST /pub/C publishes, GET /events streams the broker's events; a slow
# reader misses events, with a count, rather than growing the daemon; an
# event is held once for every stream, and one larger than a stream's
# bound still reaches a reader that keeps up.

load 'helpers/daemon'
load 'helpers/web'
load 'helpers/conn'

setup() {
	start_web
}

# sse_data FILE: the data: lines of an SSE capture, without "data: ".
sse_data() {
	sed -n 's/^data: //p' "$1"
}

@test "GET /sub/C gets every message of C, published over TCP or by POST /pub/C; TCP subscribers get /pub too" {
	hcurl -N "$H/sub/news" >"$BATS_TEST_TMPDIR/sse" &
	BG_PIDS+=("$!")
	"$JOBCTL" subscribe -n 2 news >"$BATS_TEST_TMPDIR/tcp" &
	BG_PIDS+=("$!")
	wait_until 10 http_stat_is .http.streams 1
	wait_until 10 stat_is .channels 1
	"$JOBCTL" publish news '{"headline":"from tcp"}'
	run hcurl -w ' %{http_code}' --json '"from http"' "$H/pub/news"
	[ "$output" = $'{"channel":"news","delivered":2}\n 200' ]
	wait_until 10 bash -c "[ \$(grep -c '^data: ' '$BATS_TEST_TMPDIR/sse') = 2 ]"
	[ "$(sse_data "$BATS_TEST_TMPDIR/sse")" = $'{"headline":"from tcp"}\n"from http"' ]
	wait_until 10 bash -c "[ \$(wc -l <'$BATS_TEST_TMPDIR/tcp') = 2 ]"
	[ "$(cat "$BATS_TEST_TMPDIR/tcp")" = $'{"headline":"from tcp"}\n"from http"' ]
	# The head is an event stream.
	run hcurl -i --max-time 1 "$H/sub/news"
	[[ "$output" == *"Content-Type: text/event-stream"* ]]
	# Bad channel names and methods.
	[ "$(hstatus --json 1 "$H/pub/a%0Ab")" = 400 ]
	[ "$(hstatus --json 'x' "$H/pub/news")" = 400 ]
	[ "$(hstatus -X POST "$H/sub/news")" = 405 ]
	[ "$(hstatus "$H/pub/news")" = 405 ]
	other_clients_ok
}

# stats_event_done_at_least FILE N: the last stats event in the stream
# FILE counts at least N jobs of type flow done.
stats_event_done_at_least() {
	local done
	done=$(grep -A1 '^event: stats' "$1" | sed -n 's/^data: //p' | tail -n1 | jq -c '.types.flow.done // 0' 2>/dev/null)
	[ -n "$done" ] && [ "$done" -ge "$2" ]
}

@test "GET /events streams job, worker and type events with ids while jobs flow" {
	hcurl -N "$H/events" >"$BATS_TEST_TMPDIR/ev" &
	BG_PIDS+=("$!")
	hcurl -N "$H/events?jobs=failed" >"$BATS_TEST_TMPDIR/evf" &
	BG_PIDS+=("$!")
	wait_until 10 http_stat_is .http.streams 2
	bg "$JOBCTL" work flow -- cat
	for i in 1 2 3; do
		hcurl --json "$i" "$H/types/flow/jobs?id=f$i" >/dev/null
	done
	hcurl --json 0 "$H/types/flow/jobs?id=gone&timeout=1" >/dev/null || true
	for i in 1 2 3; do
		[ "$(hcurl "$H/jobs/f$i/response")" = "$i" ]
	done
	ev=$BATS_TEST_TMPDIR/ev
	# The stats event comes on a period: wait for one sent after the three
	# jobs were done, which carries the daemon's counters, per type too.
	wait_until 20 stats_event_done_at_least "$ev" 3
	grep -q '^data: {"worker":"[^"]*","type":"flow"}' "$ev"
	grep -q '^event: worker_joined' "$ev"
	grep -q '^event: type_added' "$ev"
	[ "$(grep -A1 '^event: submitted' "$ev" | sed -n 's/^data: //p' | jq -r .id | grep '^f' | sort | tr '\n' ' ')" = 'f1 f2 f3 ' ]
	[ "$(grep -A1 '^event: finished' "$ev" | sed -n 's/^data: //p' | jq -r 'select(.id=="f2") | .state')" = done ]
	grep -A1 '^event: started' "$ev" | grep -q '"id":"f3"'
	# Event ids rise.
	ids=$(sed -n 's/^id: //p' "$ev")
	[ "$ids" = "$(sort -n <<<"$ids")" ]
	# ?jobs=failed: no job events but failures.
	run ! grep -q '^event: submitted' "$BATS_TEST_TMPDIR/evf"
	wait_until 10 bash -c "grep -A1 '^event: finished' '$BATS_TEST_TMPDIR/evf' | grep -q '\"state\":\"timeout\"'"
	[ "$(hstatus "$H/events?jobs=some")" = 400 ]
	other_clients_ok
}

# rss_kib: the daemon's resident memory.
rss_kib() {
	awk '$1 == "VmRSS:" { print $2 }' "/proc/$DAEMON_PID/status"
}

# asan_daemon: the daemon under test is built with AddressSanitizer.
asan_daemon() {
	nm -D "$JOBFS" 2>/dev/null | grep -q __asan_init ||
		ldd "$JOBFS" 2>/dev/null | grep -q libasan
}

publish_last_seen() {
	"$JOBCTL" publish flood '"LAST"'
	test -s "$1/result"
}

@test "a slow SSE reader misses messages, with a count, and the daemon stays bounded" {
	d=$BATS_TEST_TMPDIR
	python3 "$BATS_TEST_DIRNAME/helpers/web_peer.py" slowsse "$HTTP_PORT" /sub/flood "$d" LAST &
	BG_PIDS+=("$!")
	wait_until 10 test -e "$d/ready"
	# 16 MB for a reader that takes nothing: more than the socket buffers
	# and the stream's bound together.
	pad=$(head -c 4000 /dev/zero | tr '\0' x)
	for i in $(seq 1 4000); do echo "\"$i $pad\""; done >"$d/msgs"
	"$JOBCTL" publish flood - <"$d/msgs"
	# The reader gets what comes after it catches up, after the count of
	# what it missed: publish until it has seen a LAST.
	touch "$d/go"
	wait_until 20 publish_last_seen "$d"
	read -r got missed <"$d/result"
	[ "$missed" -gt 0 ]
	[ "$got" -gt 0 ]
	[ "$missed" = "$(http_stat .http.events_missed)" ]
	[ "$((got + missed))" -ge 4001 ]
	other_clients_ok
}

@test "a 300 KiB channel message reaches a reading subscriber, and is not pushed out by the next" {
	d=$BATS_TEST_TMPDIR
	hcurl -N "$H/sub/big" >"$d/sse" &
	BG_PIDS+=("$!")
	wait_until 10 http_stat_is .http.streams 1
	python3 -c 'import json; print(json.dumps({"blob": "y" * 300 * 1024}))' >"$d/msg"
	run hcurl -w ' %{http_code}' --json @"$d/msg" "$H/pub/big"
	[ "$output" = $'{"channel":"big","delivered":1}\n 200' ]
	# Then a small one after it: the big one is not pushed out by it.
	hcurl --json '"after"' "$H/pub/big" >/dev/null
	wait_until 20 grep -q '^data: "after"' "$d/sse"
	[ "$(sse_data "$d/sse" | head -n1 | jq -r '.blob | length')" = $((300 * 1024)) ]
	[ "$(http_stat .http.events_missed)" = 0 ]
	other_clients_ok
}

@test "non-reading streams share their events: 300 of them stay far within the bound each, and jobs still flow" {
	d=$BATS_TEST_TMPDIR
	python3 "$BATS_TEST_DIRNAME/helpers/web_peer.py" idlesse "$HTTP_PORT" /sub/flood 300 "$d" &
	BG_PIDS+=("$!")
	wait_until 60 test -e "$d/ready"
	before=$(rss_kib)
	# 16 MB for readers that take nothing: each stream's bound (256 KiB)
	# many times over.
	pad=$(head -c 4000 /dev/zero | tr '\0' x)
	for i in $(seq 1 4000); do echo "\"$i $pad\""; done >"$d/msgs"
	"$JOBCTL" publish flood - <"$d/msgs"
	after=$(rss_kib)
	http_stat .http >"$d/stats"
	echo "rss before $before KiB, after $after KiB; $(cat "$d/stats")" >&2
	[ "$(jq .streams "$d/stats")" = 300 ]
	# Each stream is within its bound: 256 KiB of its log's events (the
	# oldest of which may pass it) and the one it is in the middle of
	# sending.
	[ "$(jq .stream_queued_bytes "$d/stats")" -le $((300 * (256 * 1024 + 2 * 4100))) ]
	[ "$(jq .streams_full "$d/stats")" = 300 ]
	# Held once, the events cost one bound for all, and one event per
	# stream at most (the one it is sending), where a copy per stream
	# would cost 300 bounds.
	[ "$(jq .event_bytes "$d/stats")" -le $((256 * 1024 + 301 * 4100)) ]
	# So does the daemon's memory (and what each connection's writing
	# holds): 64 KiB a stream at most.  (AddressSanitizer keeps freed
	# memory a while: its builds are judged by the counters alone.)
	if ! asan_daemon; then
		[ $((after - before)) -lt $((300 * 64)) ]
	fi
	touch "$d/go"
	other_clients_ok
}
