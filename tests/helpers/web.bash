# web.bash — the web face's tests: a daemon with --http on a free port,
# curl against it, and the check that other clients still get through.
#
# load 'helpers/daemon'; load 'helpers/web'

# start_web [jobfs options...]: start_daemon with --http on a free port;
# sets HTTP_PORT and H (the base URL).
start_web() {
	HTTP_PORT=$(random_port)
	start_daemon --http "127.0.0.1:$HTTP_PORT" "$@" || return 1
	wait_for_port "$HTTP_PORT" || return 1
	H=http://127.0.0.1:$HTTP_PORT
	export HTTP_PORT H
}

# hcurl ARGS...: curl, quiet, bounded in time, never retrying.
hcurl() {
	curl -sS --max-time 20 "$@"
}

# hstatus ARGS...: only the status code of the response.
hstatus() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$@"
}

# http_stat JQ: a field of GET /stats (with the header $HTTP_AUTH, if
# set: a token).  Connection: close, so that the daemon closes (and stops
# counting) this connection as soon as it has answered, not whenever it
# notices that curl went.
http_stat() {
	hcurl -H 'Connection: close' ${HTTP_AUTH:+-H "$HTTP_AUTH"} "$H/stats" | jq -c "$1"
}

http_stat_is() {
	[ "$(http_stat "$1")" = "$2" ]
}

# http_job_is ID STATE: GET /jobs/ID says STATE.
http_job_is() {
	[ "$(hcurl "$H/jobs/$1" | jq -r .status)" = "$2" ]
}

# other_clients_ok: a fresh worker answers a TCP master and an HTTP
# client, whatever the test did before.
other_clients_ok() {
	local type=ok$RANDOM id out pid
	"$JOBCTL" work "$type" -- cat >/dev/null 2>&1 &
	pid=$!
	out=$("$JOBCTL" submit "$type" '{"tcp":1}') || { kill "$pid"; return 1; }
	[ "$out" = '{"tcp":1}' ] || { echo "tcp round trip: $out" >&2; kill "$pid"; return 1; }
	id=$(hcurl --json '{"http":1}' "$H/types/$type/jobs" | jq -r .id)
	out=$(hcurl "$H/jobs/$id/response")
	kill "$pid"
	wait "$pid" 2>/dev/null
	[ "$out" = '{"http":1}' ] || { echo "http round trip: $out" >&2; return 1; }
}
