#!/usr/bin/env bats
# limits.bats — clients that do not play along, and load: masters that
# never read, connections that come and go in hundreds, and memory after a
# burst of 100k jobs.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'

setup() {
	# Each test starts its own daemon, with the options it needs.
	:
}

# flood PORT FILE: write FILE to a fresh connection and never read a byte;
# once written, stay connected.  Run it with bg: its pid holds the socket.
flood() {
	local s
	exec {s}<>"/dev/tcp/127.0.0.1/$1"
	exec perl -e '
		open(my $f, "<", $ARGV[0]) or die "$ARGV[0]: $!";
		open(my $s, ">&=", $ARGV[1]) or die "socket: $!";
		binmode $f;
		binmode $s;
		select((select($s), $| = 1)[0]);
		local $/;
		print $s scalar <$f>;
		sleep 600;' "$2" "$s"
}

# mb_over KB_NOW KB_BEFORE: growth in MiB.
mb_over() {
	echo $((($1 - $2) / 1024))
}

# frames_in_at_least N
frames_in_at_least() {
	[ "$(daemon_stat .frames_in)" -ge "$1" ]
}

@test "a master that floods pings and never reads is still read, its pongs bounded, and others keep working" {
	local dir=$BATS_TEST_TMPDIR base i limit=100 flooder
	asan_build && limit=300
	start_daemon
	# 2^20 pings, 19 MiB, and as much again in pongs, under the hard limit.
	frame_bytes '{"type":"ping"}' >"$dir/pings"
	for i in $(seq 20); do
		cat "$dir/pings" "$dir/pings" >"$dir/p2"
		mv "$dir/p2" "$dir/pings"
	done
	[ "$(stat -c %s "$dir/pings")" = $((19 * 1024 * 1024)) ]
	base=$(rss_kb)
	bg flood "$JOBFS_MASTER_PORT" "$dir/pings"
	flooder=${BG_PIDS[-1]}
	# Reading never stops for output: the whole flood is taken...
	wait_until 60 frames_in_at_least 1048576
	[ "$(daemon_stat .masters)" = 2 ]
	# ...holding a bounded backlog...
	echo "rss grew by $(mb_over "$(rss_kb)" "$base") MiB" >&2
	[ "$(mb_over "$(rss_kb)" "$base")" -lt "$limit" ]
	# ...while everyone else is served.
	assert_daemon_healthy
	conn_open M
	settle M
	[ "$(line M 1)" = "$PONG" ]
	# Once the flooder goes, so does its connection.
	kill "$flooder"
	wait_until 10 stat_is .masters 2
	conn_kill M
	wait_until 10 stat_is .masters 1
	[ "$(mb_over "$(rss_kb)" "$base")" -lt "$limit" ]
}

@test "a master whose results pile up unread keeps them in its jobs, not its output, and is not dropped" {
	local dir=$BATS_TEST_TMPDIR i limit=400
	asan_build && limit=1500
	start_daemon --max-frame 1048576 --keep 0
	# 100 jobs whose results are 1 MB each: 100 MB the master never reads.
	# Past the soft limit its endings wait in its jobs, not in its output.
	for i in $(seq 100); do
		echo "{\"type\":\"job\",\"job_type\":\"fat\",\"id\":$i,\"body\":$i}"
	done | frames_from_lines >"$dir/jobs"
	bg flood "$JOBFS_MASTER_PORT" "$dir/jobs"
	wait_until 10 stat_is .types.fat.queued 100
	ECHO_BYTES=1000000 echo_worker fat
	wait_until 60 stat_is .types.fat.done 100
	[ "$(daemon_stat .masters)" = 2 ]
	[ "$(daemon_stat .slow_clients_dropped)" = 0 ]
	echo "peak rss $(awk '/^VmHWM:/ { print int($2 / 1024) }' "/proc/$DAEMON_PID/status") MiB" >&2
	[ "$(awk '/^VmHWM:/ { print int($2 / 1024) }' "/proc/$DAEMON_PID/status")" -lt "$limit" ]
	assert_daemon_healthy
}

@test "a master that floods submits while no worker reads them keeps them all" {
	local dir=$BATS_TEST_TMPDIR
	start_daemon
	seq 1 20000 | awk '{ printf "{\"type\":\"job\",\"job_type\":\"q\",\"id\":%d,\"body\":%d}\n", $1, $1 }' |
		frames_from_lines >"$dir/jobs"
	bg flood "$JOBFS_MASTER_PORT" "$dir/jobs"
	wait_until 20 stat_is .types.q.queued 20000
	echo_worker q 64
	wait_until 30 stat_is .types.q.done 20000
	[ "$(daemon_stat .slow_clients_dropped)" = 0 ]
	assert_daemon_healthy
}

@test "hundreds of concurrent masters all get their results" {
	local dir=$BATS_TEST_TMPDIR i n=300 pids=()
	start_daemon
	for i in $(seq $n); do
		timeout 60 "$JOBCTL" submit --id "c$i" conc "{\"master\":$i}" >"$dir/r$i" 2>"$dir/e$i" 3>&- &
		pids+=("$!")
	done
	BG_PIDS+=("${pids[@]}")
	# All connected at once, all waiting.
	wait_until 60 stat_is .types.conc.queued $n
	[ "$(daemon_stat .masters)" -gt $n ]
	echo_worker conc 8
	echo_worker conc 8
	echo_worker conc
	for i in $(seq $n); do
		wait "${pids[$((i - 1))]}" || { cat "$dir/e$i" >&2; false; }
	done
	# Each printed its own result: {"master":i}.
	[ "$(cat $(printf "$dir/r%d " $(seq $n)) | jq -c keys | uniq -c | awk '{ print $1, $2 }')" = "$n [\"master\"]" ]
	[ "$(cat $(printf "$dir/r%d " $(seq $n)) | jq .master | tr '\n' ' ')" = "$(seq $n | tr '\n' ' ')" ]
	[ "$(daemon_stat .types.conc.done)" = $n ]
	wait_until 10 stat_is .masters 1
}

@test "hundreds of connections that open and vanish leave nothing behind" {
	local i fd fds=() base
	# Under ASan, freed buffers wait in its quarantine (256 MiB by default)
	# before they can be reused: keep it small, so that RSS shows a leak
	# and not the quarantine.
	export ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=4:thread_local_quarantine_size_kb=64"
	start_daemon
	base=$(rss_kb)
	for i in $(seq 250); do
		exec {fd}<>"/dev/tcp/127.0.0.1/$JOBFS_MASTER_PORT"
		fds+=("$fd")
		exec {fd}<>"/dev/tcp/127.0.0.1/$JOBFS_WORKER_PORT"
		fds+=("$fd")
	done
	# Half the workers join, half the masters submit (to a type no worker
	# takes), then all vanish.
	for i in $(seq 0 4 499); do
		frame_bytes '{"type":"join","job_type":"churn"}' >&"${fds[$((i + 1))]}"
		frame_bytes "{\"type\":\"job\",\"job_type\":\"nobody\",\"id\":$i,\"body\":1}" >&"${fds[$i]}"
	done
	wait_until 20 stat_is .connections 501
	wait_until 10 stat_is .types.churn.workers 125
	wait_until 10 stat_is .types.nobody.queued 125
	for fd in "${fds[@]}"; do
		exec {fd}>&-
	done
	wait_until 20 stat_is .connections 1
	# Every worker left its type, and every queued job was cancelled.
	[ "$(daemon_stat '.types.churn.workers // 0')" = 0 ]
	[ "$(daemon_stat .queued)" = 0 ]
	[ "$(daemon_stat .cancelled)" = 125 ]
	[ "$(mb_over "$(rss_kb)" "$base")" -lt 50 ]
	assert_daemon_healthy
}

@test "memory returns near its baseline after a burst of 100k jobs" {
	local dir=$BATS_TEST_TMPDIR base after limit=20
	# Under ASan, freed memory is held in quarantine unless told otherwise.
	ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=8:allocator_release_to_os_interval_ms=50" \
		start_daemon --keep 1
	asan_build && limit=60
	seq 1 100000 | awk '{ printf "{\"type\":\"job\",\"job_type\":\"mass\",\"id\":%d,\"body\":{\"n\":%d,\"pad\":\"abcdefghijklmnopqrstuvwxyz\"}}\n", $1, $1 }' >"$dir/jobs"
	seq 100001 101000 | awk '{ printf "{\"type\":\"job\",\"job_type\":\"mass\",\"id\":\"w%d\",\"body\":[%d]}\n", $1, $1 }' >"$dir/warm"
	echo_worker mass 32
	echo_worker mass 32
	# Warm up, let that expire, and take the baseline.
	"$JOBCTL" raw -n 1000 -t 20000 <"$dir/warm" >/dev/null
	wait_until 20 stat_is .retained 0
	base=$(rss_kb)
	run "$JOBCTL" raw -n 100000 -t 20000 <"$dir/jobs"
	[ "$status" = 0 ]
	[ "${#lines[@]}" = 100000 ]
	[ "$(printf '%s\n' "${lines[@]}" | jq -c 'select(.body.n != .id)' | head -n 3)" = "" ]
	[ "$(daemon_stat .done)" = 101000 ]
	wait_until 20 stat_is .retained 0
	wait_until 10 stat_is .connections 3
	rss_back() { [ "$(mb_over "$(rss_kb)" "$base")" -lt "$limit" ]; }
	wait_until 5 rss_back || true
	after=$(rss_kb)
	echo "rss: ${base} kB before, ${after} kB after" >&2
	[ "$(mb_over "$after" "$base")" -lt "$limit" ]
}
