#!/usr/bin/env bats
# names_utf8.bats — ids and type names are file names and C strings: they
# must be UTF-8 without NUL, whether they come in a JSON
# string or as a file name made in the tree.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/ext'
load 'helpers/fs'

# type_in_stats T: "true" if stats lists a type named T.
type_in_stats() {
	daemon_stat ".types | has(\"$1\")"
}

@test "mkdir of a type whose name is not UTF-8 fails with EINVAL and makes nothing" {
	require_fuse
	start_daemon_mounted
	local bad
	for bad in $'bad\xffname' $'\xc0\xaf' $'sur\xed\xa0\x80rogate' $'\xf4\x90\x80\x80' $'cut\xe2\x82'; do
		run mkdir "$MNT/types/$bad"
		[ "$status" != 0 ]
		[[ "$output" == *"Invalid argument"* ]]
		[ ! -e "$MNT/types/$bad" ]
	done
	[ -z "$(ls "$MNT/types")" ]
	# A channel name follows the same rules.
	run touch "$MNT/channels/"$'bad\xffname'
	[ "$status" != 0 ]
	[ -z "$(ls "$MNT/channels")" ]
	# Valid UTF-8 beyond ASCII is a fine name, and shows in stats.
	mkdir "$MNT/types/ünï€𝄞"
	[ "$(ls "$MNT/types")" = "ünï€𝄞" ]
	[ "$(type_in_stats "ünï€𝄞")" = true ]
	assert_tree_healthy
}

@test "an id or a type name holding \\u0000 is refused over TCP, in both dialects" {
	start_daemon
	local f out
	for f in '{"type":"job","job_type":"t","id":"a\u0000b","body":1}' \
		'{"action":"submit","type":"t","id":"a\u0000b","body":1}' \
		'{"type":"job","job_type":"t\u0000u","id":"n","body":1}' \
		'{"action":"submit","type":"t\u0000u","id":"n","body":1}' \
		'{"type":"job","job_type":"t","id":"w","body":1,"worker":"x\u0000y"}'; do
		out=$(printf '%s\n' "$f" | "$JOBCTL" raw -n 1 -t 5000)
		# The scanner accepts \u0000 in JSON; the id and name checks refuse it.
		[ "$(jq -r .error <<<"$out")" = invalid_type ]
	done
	out=$(printf '%s\n' '{"type":"join","job_type":"t\u0000u"}' |
		"$JOBCTL" raw --worker -n 1 -t 5000)
	[ "$(jq -r .error <<<"$out")" = invalid_type ]
	[ "$(daemon_stat .submitted)" = 0 ]
	[ "$(daemon_stat '.types | length')" = 0 ]
	assert_daemon_healthy
}

@test "ids and type names of any valid UTF-8 work over TCP" {
	start_daemon
	"$JOBCTL" work 'ünï€𝄞' -- cat &
	BG_PIDS+=("$!")
	wait_until 10 workers_are 'ünï€𝄞' 1
	out=$(printf '%s\n' '{"type":"job","job_type":"ünï€𝄞","id":"é𝄞\u00e9","body":"x"}' |
		"$JOBCTL" raw -n 1 -t 10000)
	[ "$out" = '{"id":"é𝄞\u00e9","body":"x"}' ]
	assert_daemon_healthy
}
