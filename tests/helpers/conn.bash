# conn.bash — long-lived raw connections to the daemon, driven from a test.
#
# Sourced by helpers/ext.bash and helpers/proto.bash (after helpers/daemon).
#
# A connection is a `jobctl raw` kept open by a FIFO on its stdin:
#
#   conn_open W --worker          connect W to the worker port (no option:
#                                 the master port)
#   send W FRAME...               one frame per argument ("" is an empty frame)
#   settle W M                    ping each, wait for the pongs: the daemon
#                                 has handled all they sent before, and they
#                                 have received every frame that caused
#   wait_lines W 2                until W has received 2 frames
#   line W 2                      the 2nd frame W received (pongs included)
#   out_of W                      every frame W received (pongs included)
#   received W                    W's frames except settle's pongs
#   conn_close W                  end W's input: jobctl raw then hangs up
#   conn_kill W                   the connection vanishes (SIGKILL)
#   conn_alive W / conn_gone W    whether W's jobctl raw still runs
#
# Frames received are in $(conn_file NAME), that is
# $BATS_TEST_TMPDIR/conn.NAME.out, one per line.
#
# Daemon state: request FRAME, daemon_stat PATH, job_status ID (and stat_is,
# status_is for wait_until).

declare -gA CONN_FD=() CONN_PID=() CONN_PONGS=()
PONG='{"type":"pong"}'

# conn_file NAME: the file that holds the frames NAME received.
conn_file() {
	echo "$BATS_TEST_TMPDIR/conn.$1.out"
}

# conn_close_inherited: in a background subshell, close the FIFOs of every
# connection, so that it does not keep them open past conn_close.
conn_close_inherited() {
	local f
	for f in "${CONN_FD[@]}"; do
		if [ -n "$f" ]; then exec {f}>&-; fi
	done
}

# conn_open NAME [jobctl raw options]
conn_open() {
	local name=$1 dir=$BATS_TEST_TMPDIR fd
	shift
	rm -f "$dir/conn.$name.in"
	mkfifo "$dir/conn.$name.in"
	: >"$dir/conn.$name.out"
	# The child must not hold the other connections' FIFOs open, or their
	# readers would never see end of input.
	(
		conn_close_inherited
		exec "$JOBCTL" raw -t 600000 "$@" <"$dir/conn.$name.in" \
			>"$dir/conn.$name.out" 2>"$dir/conn.$name.err" 3>&-
	) &
	CONN_PID[$name]=$!
	BG_PIDS+=("$!")
	exec {fd}>"$dir/conn.$name.in"
	CONN_FD[$name]=$fd
	CONN_PONGS[$name]=0
}

# send NAME FRAME...: each argument is one frame ("" is an empty frame).
send() {
	local name=$1
	shift
	printf '%s\n' "$@" >&"${CONN_FD[$name]}"
}

# conn_close NAME: end NAME's input; jobctl raw then closes the connection.
conn_close() {
	local fd=${CONN_FD[$1]}
	[ -n "$fd" ] || return 0
	exec {fd}>&-
	CONN_FD[$1]=
}

# conn_close_all: conn_close every connection of the test.
conn_close_all() {
	local name
	for name in "${!CONN_FD[@]}"; do
		conn_close "$name"
	done
}

# conn_kill NAME: the peer vanishes without a word.
conn_kill() {
	kill -KILL "${CONN_PID[$1]}" 2>/dev/null || true
	wait "${CONN_PID[$1]}" 2>/dev/null || true
	conn_close "$1"
}

# proc_alive PID: running or stopped, not exited (an unreaped child of the
# test is a zombie, which kill -0 would still find).
proc_alive() {
	local state
	state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# conn_alive NAME: its jobctl raw still runs (the daemon has not closed it).
conn_alive() {
	proc_alive "${CONN_PID[$1]}"
}

conn_gone() {
	! conn_alive "$1"
}

# out_of NAME: every frame NAME received, pongs included.
out_of() {
	cat "$(conn_file "$1")"
}

# nlines NAME: how many whole frames NAME has received.
nlines() {
	local n
	n=$(wc -l <"$(conn_file "$1")")
	echo $((n))
}

# conn_has_lines NAME N: connection NAME has received at least N lines.
conn_has_lines() {
	[ "$(nlines "$1")" -ge "$2" ]
}

# wait_lines NAME N [SECONDS]
wait_lines() {
	wait_until "${3:-10}" conn_has_lines "$1" "$2"
}

# line NAME N: the Nth frame NAME received (pongs included).
line() {
	sed -n "$2p" "$(conn_file "$1")"
}

# received NAME: every frame NAME received, except the pongs of settle.
received() {
	grep -vxF "$PONG" "$(conn_file "$1")" || true
}

npongs() {
	local n
	n=$(grep -cxF "$PONG" "$(conn_file "$1")" || true)
	echo $((n))
}

pongs_at_least() {
	[ "$(npongs "$1")" -ge "$2" ]
}

# settle NAME...: a ping/pong round trip on each: the daemon has handled
# everything each sent before, and each has received what that caused.
settle() {
	local name
	for name; do
		CONN_PONGS[$name]=$((CONN_PONGS[$name] + 1))
		send "$name" '{"type":"ping"}'
	done
	for name; do
		wait_until 15 pongs_at_least "$name" "${CONN_PONGS[$name]}" || return 1
	done
}

# --------------------------------------------------------------- daemon

# request FRAME: one frame from a fresh master; prints the first reply.
request() {
	printf '%s\n' "$1" | "$JOBCTL" raw -n 1 -t 5000
}

# daemon_stat PATH: a daemon counter below .stats (e.g. .queued,
# .types.t.done), from a fresh stats request.
daemon_stat() {
	local out
	out=$(request '{"type":"stats"}') || return 1
	jq -c ".stats$1" <<<"$out"
}

# stat_is PATH VALUE: for wait_until.
stat_is() {
	[ "$(daemon_stat "$1")" = "$2" ]
}

# job_status ID: the job's state from a status request (ID is JSON text).
# status_json ID: the status reply for ID (JSON text: "a" or 42).
status_json() {
	request "{\"type\":\"status\",\"id\":$1}"
}

job_status() {
	local out
	out=$(status_json "$1") || return 1
	jq -r '.status // .error' <<<"$out"
}

status_is() {
	[ "$(job_status "$1")" = "$2" ]
}
