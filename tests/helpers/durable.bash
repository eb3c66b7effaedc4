# durable.bash — a daemon with a data directory, crashed and started again.
#
# load 'helpers/daemon'; load 'helpers/frames'; load 'helpers/proto';
# load 'helpers/durable'
#
#   DATA                         the test's data directory
#   start_durable [options...]   start_daemon --data $DATA (ready once its
#                                journal is replayed: it logs that line)
#   crash_daemon                 kill -9 the daemon; unmount a tree it left
#   journal_replayed             the log says the journal was replayed
#   load_py MODE ARGS...         tests/helpers/durable_load.py
#   submit_acked ID TYPE BODY [OPTIONS_JSON]
#                                a later-dialect submit from a fresh master,
#                                waiting for its {"ok":true}
#   segments                     the segment files of $DATA, sorted

DATA=${BATS_TEST_TMPDIR:-/tmp}/data

start_durable() {
	start_daemon --data "$DATA" "$@" || return 1
	wait_until 30 grep -q 'journal: .* replayed in' "$DAEMON_LOG"
}

start_durable_mounted() {
	MNT=$BATS_TEST_TMPDIR/mnt
	mkdir -p "$MNT"
	start_durable "$@" "$MNT" || return 1
	wait_until 10 test -e "$MNT/README"
}

crash_daemon() {
	[ -n "$DAEMON_PID" ] || return 0
	kill -KILL "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null || true
	DAEMON_PID=
	if [ -n "$MNT" ] && grep -qF " $MNT " /proc/mounts; then
		fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT"
	fi
	# The log of the next start is a new file; keep this one for failures.
	[ -f "$DAEMON_LOG" ] && cat "$DAEMON_LOG" >>"$BATS_TEST_TMPDIR/daemon.before.log"
	return 0
}

load_py() {
	python3 "$BATS_TEST_DIRNAME/helpers/durable_load.py" "$@"
}

submit_acked() {
	local extra=${4:-}
	printf '%s\n' "{\"action\":\"submit\",\"id\":$1,\"type\":\"$2\",\"body\":$3$extra}" |
		"$JOBCTL" raw -n 1 -t 5000
}

segments() {
	find "$DATA" -name '*.log' | sort
}

# jobs_in_order NAME: the ids of the jobs worker NAME received, one a line.
job_ids_of() {
	jobs_of "$1" | jq -c .id
}
