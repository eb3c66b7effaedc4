# redis.bash — a private redis-server for one test.
#
# load 'helpers/daemon'   (random_port, wait_until; loaded here if missing)
# load 'helpers/redis'
#
# redis_start runs Debian's redis-server in the foreground, in the
# background of the test, on a free loopback port, with its data (the AOF)
# under $BATS_TEST_TMPDIR/redis: it never touches the system's Redis.
# Call redis_teardown from the test file's teardown (after stopping any
# daemon that talks to it), e.g.
#   teardown() { daemon_teardown; redis_teardown; }

if ! declare -F random_port >/dev/null; then
	source "$BATS_TEST_DIRNAME/helpers/daemon.bash"
fi

REDIS_PID=
REDIS_PORT=
REDIS_URL=
REDIS_DIR=
REDIS_LOG=
# The function library, found from this file's directory.
REDIS_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/src/store/redis_scripts.lua

# rcli ARGS...: redis-cli on the test's Redis.
rcli() {
	redis-cli -p "$REDIS_PORT" "$@"
}

# redis_run: start redis-server on $REDIS_PORT and $REDIS_DIR; wait for PING.
redis_run() {
	local i
	mkdir -p "$REDIS_DIR"
	redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$REDIS_DIR" \
		--appendonly yes --appendfsync always --save '' --daemonize no \
		>>"$REDIS_LOG" 2>&1 &
	REDIS_PID=$!
	export REDIS_PID
	for ((i = 0; i < 200; i++)); do
		kill -0 "$REDIS_PID" 2>/dev/null || break
		[ "$(rcli ping 2>/dev/null)" = PONG ] && return 0
		sleep 0.05
	done
	echo "redis-server did not answer PING on port $REDIS_PORT; log:" >&2
	cat "$REDIS_LOG" >&2
	kill "$REDIS_PID" 2>/dev/null
	wait "$REDIS_PID" 2>/dev/null
	REDIS_PID=
	return 1
}

# redis_start: a fresh redis-server on a free port; exports REDIS_PID,
# REDIS_PORT and REDIS_URL (redis://127.0.0.1:PORT).
redis_start() {
	local attempt
	fast_helpers
	REDIS_DIR=$BATS_TEST_TMPDIR/redis
	REDIS_LOG=$BATS_TEST_TMPDIR/redis.log
	for attempt in 1 2 3 4 5; do
		REDIS_PORT=$(random_port)
		REDIS_URL=redis://127.0.0.1:$REDIS_PORT
		export REDIS_PORT REDIS_URL
		: >"$REDIS_LOG"
		redis_run && return 0
		# Only a port taken meanwhile by someone else is worth a retry.
		grep -q 'Address already in use' "$REDIS_LOG" || return 1
	done
	return 1
}

# redis_stop: SIGTERM and wait for the exit (at most 10 s, then SIGKILL).
redis_stop() {
	local i status=0
	[ -n "$REDIS_PID" ] || return 0
	kill -TERM "$REDIS_PID" 2>/dev/null
	for ((i = 0; i < 200; i++)); do
		kill -0 "$REDIS_PID" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$REDIS_PID" 2>/dev/null; then
		echo "redis-server did not exit within 10s of SIGTERM" >&2
		kill -KILL "$REDIS_PID"
		status=1
	fi
	wait "$REDIS_PID" 2>/dev/null
	REDIS_PID=
	return "$status"
}

# redis_restart: stop, then start again on the same port and directory, so
# that Redis reloads its AOF.
redis_restart() {
	redis_stop || return 1
	redis_run
}

# redis_load_functions: FUNCTION LOAD REPLACE of src/store/redis_scripts.lua
# (what the daemon sends first on every connection).
redis_load_functions() {
	local out
	out=$(rcli -x FUNCTION LOAD REPLACE <"$REDIS_LIB") || return 1
	[ "$out" = jobfs_1 ] || {
		echo "FUNCTION LOAD: $out" >&2
		return 1
	}
}

# redis_teardown: stop the test's redis-server (if it runs).
redis_teardown() {
	redis_stop
}
