# frames.bash — talk to the daemon in raw frames through `jobctl raw`.

# master_raw [jobctl raw options]: stdin lines are frames to the master port;
# received frames are printed one per line.
master_raw() {
	"$JOBCTL" raw "$@"
}

worker_raw() {
	"$JOBCTL" raw --worker "$@"
}

# assert_daemon_healthy: a fresh worker and a fresh master still complete a
# job end to end.  Every bad-input test ends with this.
assert_daemon_healthy() {
	local type=health$RANDOM body out wpid
	body="{\"check\":$RANDOM}"
	"$JOBCTL" work "$type" -- cat &
	wpid=$!
	out=$(timeout 20 "$JOBCTL" submit "$type" "$body")
	local rc=$?
	kill "$wpid" 2>/dev/null
	wait "$wpid" 2>/dev/null
	if [ "$rc" != 0 ] || [ "$out" != "$body" ]; then
		echo "daemon unhealthy: submit exited $rc, printed '$out', expected '$body'" >&2
		return 1
	fi
}

# json_get JSON FILTER: jq's compact output for FILTER (e.g. .id, .body.n).
json_get() {
	jq -c "$2" <<<"$1"
}
