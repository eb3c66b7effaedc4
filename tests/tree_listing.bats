#!/usr/bin/env bats
# tree_listing.bats — listings of the tree (issue 8, items 6 and 8): every
# listing prints an id exactly as its file name under jobs/, control
# characters percent-encoded, so that a line is always one job; and jobs/
# is read with a cursor, not a copy of the whole listing per open handle.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/fs'

setup() {
	require_fuse
	start_daemon_mounted
}

@test "an id with a newline is one line in queue, named as under jobs/, and the cancel loop spares other types" {
	mkdir "$MNT/types/t1" "$MNT/types/t2"
	gloom submit t1 '"x\nvictim"' '{"n":1}' --detach
	gloom submit t1 '"tab\there\r\u0001\u007f\u0085end"' '{"n":2}' --detach
	gloom submit t2 '"victim"' '{"n":3}' --detach
	gloom submit t2 '"x"' '{"n":4}' --detach
	[ "$(grep -c '' "$MNT/types/t1/queue")" = 2 ]
	grep -qxF 'x%0Avictim' "$MNT/types/t1/queue"
	grep -qxF 'tab%09here%0D%01%7F%C2%85end' "$MNT/types/t1/queue"
	# Exactly the names under jobs/, and each one opens its job.
	[ "$(LC_ALL=C sort "$MNT/types/t1/queue")" = "$(ls "$MNT/jobs" | LC_ALL=C sort | grep -v -x -e victim -e x)" ]
	[ "$(cat "$MNT/jobs/x%0Avictim/body")" = '{"n":1}' ]
	[ "$(cat "$MNT/jobs/x%0Avictim/type")" = t1 ]
	# jobfs(5)'s loop that cancels every queued job of t1.
	while IFS= read -r id; do
		rmdir "$MNT/jobs/$id"
	done <"$MNT/types/t1/queue"
	[ "$(cat "$MNT/types/t2/queue" | LC_ALL=C sort)" = 'victim
x' ]
	[ -z "$(cat "$MNT/types/t1/queue")" ]
	# The raw spelling is not a name; %41 is not A either.
	[ ! -e "$MNT/jobs/x"$'\n'"victim" ]
	[ ! -e "$MNT/jobs/vi%63tim" ]
	assert_tree_healthy
}

@test "workers lists a running id with control characters, and a worker name with a newline, on one line" {
	mkdir "$MNT/types/w"
	gloom worker w --name $'evil\nname busy' --hold "$BATS_TEST_TMPDIR/go" >/dev/null &
	BG_PIDS+=("$!")
	gloom submit w '"run\nning\u001b"' '{}' --detach
	wait_until 10 grep -q busy "$MNT/types/w/workers"
	[ "$(grep -c '' "$MNT/types/w/workers")" = 1 ]
	[ "$(cat "$MNT/types/w/workers")" = 'evil%0Aname busy busy run%0Aning%1B' ]
	[ "$(cat "$MNT/jobs/run%0Aning%1B/status")" = running ]
	touch "$BATS_TEST_TMPDIR/go"
	wait_until 10 file_is "$MNT/jobs/run%0Aning%1B/status" done
	assert_tree_healthy
}

@test "ids read back from a read-write queue are one per line" {
	mkdir "$MNT/types/rw"
	exec {fd}<>"$MNT/types/rw/queue"
	echo '{"a":1}' >&$fd
	id=$(read_line "$fd")
	[ "$(cat "$MNT/jobs/$id/status")" = queued ]
	exec {fd}>&-
	assert_tree_healthy
}
