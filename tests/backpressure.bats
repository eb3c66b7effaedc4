#!/usr/bin/env bats
# backpressure.bats — peers that write before they read.
#
# The daemon never stops reading a connection because its output is
# backlogged: a worker past the soft limit just gets no new job, a master's
# job endings wait in its jobs, and only a peer that keeps producing small
# frames it never reads is dropped, past the hard limit, with "full".

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'

PEER="$BATS_TEST_DIRNAME/helpers/netpeer.py"

file_is() {
	[ "$(cat "$1" 2>/dev/null)" = "$2" ]
}

# write_then_read_worker CAP BYTES JOBS: a worker that answers one job
# (BYTES of body) before it reads the next, with JOBS submitted by a master
# that reads as it writes; every job must complete.
write_then_read_worker() {
	local cap=$1 bytes=$2 n=$3 out=$BATS_TEST_TMPDIR/master.out
	start_daemon --keep 0
	bg python3 "$PEER" worker "$JOBFS_WORKER_PORT" wtr "$cap" "$bytes" "$n" small
	wait_until 10 stat_is .types.wtr.workers 1
	bg python3 "$PEER" master "$JOBFS_MASTER_PORT" wtr "$n" "$bytes" "$out"
	wait_until 120 file_is "$out" "$n"
	[ "$(daemon_stat .types.wtr.done)" = "$n" ]
	assert_daemon_healthy
}

@test "a write-then-read worker, capacity 16, 1 MiB bodies: 40 jobs all complete" {
	write_then_read_worker 16 1048576 40
}

@test "a write-then-read worker, capacity 256, 64 KiB bodies: all jobs complete" {
	write_then_read_worker 256 65536 600
}

# write_first_master N BYTES: a master writes N submissions of BYTES each
# before it reads any reply, and must get every result.
write_first_master() {
	local n=$1 bytes=$2 out=$BATS_TEST_TMPDIR/master.out
	start_daemon --keep 0
	bg python3 "$PEER" worker "$JOBFS_WORKER_PORT" wf 64 "$bytes" "$n"
	wait_until 10 stat_is .types.wf.workers 1
	bg python3 "$PEER" master "$JOBFS_MASTER_PORT" wf "$n" "$bytes" "$out" first
	wait_until 300 file_is "$out" "$n"
	[ "$(daemon_stat .slow_clients_dropped)" = 0 ]
	assert_daemon_healthy
}

@test "a master that writes 1,000 submissions of 16 KiB before reading gets every reply" {
	write_first_master 1000 16384
}

@test "a master that writes 2,000 submissions of 64 KiB before reading gets every reply" {
	write_first_master 2000 65536
}

@test "a peer that floods small requests and never reads is dropped past the hard limit" {
	local dir=$BATS_TEST_TMPDIR i
	# The hard limit is 64 MiB + 2 frames: 2^22 pings make 76 MiB of pongs.
	start_daemon --max-frame 1024
	frame_bytes '{"type":"ping"}' >"$dir/pings"
	for i in $(seq 22); do
		cat "$dir/pings" "$dir/pings" >"$dir/p2"
		mv "$dir/p2" "$dir/pings"
	done
	exec {s}<>"/dev/tcp/127.0.0.1/$JOBFS_MASTER_PORT"
	bg perl -e '
		open(my $f, "<", $ARGV[0]) or die;
		open(my $s, ">&=", $ARGV[1]) or die;
		binmode $f; binmode $s; local $/;
		print $s scalar <$f>; sleep 600;' "$dir/pings" "$s"
	exec {s}>&-
	wait_until 120 stat_is .slow_clients_dropped 1
	grep -q 'more than .* bytes of output unread: dropping it' "$DAEMON_LOG"
	wait_until 20 stat_is .masters 1
	assert_daemon_healthy
}
