# daemon.bash — start a private jobfs for one test and always stop it.
#
# load 'helpers/daemon'  (then call start_daemon in setup or in the test)
#
# Each test gets its own daemon on free loopback ports under
# $BATS_TEST_TMPDIR; teardown kills what the test started, stops the daemon
# with SIGTERM, unmounts any tree, and fails the test if the daemon did not
# exit cleanly or a sanitizer reported anything in its log.

# Tests use `run ! cmd` (a `! cmd` before a test's last line never fails it).
bats_require_minimum_version 1.5.0


JOBFS_BIN=${JOBFS_BIN:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)/build}
JOBFS=$JOBFS_BIN/jobfs
JOBCTL=$JOBFS_BIN/jobctl
export JOBFS_BIN JOBFS JOBCTL
# Sanitizer builds: report, don't guess. Leaks are checked at daemon exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:exitcode=86}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=87}

DAEMON_PID=
DAEMON_LOG=
MNT=

# port_free PORT: nothing accepts connections on PORT.
port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# random_port: a free port below the kernel's ephemeral range, since a
# port that some client socket holds (even in TIME_WAIT) cannot be
# listened on.
random_port() {
	local lo p
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
	[ "$lo" -gt 12000 ] || lo=32768
	while :; do
		p=$((10000 + (RANDOM * 32768 + RANDOM) % (lo - 10000)))
		port_free "$p" && { echo "$p"; return; }
	done
}

# wait_for_port PORT [SECONDS]: until something listens on PORT.
wait_for_port() {
	local i
	for ((i = 0; i < ${2:-10} * 20; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# wait_until SECONDS CMD...: poll CMD until it succeeds, for at most
# SECONDS.  The polls come every 20 ms at first, then further apart (up to
# 250 ms after a few seconds): most waits end within a poll or two, and a
# long wait should not spend the CPU that the other tests running beside
# it need (each poll is a few processes).
wait_until() {
	local end=$((${EPOCHREALTIME/./} + $1 * 1000000)) delay=0.02 i=0
	shift
	while :; do
		"$@" && return 0
		[ "${EPOCHREALTIME/./}" -lt "$end" ] || break
		sleep "$delay"
		i=$((i + 1))
		case $i in
		10) delay=0.05 ;;
		50) delay=0.1 ;;
		80) delay=0.25 ;;
		esac
	done
	echo "timed out waiting for: $*" >&2
	return 1
}

# fast_helpers: no DEBUG trap inside functions from here on.  bats traces
# every simple command of a test through a DEBUG trap that functions
# inherit (set -T), about 0.4 ms each: the helpers' polling and parsing
# loops spent most of the suite's CPU there.  Without it a failure inside
# a helper is reported at the test's line that called the helper.  (Set
# while the test runs, as here: set at load time, bats loses the line.)
fast_helpers() {
	set +T
}

# start_daemon [jobfs options...]: runs jobfs -f on free ports; sets
# DAEMON_PID, DAEMON_LOG, JOBFS_MASTER_PORT, JOBFS_WORKER_PORT (jobctl
# reads those two from the environment).
start_daemon() {
	local attempt i
	fast_helpers
	DAEMON_LOG=$BATS_TEST_TMPDIR/daemon.log
	for attempt in 1 2 3 4 5; do
		JOBFS_MASTER_PORT=$(random_port)
		JOBFS_WORKER_PORT=$(random_port)
		export JOBFS_MASTER_PORT JOBFS_WORKER_PORT
		: >"$DAEMON_LOG"
		"$JOBFS" -f --master-port "$JOBFS_MASTER_PORT" \
			--worker-port "$JOBFS_WORKER_PORT" "$@" >>"$DAEMON_LOG" 2>&1 &
		DAEMON_PID=$!
		# Ready once it has logged both listeners (and, with a tree, mounted).
		for ((i = 0; i < 400; i++)); do
			kill -0 "$DAEMON_PID" 2>/dev/null || break
			grep -q ' workers on ' "$DAEMON_LOG" && return 0
			sleep 0.05
		done
		kill "$DAEMON_PID" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || true
		# Only a port taken meanwhile by someone else is worth a retry.
		grep -q 'cannot listen' "$DAEMON_LOG" || break
	done
	DAEMON_PID=
	echo "jobfs did not start; log:" >&2
	cat "$DAEMON_LOG" >&2
	return 1
}

# start_daemon_mounted [options...]: start_daemon with a tree at $MNT.
start_daemon_mounted() {
	MNT=$BATS_TEST_TMPDIR/mnt
	mkdir -p "$MNT"
	start_daemon "$@" "$MNT" || return 1
	wait_until 10 test -e "$MNT/README"
}

# bg CMD...: run CMD in the background; teardown kills it.
bg() {
	"$@" &
	BG_PIDS+=("$!")
}
BG_PIDS=()

# sanitizer_clean: the daemon log holds no sanitizer report.
sanitizer_clean() {
	! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: (Address|Undefined)' "$DAEMON_LOG"
}

# stop_daemon: SIGTERM, wait, and check that it exited cleanly.
stop_daemon() {
	local status=0 i
	[ -n "$DAEMON_PID" ] || return 0
	kill -TERM "$DAEMON_PID" 2>/dev/null
	for ((i = 0; i < 200; i++)); do
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$DAEMON_PID" 2>/dev/null; then
		echo "jobfs did not exit within 10s of SIGTERM" >&2
		kill -KILL "$DAEMON_PID"
		status=1
	fi
	wait "$DAEMON_PID" 2>/dev/null
	local rc=$?
	DAEMON_PID=
	if [ "$status" = 0 ] && [ "$rc" != 0 ]; then
		echo "jobfs exited with status $rc" >&2
		status=1
	fi
	if ! sanitizer_clean; then
		echo "sanitizer report in the daemon log:" >&2
		status=1
	fi
	[ "$status" = 0 ] || cat "$DAEMON_LOG" >&2
	return "$status"
}

# kill_tree PID: SIGTERM to PID and to every process below it.  A command
# started in the background through a shell function (`on B jobctl work
# ... &`, `bg as wk jobctl ...`) runs in a subshell whose pid is $!: the
# jobctl under it must be stopped too, or it would outlive the test,
# reconnecting to daemons that are gone.
kill_tree() {
	local c
	for c in $(pgrep -P "$1" 2>/dev/null); do
		kill_tree "$c"
	done
	kill -TERM "$1" 2>/dev/null
}

daemon_teardown() {
	local p
	for p in "${BG_PIDS[@]}"; do
		kill_tree "$p"
	done
	for p in "${BG_PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	BG_PIDS=()
	local status=0
	stop_daemon || status=1
	if [ -n "$MNT" ] && mountpoint -q "$MNT" 2>/dev/null; then
		echo "tree still mounted after the daemon stopped" >&2
		fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT"
		status=1
	fi
	return "$status"
}

teardown() {
	daemon_teardown
}
