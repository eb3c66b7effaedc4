#!/usr/bin/env bats
# framing.bats — the wire framing (SPEC 1): a 4-byte big-endian length and
# that many bytes of JSON holding one object.  Empty, unparsable and
# non-object frames, --max-frame, frames split into single bytes, many
# frames in one write, and clients that vanish mid-frame.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'

setup() {
	start_daemon
}

# restart_daemon OPTIONS...: the daemon of this test, with other options.
restart_daemon() {
	stop_daemon
	start_daemon "$@"
}

@test "an empty frame gets invalid_json and the connection stays usable" {
	conn_open M
	send M ''
	settle M
	is_error "$(line M 1)" invalid_json
	[ "$(line M 2)" = "$PONG" ]
	send M '' '' '{"type":"job","job_type":"empty","id":"e1","body":""}' ''
	settle M
	is_error "$(line M 3)" invalid_json
	is_error "$(line M 4)" invalid_json
	is_error "$(line M 5)" invalid_json
	[ "$(line M 6)" = "$PONG" ]
	join_worker W empty
	serve W 1
	wait_lines M 7
	same_json "$(line M 7)" '{"id":"e1","body":{"done":"e1"}}'
	assert_daemon_healthy
}

@test "text that is not JSON gets invalid_json and the connection stays usable" {
	local bad=(
		'not json'
		'{"type":"ping"'
		'{"type":"ping"} trailing'
		'{"type":"ping"}{"type":"ping"}'
		"{'type':'ping'}"
		'{"type":"ping",}'
		'{"type":"job","job_type":"t","id":"x","body":NaN}'
		'{"type":"job","job_type":"t","id":"x","body":01}'
		$'{"type":"job","job_type":"t","id":"bad utf-8 \xff\xfe","body":1}'
		$'{"type":"job","job_type":"t\xc3","id":"x","body":1}'
		'{"type":"job","job_type":"t","id":"x","body":"\ud80"}'
		' '
	)
	local i
	conn_open M
	for i in "${!bad[@]}"; do
		send M "${bad[$i]}"
		settle M
		is_error "$(line M $((2 * i + 1)))" invalid_json
		[ "$(line M $((2 * i + 2)))" = "$PONG" ]
	done
	[ "$(daemon_stat .submitted)" = 0 ]
	[ "$(daemon_stat .bad_frames)" = "${#bad[@]}" ]
	send M '{"type":"job","job_type":"t","id":"x","body":"good"}'
	join_worker W t
	serve W 1
	wait_lines M $((2 * ${#bad[@]} + 1))
	same_json "$(tail -n 1 "$(conn_file M)")" '{"id":"x","body":{"done":"x"}}'
	assert_daemon_healthy
}

@test "a JSON value that is not an object gets invalid_json" {
	local bad=('[]' '[{"type":"ping"}]' '"ping"' '42' '-1.5' 'null' 'true' 'false' '""')
	local i
	conn_open M
	conn_open W --worker
	for i in "${!bad[@]}"; do
		send M "${bad[$i]}"
		send W "${bad[$i]}"
	done
	settle M W
	for i in "${!bad[@]}"; do
		is_error "$(line M $((i + 1)))" invalid_json
		is_error "$(line W $((i + 1)))" invalid_json
	done
	# Both connections still work: the worker joins, the master submits.
	send W '{"type":"join","job_type":"obj"}'
	send M '{"type":"job","job_type":"obj","id":"o","body":[1]}'
	serve W 1
	wait_lines M $((${#bad[@]} + 2))
	same_json "$(tail -n 1 "$(conn_file M)")" '{"id":"o","body":{"done":"o"}}'
	assert_daemon_healthy
}

@test "a frame over --max-frame gets frame_too_large and closes only that connection" {
	restart_daemon --max-frame 1024
	conn_open M
	send M '{"type":"job","job_type":"big","id":"before","body":"queued first"}'
	conn_open W --worker
	settle M W
	# The header alone announces 1025 bytes: refused before any body.
	run "$JOBCTL" raw --unframed -n 2 -t 10000 < <(printf '\x00\x00\x04\x01{"type":')
	[ "$status" = 3 ]
	[ "${#lines[@]}" = 1 ]
	is_error "${lines[0]}" frame_too_large
	# A whole frame one byte too long, body and all, the same.
	local pad
	pad=$(printf 'x%.0s' $(seq 972))
	local frame="{\"type\":\"job\",\"job_type\":\"big\",\"id\":\"over\",\"body\":\"$pad\"}"
	[ "${#frame}" = 1025 ]
	run "$JOBCTL" raw -n 2 -t 10000 <<<"$frame"
	[ "$status" = 3 ]
	[ "${#lines[@]}" = 1 ]
	is_error "${lines[0]}" frame_too_large
	# The largest length there is.
	run "$JOBCTL" raw --worker --unframed -n 2 -t 10000 < <(printf '\xff\xff\xff\xff')
	[ "$status" = 3 ]
	is_error "${lines[0]}" frame_too_large
	[ "$(job_status '"over"')" = unknown_id ]
	# The other clients noticed nothing.
	conn_alive M
	conn_alive W
	send W '{"type":"join","job_type":"big"}'
	serve W 1
	wait_lines M 2
	same_json "$(line M 2)" '{"id":"before","body":{"done":"before"}}'
	settle M W
	[ "$(received M | wc -l)" = 1 ]
	assert_daemon_healthy
}

@test "a frame of exactly --max-frame bytes is accepted" {
	restart_daemon --max-frame 1024
	local pad frame
	pad=$(printf 'x%.0s' $(seq 971))
	frame="{\"type\":\"job\",\"job_type\":\"edge\",\"id\":\"max\",\"body\":\"$pad\"}"
	[ "${#frame}" = 1024 ]
	echo_worker edge
	run "$JOBCTL" raw -n 1 -t 10000 <<<"$frame"
	[ "$status" = 0 ]
	same_json "$output" "{\"id\":\"max\",\"body\":\"$pad\"}"
}

@test "the default --max-frame is 16 MiB" {
	local body
	# 16 MiB less a little: accepted.
	{
		printf '{"type":"job","job_type":"deflim","id":"under","body":"'
		head -c $((16 * 1024 * 1024 - 100)) /dev/zero | tr '\0' a
		printf '"}\n'
	} >"$BATS_TEST_TMPDIR/under"
	conn_open M
	cat "$BATS_TEST_TMPDIR/under" >&"${CONN_FD[M]}"
	settle M
	[ "$(job_status '"under"')" = queued ]
	run "$JOBCTL" raw --unframed -n 2 -t 10000 < <(printf '\x01\x00\x00\x01')
	[ "$status" = 3 ]
	is_error "${lines[0]}" frame_too_large
	conn_alive M
	assert_daemon_healthy
}

@test "frames dribbled one byte at a time are handled" {
	join_worker W drib
	conn_open M --dribble
	send M '{"type":"ping"}' '' '{"type":"job","job_type":"drib","id":"slow","body":{"bytes":"one at a time","n":[1,2,3]}}'
	wait_jobs W 1 20
	[ "$(jobs_of W)" = '{"type":"job","id":"slow","body":{"bytes":"one at a time","n":[1,2,3]}}' ]
	serve W 1
	wait_lines M 3 20
	[ "$(line M 1)" = "$PONG" ]
	is_error "$(line M 2)" invalid_json
	same_json "$(line M 3)" '{"id":"slow","body":{"done":"slow"}}'
	# A dribbling worker is served just as well.
	send M '{"type":"job","job_type":"drib2","id":"slow2","body":"x"}'
	conn_open D --worker --dribble
	send D '{"type":"join","job_type":"drib2"}'
	wait_jobs D 1 20
	[ "$(jobs_of D)" = '{"type":"job","id":"slow2","body":"x"}' ]
	send D '{"type":"response","body":{"dribbled":true}}'
	wait_lines M 4 20
	same_json "$(line M 4)" '{"id":"slow2","body":{"dribbled":true}}'
	[ "$(daemon_stat .bad_frames)" = 1 ]
}

@test "a thousand frames in one write are all handled" {
	local dir=$BATS_TEST_TMPDIR
	seq 1 1000 | awk '{ printf "{\"type\":\"job\",\"job_type\":\"burst\",\"id\":%d,\"body\":{\"n\":%d}}\n", $1, $1 }' |
		frames_from_lines >"$dir/burst"
	# One frame after another, no gaps: well over a thousand in 64 KiB.
	[ "$(stat -c %s "$dir/burst")" -lt 65536 ]
	echo_worker burst
	echo_worker burst
	run "$JOBCTL" raw --unframed -n 1000 -t 20000 <"$dir/burst"
	[ "$status" = 0 ]
	[ "${#lines[@]}" = 1000 ]
	[ "$(printf '%s\n' "${lines[@]}" | jq -c 'select(.body != {n: .id})')" = "" ]
	[ "$(printf '%s\n' "${lines[@]}" | jq -r .id | sort -n | uniq | wc -l)" = 1000 ]
	# And a thousand pings in one write get a thousand pongs, in one go.
	for i in $(seq 1000); do echo '{"type":"ping"}'; done | frames_from_lines >"$dir/pings"
	run "$JOBCTL" raw --unframed -n 1000 -t 10000 <"$dir/pings"
	[ "$status" = 0 ]
	[ "$(printf '%s\n' "${lines[@]}" | sort | uniq -c | awk '{ print $1, $2 }')" = "1000 $PONG" ]
}

@test "a client that disconnects mid-frame does not disturb the daemon" {
	conn_open M
	send M '{"type":"job","job_type":"mid","id":"kept","body":"still here"}'
	settle M
	# Half a header, then gone.
	run "$JOBCTL" raw --unframed -t 0 < <(printf '\x00\x00')
	[ "$status" = 0 ]
	# A header and half the body it announces, then gone.
	run "$JOBCTL" raw --unframed -t 0 < <(printf '\x00\x00\x00\x40{"type":"job","job_type":"mid","id":"half"')
	[ "$status" = 0 ]
	[ "$output" = "" ]
	# The same from the worker side.
	run "$JOBCTL" raw --worker --unframed -t 0 < <(printf '\x00\x00\x00\x30{"type":"join","job_ty')
	[ "$status" = 0 ]
	wait_until 10 stat_is .connections 2
	[ "$(job_status '"half"')" = unknown_id ]
	[ "$(daemon_stat .bad_frames)" = 0 ]
	join_worker W mid
	serve W 1
	wait_lines M 2
	same_json "$(line M 2)" '{"id":"kept","body":{"done":"kept"}}'
	assert_daemon_healthy
}
