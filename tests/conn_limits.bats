#!/usr/bin/env bats
# conn_limits.bats — limits on connections and their input: the fd limit, --max-conns, --max-input, --frame-timeout,
# and heartbeat liveness counted in whole frames.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'

PEER="$BATS_TEST_DIRNAME/helpers/netpeer.py"

# cpu_ticks PID: user + system clock ticks the process has used.
cpu_ticks() {
	awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

file_has() {
	[ -e "$1" ]
}

@test "at the fd limit, accept pauses instead of spinning, sheds with full, and resumes" {
	local dir=$BATS_TEST_TMPDIR t0 c0 t1 c1 hz lines
	start_daemon
	prlimit --pid "$DAEMON_PID" --nofile=64:64
	bg python3 "$PEER" hold "$JOBFS_MASTER_PORT" 150 "$dir"
	wait_until 30 file_has "$dir/ready"
	wait_until 10 grep -qi 'too many open files' "$DAEMON_LOG"
	# Idle at the limit with connections waiting: the daemon must sleep.
	hz=$(getconf CLK_TCK)
	t0=$(date +%s%N) c0=$(cpu_ticks "$DAEMON_PID")
	sleep 2
	t1=$(date +%s%N) c1=$(cpu_ticks "$DAEMON_PID")
	echo "cpu: $((c1 - c0)) ticks in $(((t1 - t0) / 1000000)) ms" >&2
	# Under half of one core (generous: a spinning accept uses all of it).
	[ $(((c1 - c0) * 1000 / hz)) -lt $(((t1 - t0) / 1000000 / 2)) ]
	lines=$(grep -ci 'too many open files' "$DAEMON_LOG")
	echo "log lines: $lines" >&2
	[ "$lines" -le 3 ]
	# The shed connections were told why.
	touch "$dir/go"
	wait_until 30 file_has "$dir/full"
	echo "told full: $(cat "$dir/full")" >&2
	[ "$(cat "$dir/full")" -ge 1 ]
	[ "$(daemon_stat .connections_refused)" -ge 1 ]
	assert_daemon_healthy
}

@test "past --max-conns a new connection gets one full error frame and is closed" {
	local dir=$BATS_TEST_TMPDIR
	start_daemon --max-conns 8
	bg python3 "$PEER" hold "$JOBFS_MASTER_PORT" 10 "$dir"
	wait_until 10 file_has "$dir/ready"
	touch "$dir/go"
	wait_until 30 file_has "$dir/full"
	[ "$(cat "$dir/full")" = 2 ]
	grep -q 'over --max-conns' "$DAEMON_LOG"
	wait_until 10 stat_is .connections 1
	[ "$(daemon_stat .connections_refused)" = 2 ]
	assert_daemon_healthy
}

@test "50 connections sending an unfinished 15 MiB frame: memory stays bounded by --max-input" {
	local dir=$BATS_TEST_TMPDIR rss limit=450
	# Freed buffers must not sit in ASan's quarantine to be counted.
	ASAN_OPTIONS=${ASAN_OPTIONS}:quarantine_size_mb=16 start_daemon
	bg python3 "$PEER" partial "$JOBFS_MASTER_PORT" 50 16000000 15728640 "$dir"
	wait_until 300 file_has "$dir/ready"
	rss=$(($(rss_kb) / 1024))
	echo "rss with 50 unfinished 15 MiB frames: $rss MiB" >&2
	[ "$rss" -lt "$limit" ]
	[ "$(daemon_stat .input_dropped)" -ge 30 ]
	touch "$dir/go"
	wait_until 30 file_has "$dir/full"
	[ "$(cat "$dir/full")" -ge 30 ]
	wait_until 20 stat_is .connections 1
	assert_daemon_healthy
}

@test "a frame not finished within --frame-timeout gets an error frame and the connection closes" {
	local out=$BATS_TEST_TMPDIR/stall
	start_daemon --frame-timeout 1
	bg python3 "$PEER" stall "$JOBFS_MASTER_PORT" "$out"
	wait_until 20 file_has "$out.closed"
	[ "$(jq -r .error "$out.closed")" = frame_timeout ]
	[ "$(daemon_stat .frame_timeouts)" = 1 ]
	assert_daemon_healthy
}

@test "a worker dribbling bytes of a frame is silent to its heartbeat and is dropped" {
	local dir=$BATS_TEST_TMPDIR
	start_daemon
	bg python3 "$PEER" dribble "$JOBFS_WORKER_PORT" 100 "$dir"
	wait_until 10 grep -q 'joined drip' "$DAEMON_LOG"
	# One byte every 50 ms, never a whole frame: silent for 3 x 100 ms.
	wait_until 10 grep -q 'heartbeat lost' "$DAEMON_LOG"
	wait_until 10 stat_is .workers 0
	touch "$dir/go"
	assert_daemon_healthy
}
