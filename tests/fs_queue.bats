#!/usr/bin/env bats
# fs_queue.bats — types/T/queue (SPEC 2): writing submits one job per JSON
# line, all or nothing per write(2); reading lists queued ids in dispatch
# order; a read-write handle reads back the ids it submitted.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/fs'

setup() {
	require_fuse
	start_daemon_mounted
	mkdir "$MNT/types/q"
	Q=$MNT/types/q/queue
}

# bodies: the body of every job in the tree, in id order.
bodies() {
	local id
	for id in $(ls "$MNT/jobs"); do
		cat "$MNT/jobs/$id/body"
	done
}

@test "echo > queue submits a job, with an id of at most 32 characters" {
	echo '{"n":1}' >"$Q"
	[ "$(tree_njobs)" = 1 ]
	local id
	id=$(job_ids)
	[ "${#id}" -le 32 ]
	[ "$(cat "$MNT/jobs/$id/body")" = '{"n":1}' ]
	[ "$(cat "$MNT/jobs/$id/status")" = queued ]
	[ "$(cat "$MNT/jobs/$id/type")" = q ]
	[ "$(cat "$Q")" = "$id" ]
}

@test "each line written is one job; bodies are stored as compact JSON" {
	printf '{"a": 1}\n[1, 2]\n"text"\n\n  42  \n' >"$Q"
	[ "$(tree_njobs)" = 4 ]
	[ "$(bodies)" = '{"a":1}
[1,2]
"text"
42' ]
	grep -qx 'submitted 4' "$MNT/types/q/stats"
}

@test "ids sort as strings in submission order" {
	local i
	for i in 1 2 3 4 5; do echo "{\"i\":$i}" >"$Q"; done
	[ "$(ls "$MNT/jobs" | LC_ALL=C sort)" = "$(cat "$Q")" ]
	[ "$(bodies | tr -d '\n')" = '{"i":1}{"i":2}{"i":3}{"i":4}{"i":5}' ]
}

@test "a write with a line that is not JSON fails with EINVAL and submits none of its lines" {
	run bash -c "echo 'not json' > '$Q'"
	[ "$status" != 0 ]
	[[ $output == *"Invalid argument"* ]]
	# One write(2) of three lines, the last bad (bash's printf would write
	# line by line).
	run python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
try:
    os.write(fd, b"{\"ok\":1}\n{\"ok\":2}\n{broken\n")
    print("written")
except OSError as e:
    print(e.strerror)' "$Q"
	[ "$output" = "Invalid argument" ]
	[ "$(tree_njobs)" = 0 ]
	grep -qx 'submitted 0' "$MNT/stats"
	assert_tree_healthy
}

@test "after a failed write the same handle still submits good lines" {
	run python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
try:
    os.write(fd, b"{\"half\":")   # a partial line, then a bad one
    os.write(fd, b"oops\n")
    print("no error")
except OSError as e:
    print(e.strerror)
os.write(fd, b"{\"good\":1}\n")
os.close(fd)' "$Q"
	[ "$output" = "Invalid argument" ]
	[ "$(bodies)" = '{"good":1}' ]
}

@test "a line split across writes is joined; a last line without newline counts at close" {
	python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.write(fd, b"{\"sp")
os.write(fd, b"lit\":1}\n{\"last\"")
os.write(fd, b":2}")
os.close(fd)' "$Q"
	[ "$(bodies)" = '{"split":1}
{"last":2}' ]
}

@test "a bad last line without newline fails close with EINVAL" {
	run python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.write(fd, b"{\"fine\":1}\n{nope")
try:
    os.close(fd)
    print("closed")
except OSError as e:
    print(e.strerror)' "$Q"
	[ "$output" = "Invalid argument" ]
	[ "$(bodies)" = '{"fine":1}' ]
	assert_tree_healthy
}

@test "a line longer than --max-frame fails with EFBIG" {
	stop_daemon
	start_daemon_mounted --max-frame 1024
	mkdir "$MNT/types/q"
	run python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
try:
    os.write(fd, b"\"" + b"x" * 2000 + b"\"\n")
    print("written")
except OSError as e:
    print(e.strerror)' "$Q"
	[ "$output" = "File too large" ]
	[ "$(tree_njobs)" = 0 ]
	assert_tree_healthy
}

@test "reading queue lists queued ids in dispatch order: priority, then submission" {
	gloom submit q '"low1"' '{}' --priority 0 --detach
	gloom submit q '"high"' '{}' --priority 5 --detach
	gloom submit q '"low2"' '{}' --priority 0 --detach
	gloom submit q '"neg"' '{}' --priority -3 --detach
	gloom submit q '"mid"' '{}' --priority 2 --detach
	[ "$(cat "$Q" | tr '\n' ' ')" = "high mid low1 low2 neg " ]
	# A worker takes them in that order, and the list shrinks.
	gloom worker q --count 2 >"$BATS_TEST_TMPDIR/w.out"
	[ "$(cat "$BATS_TEST_TMPDIR/w.out" | tr '\n' ' ')" = "high mid " ]
	[ "$(cat "$Q" | tr '\n' ' ')" = "low1 low2 neg " ]
}

@test "a read-write handle reads back the ids it submitted, one per line" {
	local fd a b c
	exec {fd}<>"$Q"
	echo '{"k":1}' >&$fd
	printf '{"k":2}\n{"k":3}\n' >&$fd
	a=$(read_line "$fd")
	b=$(read_line "$fd")
	c=$(read_line "$fd")
	exec {fd}>&-
	[ "$(cat "$MNT/jobs/$a/body")" = '{"k":1}' ]
	[ "$(cat "$MNT/jobs/$b/body")" = '{"k":2}' ]
	[ "$(cat "$MNT/jobs/$c/body")" = '{"k":3}' ]
	[[ $a < $b && $b < $c ]]
}

@test "reading ids back blocks until a job is submitted, and polls ready after" {
	local fd id
	exec {fd}<>"$Q"
	# Nothing submitted yet: the read waits (and times out here).
	run timeout 0.5 bash -c "read -r id <&$fd"
	[ "$status" = 124 ]
	( sleep 0.3; echo '{"late":1}' >&$fd ) &
	local spid=$!
	id=$(read_line "$fd")
	wait "$spid"
	exec {fd}>&-
	[ "$(cat "$MNT/jobs/$id/body")" = '{"late":1}' ]
}

@test "ids written by one read-write handle are not read by another" {
	local fd1 fd2 a
	exec {fd1}<>"$Q"
	exec {fd2}<>"$Q"
	echo '{"mine":1}' >&$fd1
	a=$(read_line "$fd1")
	run timeout 0.5 bash -c "read -r x <&$fd2"
	[ "$status" = 124 ]
	exec {fd1}>&- {fd2}>&-
	[ "$(cat "$MNT/jobs/$a/body")" = '{"mine":1}' ]
}

@test "jobs submitted through the tree are answered by a TCP worker" {
	bg "$GLOOM" worker q
	local fd id
	exec {fd}<>"$Q"
	echo '{"via":"tree"}' >&$fd
	id=$(read_line "$fd")
	exec {fd}>&-
	[ "$(timeout 10 cat "$MNT/jobs/$id/response")" = '{"via":"tree"}' ]
	[ "$(cat "$MNT/jobs/$id/status")" = done ]
}
