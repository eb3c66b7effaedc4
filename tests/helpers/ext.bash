# ext.bash — helpers for the protocol extension tests (SPEC 1.3).
#
# load 'helpers/daemon'; load 'helpers/frames'; load 'helpers/ext'
#
# Connections (conn_open, send, settle, wait_lines, line, out_of ...) come
# from helpers/conn.bash; this adds jq-filtered views of what a connection
# received (frames, count, endings, wait_frame), daemon counters by job
# type, and stopped processes: ext's teardown resumes stopped processes and
# closes every connection before daemon_teardown kills them.

source "$BATS_TEST_DIRNAME/helpers/conn.bash"

STOPPED_PIDS=()

# frames NAME [JQ FILTER]: NAME's frames, other than the pongs that
# settle asked for, filtered by a jq select expression.
frames() {
	received "$1" | jq -c "select(${2:-true})"
}

# count NAME JQ-FILTER: how many of NAME's frames match.
count() {
	frames "$1" "$2" | wc -l | tr -d ' '
}

# is_ending: jq filter for a job's one ending frame (result or error).
ENDING='((has("body") and (.partial != true)) or
	(.error == "cancelled" or .error == "timeout" or .error == "job_failed"))'

# endings NAME ID: how many ending frames NAME got for id ID (JSON text).
endings() {
	count "$1" ".id == $2 and $ENDING"
}

# workers_of TYPE: how many workers the daemon counts for TYPE.
workers_of() {
	local n
	n=$(daemon_stat ".types[\"$1\"].workers // 0") || return 1
	echo "$n"
}

workers_are() {
	[ "$(workers_of "$1")" = "$2" ]
}

# stop_proc PID / cont_proc PID: SIGSTOP and SIGCONT, remembered so that
# teardown never leaves a stopped process behind (it would ignore SIGTERM).
stop_proc() {
	kill -STOP "$1"
	STOPPED_PIDS+=("$1")
}

cont_proc() {
	kill -CONT "$1" 2>/dev/null
	return 0
}

ext_teardown() {
	local p
	for p in "${STOPPED_PIDS[@]}"; do
		kill -CONT "$p" 2>/dev/null
	done
	STOPPED_PIDS=()
	conn_close_all
}

teardown() {
	ext_teardown
	daemon_teardown
}

# has_frame NAME JQ-FILTER [N]: NAME has received at least N (default 1)
# frames matching the filter.  wait_frame waits for that.
has_frame() {
	[ "$(count "$1" "$2")" -ge "${3:-1}" ]
}

wait_frame() {
	wait_until 10 has_frame "$@"
}
