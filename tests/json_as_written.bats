#!/usr/bin/env bats
# json_as_written.bats — any RFC 8259 text is a valid body and travels byte
# for byte (less white space outside strings), however big its numbers or
# whatever its escapes; the protocol's own fields are still checked: an
# integer field past int64 or a name holding \u0000 gets invalid_type.
#
# Frames are compared as raw text (jobctl raw prints payloads verbatim):
# jq and jansson would round or refuse the numbers under test.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'

setup() {
	start_daemon
}

# raw_jobs NAME: the job frames NAME received, as sent (jobs_of reads them
# with jq, which refuses lone surrogates).
raw_jobs() {
	grep '^{"type":"job",' "$(conn_file "$1")" || true
}

has_raw_jobs() {
	[ "$(raw_jobs "$1" | wc -l)" -ge "$2" ]
}

# round_trip K BODY SENT: master M submits job jK with body BODY as written;
# seed worker W (capacity 1) must get it as SENT byte for byte, answers with
# BODY as written, and M must get SENT back byte for byte.
round_trip() {
	local k=$1 body=$2 sent=$3 got
	send M "{\"type\":\"job\",\"job_type\":\"raw\",\"id\":\"j$k\",\"body\":$body}"
	wait_until 10 has_raw_jobs W "$k" || return 1
	got=$(raw_jobs W | sed -n "${k}p")
	if [ "$got" != "{\"type\":\"job\",\"id\":\"j$k\",\"body\":$sent}" ]; then
		printf 'worker got: %s\nexpected body: %s\n' "$got" "$sent" >&2
		return 1
	fi
	send W "{\"type\":\"response\",\"body\":$body}"
	wait_lines M "$k" || return 1
	got=$(line M "$k")
	if [ "$got" != "{\"id\":\"j$k\",\"body\":$sent}" ]; then
		printf 'master got: %s\nexpected body: %s\n' "$got" "$sent" >&2
		return 1
	fi
}

@test "bodies with \\u0000, integers past 64 bits and 1e400 reach worker and master byte for byte" {
	local bodies=(
		'"a\u0000b"'
		'{"k\u0000ey":"\u0000","\u0000":[0]}'
		'9223372036854775808'
		'18446744073709551616'
		'-9223372036854775809'
		'123456789012345678901234567890'
		'1e400'
		'-1e400'
		'[1E+400,-123456789012345678901234567890.5e-99999,0.1,1e2]'
		'["\ud800","\udc00x",{"\udbff":"\ud83d\ude00"}]'
	)
	local k
	join_worker W raw
	conn_open M
	for k in "${!bodies[@]}"; do
		round_trip $((k + 1)) "${bodies[$k]}" "${bodies[$k]}"
	done
	# White space outside strings goes (no \n: a line is a frame here);
	# inside strings it stays.
	k=$((${#bodies[@]} + 1))
	round_trip "$k" $'{ "a\\u0000 b" :\t[ 1e400 ,\r 18446744073709551616 ] }' \
		'{"a\u0000 b":[1e400,18446744073709551616]}'
	[ "$(daemon_stat .bad_frames)" = 0 ]
	assert_daemon_healthy
}

@test "an integer field past int64 gets invalid_type, not invalid_json, and the connection stays usable" {
	local bad=(
		'{"type":"job","job_type":"big","id":9223372036854775808,"body":1}'
		'{"type":"job","job_type":"big","id":-9223372036854775809,"body":1}'
		'{"type":"job","job_type":"big","id":123456789012345678901234567890,"body":1}'
		'{"type":"status","id":18446744073709551616}'
		'{"type":"cancel","id":18446744073709551616}'
	)
	local i
	conn_open M
	for i in "${!bad[@]}"; do send M "${bad[$i]}"; done
	# A usable id, an option past int64: the error names the id.
	send M '{"type":"job","job_type":"big","id":"p","body":1,"priority":18446744073709551616}'
	send M '{"type":"job","job_type":"big","id":"t","body":1,"timeout":-123456789012345678901234567890}'
	settle M
	for i in "${!bad[@]}"; do
		is_error "$(line M $((i + 1)))" invalid_type
	done
	is_error "$(line M $((${#bad[@]} + 1)))" invalid_type '"p"'
	is_error "$(line M $((${#bad[@]} + 2)))" invalid_type '"t"'
	[ "$(daemon_stat .bad_frames)" = 0 ]
	[ "$(daemon_stat .submitted)" = 0 ]

	# The worker port: capacity and heartbeat past int64.
	conn_open W --worker
	send W '{"type":"join","job_type":"big","capacity":18446744073709551617}'
	send W '{"type":"join","job_type":"big","heartbeat":9223372036854775808}'
	settle W
	is_error "$(line W 1)" invalid_type
	is_error "$(line W 2)" invalid_type

	# Both connections still work; int64's own extremes are ids.
	send W '{"type":"join","job_type":"big"}'
	send M '{"type":"job","job_type":"big","id":9223372036854775807,"body":[18446744073709551616]}'
	wait_jobs W 1
	[ "$(jobs_of W)" = '{"type":"job","id":9223372036854775807,"body":[18446744073709551616]}' ]
	respond W '{"n":123456789012345678901234567890}'
	wait_lines M $((${#bad[@]} + 4))
	[ "$(tail -n 1 "$(conn_file M)")" = '{"id":9223372036854775807,"body":{"n":123456789012345678901234567890}}' ]
	assert_daemon_healthy
}

@test "ids, type, channel and worker names holding \\u0000 get invalid_type" {
	conn_open M
	send M '{"type":"job","job_type":"n","id":"x\u0000y","body":1}'
	send M '{"type":"job","job_type":"a\u0000b","id":"z","body":1}'
	send M '{"type":"status","id":"x\u0000y"}'
	send M '{"type":"subscribe","channel":"c\u0000"}'
	send M '{"type":"publish","channel":"c\u0000","body":1}'
	settle M
	is_error "$(line M 1)" invalid_type
	is_error "$(line M 2)" invalid_type '"z"'
	is_error "$(line M 3)" invalid_type
	is_error "$(line M 4)" invalid_type
	is_error "$(line M 5)" invalid_type
	conn_open W --worker
	send W '{"type":"join","job_type":"n\u0000"}'
	send W '{"type":"join","job_type":"n","worker":"w\u0000"}'
	settle W
	is_error "$(line W 1)" invalid_type
	is_error "$(line W 2)" invalid_type
	[ "$(daemon_stat .submitted)" = 0 ]
	send W '{"type":"join","job_type":"n"}'
	send M '{"type":"job","job_type":"n","id":"ok","body":"\u0000"}'
	wait_jobs W 1
	respond W '"\u0000"'
	wait_lines M 7
	[ "$(tail -n 1 "$(conn_file M)")" = '{"id":"ok","body":"\u0000"}' ]
	assert_daemon_healthy
}
