# ext.bash — helpers for the protocol extension tests (SPEC 1.3).
#
# load 'helpers/daemon'; load 'helpers/frames'; load 'helpers/ext'
#
# A "peer" is a long-lived `jobctl raw` connection driven from the test:
#
#   peer_start W --worker          connect W to the worker port
#   say W '{"type":"join",...}'    send frames (one per argument)
#   wait_lines W 2                 until W has received 2 frames
#   line W 2                       the 2nd frame W received
#   peer_sync W                    send a ping; wait for its pong, so every
#                                  frame said before has been handled
#
# Frames a peer receives are in $BATS_TEST_TMPDIR/NAME.out, one per line.
# ext_teardown resumes stopped processes before daemon_teardown kills them.

declare -gA PEER_FD=() PEER_PID=() PEER_PONGS=()
STOPPED_PIDS=()

# peer_start NAME [jobctl raw options]
peer_start() {
	local name=$1 dir=$BATS_TEST_TMPDIR fd
	shift
	rm -f "$dir/$name.in" "$dir/$name.out"
	mkfifo "$dir/$name.in"
	"$JOBCTL" raw -t 600000 "$@" <"$dir/$name.in" >"$dir/$name.out" \
		2>"$dir/$name.err" &
	PEER_PID[$name]=$!
	BG_PIDS+=("$!")
	exec {fd}>"$dir/$name.in"
	PEER_FD[$name]=$fd
	PEER_PONGS[$name]=0
}

# peer_close NAME: end NAME's input; jobctl raw then closes the connection.
peer_close() {
	local fd=${PEER_FD[$1]}
	[ -n "$fd" ] || return 0
	exec {fd}>&-
	PEER_FD[$1]=
}

# peer_kill NAME: drop the connection at once.
peer_kill() {
	kill -TERM "${PEER_PID[$1]}" 2>/dev/null || true
	wait "${PEER_PID[$1]}" 2>/dev/null || true
	peer_close "$1"
}

# peer_alive NAME: its jobctl raw still runs (the daemon has not closed it).
peer_alive() {
	proc_alive "${PEER_PID[$1]}"
}

peer_gone() {
	! peer_alive "$1"
}

# proc_alive PID: running or stopped, not exited (an unreaped child of the
# test is a zombie, which kill -0 would still find).
proc_alive() {
	local state
	state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# say NAME FRAME...: send each argument as one frame.
say() {
	local name=$1
	shift
	printf '%s\n' "$@" >&"${PEER_FD[$name]}"
}

out_of() {
	cat "$BATS_TEST_TMPDIR/$1.out"
}

# nlines NAME: how many whole frames NAME has received.
nlines() {
	local n
	n=$(wc -l <"$BATS_TEST_TMPDIR/$1.out")
	echo $((n))
}

has_lines() {
	[ "$(nlines "$1")" -ge "$2" ]
}

# wait_lines NAME N [SECONDS]
wait_lines() {
	wait_until "${3:-10}" has_lines "$1" "$2"
}

# line NAME N: the Nth frame NAME received.
line() {
	sed -n "$2p" "$BATS_TEST_TMPDIR/$1.out"
}

# frames NAME [JQ FILTER]: NAME's frames, other than the pongs that
# peer_sync asked for, filtered by a jq select expression.
frames() {
	grep -v '^{"type":"pong"}$' "$BATS_TEST_TMPDIR/$1.out" |
		jq -c "select(${2:-true})"
}

# count NAME JQ-FILTER: how many of NAME's frames match.
count() {
	frames "$1" "$2" | wc -l | tr -d ' '
}

pongs_at_least() {
	[ "$(grep -c '^{"type":"pong"}$' "$BATS_TEST_TMPDIR/$1.out")" -ge "$2" ]
}

# peer_sync NAME...: a ping/pong round trip on each: the daemon has handled
# everything each said before, and each has received what that caused.
peer_sync() {
	local name
	for name; do
		PEER_PONGS[$name]=$((PEER_PONGS[$name] + 1))
		say "$name" '{"type":"ping"}'
	done
	for name; do
		wait_until 10 pongs_at_least "$name" "${PEER_PONGS[$name]}" || return 1
	done
}

# is_ending: jq filter for a job's one ending frame (result or error).
ENDING='((has("body") and (.partial != true)) or
	(.error == "cancelled" or .error == "timeout" or .error == "job_failed"))'

# endings NAME ID: how many ending frames NAME got for id ID (JSON text).
endings() {
	count "$1" ".id == $2 and $ENDING"
}

# stat NAME: one daemon counter (jq path below .stats, e.g. .done or
# .types.echo.running) from a fresh stats request.
stat() {
	local out
	out=$(printf '%s\n' '{"type":"stats"}' | "$JOBCTL" raw -n 1 -t 5000) || return 1
	jq -c ".stats$1" <<<"$out"
}

# stat_is PATH VALUE: for wait_until.
stat_is() {
	[ "$(stat "$1")" = "$2" ]
}

# job_status ID: the job's state from a status request (ID is JSON text).
job_status() {
	local out
	out=$(printf '{"type":"status","id":%s}\n' "$1" | "$JOBCTL" raw -n 1 -t 5000) || return 1
	jq -r '.status // .error' <<<"$out"
}

status_is() {
	[ "$(job_status "$1")" = "$2" ]
}

# workers_of TYPE: how many workers the daemon counts for TYPE.
workers_of() {
	local n
	n=$(stat ".types[\"$1\"].workers // 0") || return 1
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
	for p in "${!PEER_FD[@]}"; do
		peer_close "$p"
	done
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
