#!/usr/bin/env bats
# fs_tree.bats — the file tree's shape (SPEC 2): the mount itself, README,
# stats, types/, channels/, and what happens to the mount when the daemon
# stops, detaches or dies.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/fs'

setup() {
	require_fuse
}

teardown() {
	stop_detached
	daemon_teardown
}

@test "the tree mounts as fuse.jobfs with README, stats, types, jobs and channels" {
	start_daemon_mounted
	[ "$(findmnt -n -o FSTYPE "$MNT")" = fuse.jobfs ]
	[ "$(findmnt -n -o SOURCE "$MNT")" = jobfs ]
	[ "$(ls "$MNT" | tr '\n' ' ')" = "README channels jobs refusals state stats types " ]
	[ -d "$MNT/types" ]
	[ -d "$MNT/jobs" ]
	[ -d "$MNT/channels" ]
	[ -f "$MNT/README" ]
	[ -f "$MNT/stats" ]
}

@test "README explains every file of the tree" {
	start_daemon_mounted
	run cat "$MNT/README"
	[ "$status" = 0 ]
	for f in types/T/queue types/T/workers types/T/stats jobs/ID/body \
		jobs/ID/response jobs/ID/status jobs/ID/type jobs/ID/info channels/C; do
		grep -qF "$f" <<<"$output" || { echo "README lacks $f"; return 1; }
	done
	# Each file the README names starts its own line: none runs into the
	# line before it.
	for f in types/T/queue types/T/workers types/T/stats types/T/submit \
		types/T/dead types/T/kick types/T/delayed types/T/paused \
		types/T/limit types/T/retries types/T/schedules jobs/ID/body jobs/ID/response \
		jobs/ID/status jobs/ID/type jobs/ID/info channels/C stats refusals; do
		grep -qE "^  $f " <<<"$output" || { echo "README: $f does not start a line"; return 1; }
	done
	# and no line names two of them.
	run grep -E '^  [a-z]+/[A-Z]+/[a-z]+ .*[a-z]+/[A-Z]+/[a-z]+ ' <<<"$output"
	[ "$status" = 1 ]
	[ "$(stat -c %s "$MNT/README")" = "$(cat "$MNT/README" | wc -c)" ]
}

@test "stats counts jobs, one 'name value' per line" {
	start_daemon_mounted
	grep -qx 'submitted 0' "$MNT/stats"
	mkdir "$MNT/types/st"
	printf '{"a":1}\n{"a":2}\n' >"$MNT/types/st/queue"
	grep -qx 'submitted 2' "$MNT/stats"
	grep -qx 'queued 2' "$MNT/stats"
	# Every line is a name and a number.
	if grep -vE '^[a-z_]+ [0-9]+(\.[0-9]+)?$' "$MNT/stats"; then false; fi
}

@test "mkdir types/T makes a type with queue, workers and stats" {
	start_daemon_mounted
	mkdir "$MNT/types/echo"
	[ "$(ls "$MNT/types")" = echo ]
	# (and the files of the job lifecycle: life_tree.bats)
	[ "$(ls "$MNT/types/echo" | tr '\n' ' ')" = "dead delayed kick limit queue retries schedules state stats submit workers " ]
	grep -qx 'queued 0' "$MNT/types/echo/stats"
	grep -qx 'workers 0' "$MNT/types/echo/stats"
	[ -z "$(cat "$MNT/types/echo/workers")" ]
	[ -z "$(cat "$MNT/types/echo/queue")" ]
	run mkdir "$MNT/types/echo"
	[ "$status" != 0 ]
	[[ $output == *"File exists"* ]]
}

@test "mkdir refuses type names that are not valid" {
	start_daemon_mounted
	run mkdir "$MNT/types/bad$(printf '\001')name"
	[ "$status" != 0 ]
	[[ $output == *"Invalid argument"* ]]
	run mkdir "$MNT/jobs/nope"
	[ "$status" != 0 ]
	[ -z "$(ls "$MNT/types")" ]
	assert_tree_healthy
}

@test "rmdir types/T removes an unused type and refuses one that has jobs" {
	start_daemon_mounted
	mkdir "$MNT/types/gone" "$MNT/types/busy"
	echo '{}' >"$MNT/types/busy/queue"
	rmdir "$MNT/types/gone"
	[ ! -e "$MNT/types/gone" ]
	run rmdir "$MNT/types/busy"
	[ "$status" != 0 ]
	[[ $output == *"busy"* ]]
	[ -d "$MNT/types/busy" ]
}

@test "a worker joining over TCP shows its type and itself in workers" {
	start_daemon_mounted
	bg "$GLOOM" worker tcpw --name w1 --hold "$BATS_TEST_TMPDIR/release" \
		>"$BATS_TEST_TMPDIR/w.out"
	wait_until 10 test -d "$MNT/types/tcpw"
	# Its join's name, then its address.
	wait_until 5 grep -Eqx 'w1 127\.0\.0\.1:[0-9]+ idle' "$MNT/types/tcpw/workers"
	grep -qx 'workers 1' "$MNT/types/tcpw/stats"
	local fd
	exec {fd}<>"$MNT/types/tcpw/queue"
	echo '{"w":1}' >&$fd
	id=$(read_line "$fd")
	exec {fd}>&-
	wait_until 5 grep -Eqx "w1 127\\.0\\.0\\.1:[0-9]+ busy $id" "$MNT/types/tcpw/workers"
	grep -qx 'running 1' "$MNT/types/tcpw/stats"
	touch "$BATS_TEST_TMPDIR/release"
	[ "$(timeout 10 cat "$MNT/jobs/$id/response")" = '{"w":1}' ]
	wait_until 5 grep -Eqx 'w1 127\.0\.0\.1:[0-9]+ idle' "$MNT/types/tcpw/workers"
	grep -qx 'done 1' "$MNT/types/tcpw/stats"
}

@test "a type made only by a worker disappears from types/ when it leaves" {
	start_daemon_mounted
	"$GLOOM" worker fleeting >/dev/null &
	local wpid=$!
	wait_until 10 test -d "$MNT/types/fleeting"
	stat "$MNT/types/fleeting/queue" >/dev/null   # the kernel now caches it
	kill "$wpid"
	wait "$wpid" || true
	wait_until 10 test ! -e "$MNT/types/fleeting"
	[ -z "$(ls "$MNT/types")" ]
}

@test "touch channels/C makes a channel that TCP subscribers receive writes of" {
	start_daemon_mounted
	touch "$MNT/channels/news"
	[ "$(ls "$MNT/channels")" = news ]
	"$GLOOM" subscribe news 2 >"$BATS_TEST_TMPDIR/sub.out" &
	local spid=$!
	wait_until 10 grep -q subscribed "$BATS_TEST_TMPDIR/sub.out"
	printf '{"n":1}\n"two"\n' >"$MNT/channels/news"
	wait "$spid"
	[ "$(cat "$BATS_TEST_TMPDIR/sub.out")" = 'subscribed
{"n":1}
"two"' ]
}

@test "a channel with TCP subscribers is listed, and its readers get what is published" {
	start_daemon_mounted
	bg "$GLOOM" subscribe tcp 3 >"$BATS_TEST_TMPDIR/sub.out"
	wait_until 10 test -e "$MNT/channels/tcp"
	[ "$(ls "$MNT/channels")" = tcp ]
	gloom publish tcp '{"m":0}'  # before the reader opens: not seen
	cat "$MNT/channels/tcp" >"$BATS_TEST_TMPDIR/reader.out" &
	local rpid=$!
	wait_until 10 has_open "$rpid" "$MNT/channels/tcp"
	gloom publish tcp '{"m":1}'
	echo '{"m":2}' >"$MNT/channels/tcp"
	wait_until 10 file_has_lines "$BATS_TEST_TMPDIR/reader.out" 2
	kill "$rpid"
	wait "$rpid" || true
	[ "$(cat "$BATS_TEST_TMPDIR/reader.out")" = '{"m":1}
{"m":2}' ]
	wait_until 10 file_has_lines "$BATS_TEST_TMPDIR/sub.out" 4
}

@test "writing a line that is not JSON to a channel fails with EINVAL" {
	start_daemon_mounted
	touch "$MNT/channels/c"
	run bash -c "echo 'not json' > '$MNT/channels/c'"
	[ "$status" != 0 ]
	[[ $output == *"Invalid argument"* ]]
	run python3 -c 'import os,sys
fd = os.open(sys.argv[1], os.O_WRONLY)
try:
    os.write(fd, b"{\"ok\":1}\n{bad\n")
except OSError as e:
    print(e.strerror)' "$MNT/channels/c"
	[ "$output" = "Invalid argument" ]
	assert_tree_healthy
}

@test "channel reads give EAGAIN with O_NONBLOCK and wake poll on a message" {
	start_daemon_mounted
	touch "$MNT/channels/p"
	[ "$(gloom nonblock "$MNT/channels/p")" = EAGAIN ]
	[ "$(gloom poll "$MNT/channels/p" 0.3)" = timeout ]
	# A reader hears what is published once it has the file open: publish
	# only then, while it waits in poll.
	local opened=$BATS_TEST_TMPDIR/opened
	gloom poll "$MNT/channels/p" 30 "$opened" >"$BATS_TEST_TMPDIR/poll.out" &
	local ppid=$!
	wait_until 10 test -e "$opened"
	echo '{"x":1}' >"$MNT/channels/p"
	wait "$ppid"
	[ "$(cat "$BATS_TEST_TMPDIR/poll.out")" = ready ]
}

@test "a mount point that does not exist makes jobfs exit with status 3" {
	run "$JOBFS" -f --master-port 0 --worker-port 0 \
		"$BATS_TEST_TMPDIR/no/such/dir"
	[ "$status" = 3 ]
	[[ $output == *"No such file or directory"* ]]
}

@test "SIGTERM unmounts the tree and the daemon exits cleanly" {
	start_daemon_mounted
	mountpoint -q "$MNT"
	stop_daemon
	if mountpoint -q "$MNT"; then false; fi
	[ -z "$(ls "$MNT")" ]
	grep -q 'tree unmounted' "$DAEMON_LOG"
}

@test "without -f jobfs returns with the tree mounted and detaches" {
	MNT=$BATS_TEST_TMPDIR/mnt
	mkdir -p "$MNT"
	detach() {
		"$JOBFS" --master-port "$P" --worker-port "$Q" "$MNT"
	}
	on_free_ports detach
	# Mounted and served by the time the parent returns: no waiting.
	mountpoint -q "$MNT"
	[ -f "$MNT/README" ]
	DETACHED_PID=$(listener_pid "$P")
	[ -n "$DETACHED_PID" ]
	# Not our child: it detached (wait says 127).
	local rc=0
	wait "$DETACHED_PID" 2>/dev/null || rc=$?
	[ "$rc" = 127 ]
	stop_detached
	if mountpoint -q "$MNT"; then false; fi
}

@test "a daemon killed with SIGKILL leaves a stale mount that the next start recovers" {
	start_daemon_mounted
	mkdir "$MNT/types/k"
	kill -KILL "$DAEMON_PID"
	wait "$DAEMON_PID" || true
	DAEMON_PID=
	run stat "$MNT/README"
	[ "$status" != 0 ]
	[[ $output == *"not connected"* ]]
	start_daemon "$MNT"
	wait_until 10 test -f "$MNT/README"
	grep -q 'stale mount' "$DAEMON_LOG"
	[ -z "$(ls "$MNT/types")" ]
	assert_tree_healthy
}
