#!/usr/bin/env bats
# durable_compact.bats — a crash at every step of a compaction, of a
# segment's rotation and of the data directory's creation, by crash points
# (JOBFS_CRASH_AT=POINT:N makes the daemon _exit(137) there, as kill -9
# would): after the restart every acknowledged job is there exactly once,
# queued ones queued with their bodies, cancelled ones not queued again,
# with --sync always and --sync never.  A compaction's snapshot counts only
# once it is whole and durable; until then replay uses the old segments.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'
load 'helpers/durable'

# Small segments: 1000 jobs of 1 KiB fill four, and cancelling a few
# hundred of them with --keep-max 1 starts a compaction.
export JOBFS_SEGMENT_BYTES=262144

cl() {
	python3 "$BATS_TEST_DIRNAME/helpers/compact_load.py" "$@"
}

dead() {
	! proc_alive "$1"
}

# died_at POINT[:N]: the daemon exited with status 137, saying it reached
# that crash point.
died_at() {
	local point=$1 rc=0
	[[ $point == *:* ]] || point=$point:1
	wait_until 60 dead "$DAEMON_PID"
	wait "$DAEMON_PID" || rc=$?
	DAEMON_PID=
	cat "$DAEMON_LOG" >>"$BATS_TEST_TMPDIR/daemon.before.log"
	echo "exit status $rc" >&2
	[ "$rc" = 137 ]
	grep -qF "crash point $point reached" "$DAEMON_LOG"
}

# fill_pristine SYNC: 1000 acknowledged queued jobs of 1 KiB (q0..q999),
# and then, with CHAIN=N, a dependency chain of N jobs; kept in
# $PRISTINE (the directory) and $PRISTINE.out (what was acknowledged).
fill_pristine() {
	local sync=$1
	PRISTINE=$BATS_TEST_TMPDIR/pristine
	OUT=$PRISTINE.out
	mkdir -p "$OUT"
	start_durable --sync "$sync" --keep-max 1
	cl fill "$JOBFS_MASTER_PORT" q "${NQ:-1000}" 1000 "$OUT"
	[ "$(wc -l <"$OUT/acked")" = "${NQ:-1000}" ]
	if [ -n "${CHAIN:-}" ]; then
		cl chain "$JOBFS_MASTER_PORT" "$CHAIN" "$OUT"
		[ "$(wc -l <"$OUT/acked")" = $((${NQ:-1000} + CHAIN + 1)) ]
	fi
	stop_daemon
	cp -a "$DATA" "$PRISTINE"
}

# crash_round POINT SYNC WHAT...: from the pristine directory, a daemon
# armed with POINT cancels WHAT (compact_load.py cancel) until it dies at
# that point.  Restarted, it takes one more job and is killed; restarted
# again (replaying what followed the crash too), every acknowledged job is
# checked, and the new one is there.
crash_round() {
	local point=$1 sync=$2 check
	shift 2
	rm -rf "$DATA" "$BATS_TEST_TMPDIR/out"
	cp -a "$PRISTINE" "$DATA"
	cp -a "$PRISTINE.out" "$BATS_TEST_TMPDIR/out"
	OUT=$BATS_TEST_TMPDIR/out
	JOBFS_CRASH_AT=$point start_durable --sync "$sync" --keep-max 1
	cl cancel "$JOBFS_MASTER_PORT" "$OUT" "$@"
	died_at "$point"
	start_durable --sync "$sync" --keep-max 1
	[ "$(submit_acked '"after"' u '{"n":1}' ',"detach":true')" = '{"ok":true,"id":"after"}' ]
	crash_daemon
	start_durable --sync "$sync" --keep-max 1
	check=$(cl check "$JOBFS_MASTER_PORT" "$JOBFS_WORKER_PORT" "$OUT")
	echo "# --sync $sync, $point: $check" >&3
	[ "$(jq .bad <<<"$check")" = 0 ]
	[ "$(jq .lost <<<"$check")" = 0 ]
	[ "$(job_status '"after"')" = queued ]
	stop_daemon
}

# Every step of a compaction, in order: the new segment created; the
# snapshot's write cut after its 1st and its 650th record (of at least
# 700; half of the next one written); the snapshot written, not synced;
# its data synced, not the directory; both durable, nothing unlinked;
# between the unlinks of the old segments (after the first of four);
# every old segment unlinked.
COMPACT_POINTS='compact-rotated compact-record:1 compact-record:650
	compact-written compact-fdatasync compact-durable compact-unlink:1
	compact-dropped'

@test "--sync always: a crash at each step of a compaction loses no acknowledged job" {
	local p
	fill_pristine always
	for p in $COMPACT_POINTS; do
		crash_round "$p" always q0-299
	done
	start_durable --keep-max 1
	assert_daemon_healthy
}

# Without syncs a kill -9 keeps what was written: the order of the writes
# and the unlinks is what counts.
@test "--sync never: a crash at each step of a compaction loses no acknowledged job" {
	local p
	fill_pristine never
	for p in compact-record:650 compact-durable compact-unlink:1; do
		crash_round "$p" never q0-299
	done
	start_durable --sync never --keep-max 1
	assert_daemon_healthy
}

@test "a cancelled dependency chain of 3000 jobs, crashed in the compaction just after: every job is there" {
	# (Segments large enough that the chain's lives start no compaction.)
	export JOBFS_SEGMENT_BYTES=1048576
	CHAIN=3000 fill_pristine never
	crash_round compact-record:700 never head
	crash_round compact-record:700 always head
	start_durable --keep-max 1
	assert_daemon_healthy
}

@test "a crash at each step of a segment's rotation loses no acknowledged job" {
	local p sync check
	export JOBFS_SEGMENT_BYTES=65536
	OUT=$BATS_TEST_TMPDIR/out
	for p in always:rotate-created never:rotate-written; do
		sync=${p%%:*} p=${p#*:}
		rm -rf "$DATA" "$OUT"
		mkdir -p "$OUT"
		# 20 jobs in the first segment, then more until it rotates.
		start_durable --sync "$sync"
		cl fill "$JOBFS_MASTER_PORT" p 20 1000 "$OUT"
		stop_daemon
		JOBFS_CRASH_AT=$p start_durable --sync "$sync"
		cl fill "$JOBFS_MASTER_PORT" q 400 1000 "$OUT" 16
		died_at "$p"
		start_durable --sync "$sync"
		check=$(cl check "$JOBFS_MASTER_PORT" "$JOBFS_WORKER_PORT" "$OUT")
		echo "# --sync $sync, $p: $check" >&3
		[ "$(jq .acked <<<"$check")" -gt 20 ]
		[ "$(jq .bad <<<"$check")" = 0 ]
		stop_daemon
	done
	start_durable
	assert_daemon_healthy
}

@test "a crash at each step of creating the data directory: the next start works and keeps what it acknowledges" {
	local p
	for p in datadir-mkdir datadir-lock datadir-segment; do
		rm -rf "$DATA"
		run env JOBFS_CRASH_AT=$p timeout 20 "$JOBFS" -f --master-port 0 \
			--worker-port 0 --data "$DATA"
		[ "$status" = 137 ]
		[[ "$output" == *"crash point $p:1 reached"* ]]
		start_durable
		[ "$(submit_acked '"k"' t '{"n":1}' ',"detach":true')" = '{"ok":true,"id":"k"}' ]
		crash_daemon
		start_durable
		[ "$(job_status '"k"')" = queued ]
		stop_daemon
	done
	start_durable
	assert_daemon_healthy
}
