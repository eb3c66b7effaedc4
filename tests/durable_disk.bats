#!/usr/bin/env bats
# durable_disk.bats — the journal's disk: a full disk refuses
# submissions with "unavailable" and tree writes with ENOSPC, loses nothing
# acknowledged and recovers by itself; compaction keeps the directory within
# about twice the live jobs plus two segments, however many jobs pass.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'
load 'helpers/durable'

SMALL=

teardown() {
	daemon_teardown
	local s=$?
	if [ -n "$SMALL" ] && mountpoint -q "$SMALL"; then
		umount -l "$SMALL"
	fi
	return "$s"
}

# fill_disk: take every free byte of $SMALL.
fill_disk() {
	dd if=/dev/zero of="$SMALL/fill" bs=4096 status=none 2>/dev/null || true
}

# tree_stat NAME: a counter from the tree's stats file (replies to
# masters may be held while the journal cannot write; the tree's reads not).
tree_stat() {
	sed -n "s/^$1 //p" "$MNT/stats"
}

journal_failing() {
	[ "$(tree_stat journal_error)" != 0 ]
}

acked_or_failing() {
	conn_has_lines "$1" 1 || journal_failing
}

# submit_until_failing: submit, each from its own master F1, F2, ..., until
# the journal cannot write; FAILED_AT is the number of the submission it
# could not write, which is refused ("unavailable").
submit_until_failing() {
	local i
	for ((i = 1; i <= 200; i++)); do
		conn_open "F$i"
		send "F$i" "{\"action\":\"submit\",\"id\":\"full$i\",\"type\":\"t\",\"detach\":true,\"body\":\"$(head -c 3000 /dev/zero | tr '\0' x)\"}"
		wait_until 20 acked_or_failing "F$i"
		! journal_failing || break
	done
	journal_failing
	FAILED_AT=$i
}

# submit_until_refused DIALECT: on one master M, 3000-byte submissions in
# DIALECT (action or seed), each followed by a ping that must be answered,
# until one is refused; REFUSED is its id, ROUNDS the number sent.
submit_until_refused() {
	local i body
	body=$(head -c 3000 /dev/zero | tr '\0' x)
	for ((i = 1; i <= 200; i++)); do
		if [ "$1" = action ]; then
			send M "{\"action\":\"submit\",\"id\":\"full$i\",\"type\":\"t\",\"detach\":true,\"body\":\"$body\"}"
		else
			send M "{\"type\":\"job\",\"job_type\":\"t\",\"id\":\"full$i\",\"body\":\"$body\"}"
		fi
		settle M
		REFUSED=$(received M | jq -r 'select(.error != null) | .id')
		ROUNDS=$i
		[ -z "$REFUSED" ] || return 0
	done
	echo "no submission was refused" >&2
	return 1
}

# full_disk_in_flight DIALECT: the submission in flight when the disk
# fills is refused with "unavailable" at once, later frames on its
# connection are answered, and once space returns nothing acknowledged is
# lost, nor is the refused job there.
full_disk_in_flight() {
	local i acked
	SMALL=$BATS_TEST_TMPDIR/small
	mkdir -p "$SMALL"
	mount -t tmpfs -o size=2m tmpfs "$SMALL"
	DATA=$SMALL/data
	start_durable
	conn_open M
	if [ "$1" = action ]; then
		send M '{"action":"submit","id":"before","type":"t","detach":true,"body":1}'
		wait_lines M 1
	fi
	fill_disk
	submit_until_refused "$1"
	echo "# submission $ROUNDS was refused" >&3
	is_error "$(received M | grep '"error"')" unavailable "\"$REFUSED\""
	received M | grep -q 'journal: No space left on device'
	# Later frames on the same connection are answered.
	settle M
	# The refused job is not there; the others are.
	[ "$(job_status "\"$REFUSED\"")" = unknown_id ]
	for ((i = 1; i < ROUNDS; i++)); do
		[ "$(job_status "\"full$i\"")" = queued ]
	done
	# Space returns: the journal writes again, submissions are taken.
	rm -f "$SMALL/fill"
	wait_until 30 stat_is .journal_error 0
	[ "$(submit_acked '"after"' t 2 ',"detach":true' | jq -r .ok)" = true ]
	if [ "$1" = action ]; then
		acked=$(received M | jq -r 'select(.ok == true) | .id')
		[ "$(echo $acked | wc -w)" = "$ROUNDS" ]   # "before" and all but one
		crash_daemon
		start_durable
		for i in $acked after; do
			[ "$(job_status "\"$i\"")" = queued ] || { echo "$i lost" >&2; return 1; }
		done
		[ "$(job_status "\"$REFUSED\"")" = unknown_id ]
	fi
	assert_daemon_healthy
}

@test "a full disk: the submission in flight is refused at once, later frames on its connection answered (later dialect)" {
	full_disk_in_flight action
}

@test "a full disk: the submission in flight is refused at once, later frames on its connection answered (seed dialect)" {
	full_disk_in_flight seed
}

# read_nonblock FILE: what one O_NONBLOCK read of FILE gives, or EAGAIN.
read_nonblock() {
	python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
try:
    sys.stdout.write(os.read(fd, 4096).decode())
except BlockingIOError:
    print("EAGAIN")
' "$1"
}

@test "a full disk: unavailable and ENOSPC, nothing acknowledged lost, writes again once space returns" {
	local i acked refused
	SMALL=$BATS_TEST_TMPDIR/small
	mkdir -p "$SMALL"
	mount -t tmpfs -o size=2m tmpfs "$SMALL"
	DATA=$SMALL/data
	start_durable_mounted
	mkdir "$MNT/types/t"
	conn_open M
	send M '{"action":"submit","id":"before","type":"t","body":1}'
	wait_lines M 1
	fill_disk
	submit_until_failing
	refused=F$FAILED_AT
	i=$FAILED_AT
	echo "# the journal failed at submission $i" >&3
	# The submission it could not write is refused, not kept waiting.
	is_error "$(line "$refused" 1)" unavailable "\"full$i\""
	# Later submissions are refused at once, naming the cause.
	conn_open U
	send U '{"action":"submit","id":"refused","type":"t","body":2}'
	wait_lines U 1
	is_error "$(line U 1)" unavailable '"refused"'
	line U 1 | grep -q 'journal: No space left on device'
	# The tree refuses too; its reads go on.
	run bash -c "echo '{\"tree\":1}' > '$MNT/types/t/queue'"
	[ "$status" != 0 ]
	[[ "$output" == *"No space left on device"* ]]
	[ "$(cat "$MNT/jobs/before/status")" = queued ]
	# Space returns: the journal writes again by itself.
	rm -f "$SMALL/fill"
	wait_until 30 bash -c "grep -qx 'journal_error 0' '$MNT/stats'"
	send M '{"action":"submit","id":"after","type":"t","body":2}'
	wait_lines M 2
	[ "$(line M 2 | jq -r .ok)" = true ]
	echo '{"tree":2}' >"$MNT/types/t/queue"
	acked=$(cat "$BATS_TEST_TMPDIR"/conn.*.out | jq -r 'select(.ok == true) | .id' | sort)
	echo "# acknowledged: $(echo $acked | wc -w) jobs" >&3
	crash_daemon
	start_durable
	for i in $acked; do
		[ "$(job_status "\"$i\"")" = queued ] || { echo "$i lost" >&2; return 1; }
	done
	[ "$(job_status '"refused"')" = unknown_id ]
	[ "$(job_status "\"full$FAILED_AT\"")" = unknown_id ]
	assert_daemon_healthy
}

@test "a full disk: a result that came meanwhile shows in the tree only once it is durable" {
	SMALL=$BATS_TEST_TMPDIR/small
	mkdir -p "$SMALL"
	mount -t tmpfs -o size=2m tmpfs "$SMALL"
	DATA=$SMALL/data
	start_durable_mounted
	mkdir "$MNT/types/t"
	join_worker W t
	conn_open M
	send M '{"action":"submit","id":"r1","type":"t","body":1}'
	wait_lines M 1
	wait_jobs W 1
	fill_disk
	submit_until_failing
	# The worker answers while nothing can be made durable: the job is
	# done, but its response is not shown as done (a read would wait).
	respond W '{"r":1}'
	wait_until 10 bash -c "[ \"\$(cat '$MNT/jobs/r1/status')\" = done ]"
	[ "$(read_nonblock "$MNT/jobs/r1/response")" = EAGAIN ]
	# A reader waiting meanwhile gets it once space returns.
	cat "$MNT/jobs/r1/response" >"$BATS_TEST_TMPDIR/resp" &
	local reader=$!
	BG_PIDS+=("$reader")
	rm -f "$SMALL/fill"
	wait_until 30 bash -c "grep -qx 'journal_error 0' '$MNT/stats'"
	wait_until 20 bash -c "! kill -0 $reader 2>/dev/null"
	same_json "$(cat "$BATS_TEST_TMPDIR/resp")" '{"r":1}'
	same_json "$(read_nonblock "$MNT/jobs/r1/response")" '{"r":1}'
	# And it was durable: it is there after a crash.
	crash_daemon
	start_durable
	[ "$(job_status '"r1"')" = done ]
	assert_daemon_healthy
}

# dir_bytes: what the segments of $DATA hold.
dir_bytes() {
	find "$DATA" -name '*.log' -printf '%s\n' | awk '{s += $1} END {print s + 0}'
}

# dir_within FACTOR SEGMENTS: the directory holds at most FACTOR times the
# live bytes plus SEGMENTS segments (of $seg bytes) and a little.
dir_within() {
	local live b l2
	# The larger live figure of just before and just after.
	live=$(daemon_stat .journal_live_bytes)
	b=$(dir_bytes)
	l2=$(daemon_stat .journal_live_bytes)
	[ "$l2" -le "$live" ] || live=$l2
	[ "$b" -gt "$max" ] && max=$b
	if [ "$b" -gt $(($1 * live + $2 * seg + 8192)) ]; then
		echo "directory $b bytes, live $live" >&2
		return 1
	fi
}

@test "compaction: 40000 jobs through with retention on, the directory stays within 2x live + 2 segments" {
	local pid max=0 seg=65536
	export JOBFS_SEGMENT_BYTES=$seg
	OUT=$BATS_TEST_TMPDIR/out
	mkdir -p "$OUT"
	start_durable --keep 1 --keep-max 1000
	load_py load "$JOBFS_MASTER_PORT" "$JOBFS_WORKER_PORT" t 4 10000 100 "$OUT" &
	pid=$!
	# While the jobs pass, the old segments go only once a compaction's
	# sync is done, and appends go on meanwhile: on a loaded machine a slow
	# sync lets the directory pass 2x for a while, never without bound (a
	# journal that never compacted would hold about 10 MB here).
	while kill -0 "$pid" 2>/dev/null; do
		dir_within 4 4
		sleep 0.2
	done
	wait "$pid"
	[ -e "$OUT/finished" ]
	echo "# largest directory seen: $max bytes; compactions: $(daemon_stat .journal_compactions)" >&3
	[ "$(daemon_stat .journal_compactions)" -gt 0 ]
	[ "$(daemon_stat .done)" = 40000 ]
	# Once the jobs have passed and the last compaction's sync is done, the
	# bound holds.
	wait_until 30 dir_within 2 2
	# What compaction kept is the live state.
	crash_daemon
	start_durable --keep 1 --keep-max 1000
	[ "$(daemon_stat .queued)" = 0 ]
	[ "$(daemon_stat .retained)" -le 1000 ]
	assert_daemon_healthy
}

@test "a deleted data directory: refused and said once in the log; once it is made again, every job is written into it" {
	local i
	start_durable
	conn_open M
	send M '{"action":"submit","id":"before","type":"t","detach":true,"body":1}'
	wait_lines M 1
	[ "$(line M 1 | jq -r .ok)" = true ]
	rm -rf "$DATA"
	# The next submission finds it gone: refused, as are those after it.
	send M '{"action":"submit","id":"lost","type":"t","detach":true,"body":2}'
	settle M
	is_error "$(received M | sed -n 2p)" unavailable '"lost"'
	received M | sed -n 2p | grep -q 'data directory was deleted'
	wait_until 10 grep -q 'the data directory was deleted while in use' "$DAEMON_LOG"
	grep 'was deleted while in use' "$DAEMON_LOG" | grep -q 'mkdir'
	for i in 1 2 3; do
		send M "{\"action\":\"submit\",\"id\":\"refused$i\",\"type\":\"t\",\"detach\":true,\"body\":$i}"
		settle M
		is_error "$(received M | tail -n 1)" unavailable "\"refused$i\""
	done
	[ "$(job_status '"before"')" = queued ]
	# It comes back: the journal writes every job into it by itself.
	mkdir "$DATA"
	wait_until 30 grep -q 'the data directory is back' "$DAEMON_LOG"
	wait_until 30 stat_is .journal_error 0
	[ -s "$DATA/lock" ]
	[ "$(submit_acked '"after"' t 3 ',"detach":true' | jq -r .ok)" = true ]
	# Said once, not at every retry.
	[ "$(grep -c 'was deleted while in use' "$DAEMON_LOG")" = 1 ]
	crash_daemon
	start_durable
	[ "$(job_status '"before"')" = queued ]
	[ "$(job_status '"after"')" = queued ]
	[ "$(job_status '"lost"')" = unknown_id ]
	[ "$(job_status '"refused1"')" = unknown_id ]
	assert_daemon_healthy
}
