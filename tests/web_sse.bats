#!/usr/bin/env bats
# web_sse.bats — EventSource (issue 10): GET /sub/C streams channel C,
# POST /pub/C publishes, GET /events streams the broker's events; a slow
# reader misses events, with a count, rather than growing the daemon.

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
	wait_until 10 bash -c "grep -q '^event: stats' '$BATS_TEST_TMPDIR/ev'"
	ev=$BATS_TEST_TMPDIR/ev
	grep -q '^data: {"worker":"[^"]*","type":"flow"}' "$ev"
	grep -q '^event: worker_joined' "$ev"
	grep -q '^event: type_added' "$ev"
	[ "$(grep -A1 '^event: submitted' "$ev" | sed -n 's/^data: //p' | jq -r .id | grep '^f' | sort | tr '\n' ' ')" = 'f1 f2 f3 ' ]
	[ "$(grep -A1 '^event: finished' "$ev" | sed -n 's/^data: //p' | jq -r 'select(.id=="f2") | .state')" = done ]
	grep -A1 '^event: started' "$ev" | grep -q '"id":"f3"'
	# Event ids rise.
	ids=$(sed -n 's/^id: //p' "$ev")
	[ "$ids" = "$(sort -n <<<"$ids")" ]
	# The stats event carries the daemon's counters, per type too.
	[ "$(grep -A1 '^event: stats' "$ev" | sed -n 's/^data: //p' | tail -n1 | jq -c '.types.flow.done')" -ge 3 ]
	# ?jobs=failed: no job events but failures.
	run ! grep -q '^event: submitted' "$BATS_TEST_TMPDIR/evf"
	wait_until 10 bash -c "grep -A1 '^event: finished' '$BATS_TEST_TMPDIR/evf' | grep -q '\"state\":\"timeout\"'"
	[ "$(hstatus "$H/events?jobs=some")" = 400 ]
	other_clients_ok
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
	[ "$(http_stat .http.events_missed)" -gt 0 ]
	# The reader gets what comes after it catches up: publish until it
	# has seen a LAST.
	touch "$d/go"
	wait_until 20 publish_last_seen "$d"
	read -r got missed <"$d/result"
	[ "$missed" -gt 0 ]
	[ "$got" -gt 0 ]
	[ "$missed" = "$(http_stat .http.events_missed)" ]
	[ "$((got + missed))" -ge 4001 ]
	other_clients_ok
}
