#!/usr/bin/env bats
# error_utf8.bats — an error frame whose reason is too long is cut at a
# UTF-8 character boundary, never sent empty.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'

setup() {
	start_daemon
}

# long_id LEAD A HEX: the JSON text of an id of up to 253 bytes: A times
# LEAD, 80 times the character HEX escaped as \uHEX (6 bytes of JSON
# each), then 57 three-byte euro signs.
# Shifting A by one moves the 511-byte cut of an error reason that quotes
# the id across the euro signs, so some A cut inside a character.
long_id() {
	python3 -c 'import sys
a = int(sys.argv[2])
print("\"" + sys.argv[1] * a + ("\\u" + sys.argv[3]) * 80 + "\u20ac" * 57 + "\"")' "$1" "$2" "$3"
}

@test "id_exists and unknown_id errors quoting a long multibyte id are whole error frames" {
	local a id n=0
	conn_open M
	for a in 0 1 2; do
		id=$(long_id a "$a" 0062)
		send M "{\"type\":\"job\",\"job_type\":\"u8\",\"id\":$id,\"body\":1}"
		send M "{\"type\":\"job\",\"job_type\":\"u8\",\"id\":$id,\"body\":2}"
		settle M
		n=$((n + 1))
		is_error "$(received M | sed -n "${n}p")" id_exists "$id"
		[ "$(received M | sed -n "${n}p" | jq -r .reason | wc -c)" -gt 400 ]
		id=$(long_id z "$a" 0063)
		send M "{\"type\":\"cancel\",\"id\":$id}"
		settle M
		n=$((n + 1))
		is_error "$(received M | sed -n "${n}p")" unknown_id "$id"
	done
	[ "$(received M | wc -l)" = 6 ]
	assert_daemon_healthy
}
