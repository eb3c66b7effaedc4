#!/usr/bin/env bats
# web_auth.bats — the web face and the rules of --auth: with --auth the
# daemon's own paths need an admin token (Bearer, or Basic with the token
# as password, so that a browser can log in), --http-route paths stay
# open; without --auth a peer beyond loopback is refused (protected mode)
# unless --insecure.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/web'
load 'helpers/conn'
load 'helpers/auth'
load 'helpers/peer_ns'

# admin_round_trip: a worker and an HTTP client with the admin token
# still complete a job.
admin_round_trip() {
	local id
	as root "$JOBCTL" work art -- cat >/dev/null 2>&1 &
	BG_PIDS+=("$!")
	id=$(hcurl -H "Authorization: Bearer $TOK_ROOT" --json '{"ok":1}' "$H/types/art/jobs" | jq -r .id)
	[ "$(hcurl -H "Authorization: Bearer $TOK_ROOT" "$H/jobs/$id/response")" = '{"ok":1}' ]
	[ "$(as root "$JOBCTL" submit art '{"tcp":1}')" = '{"tcp":1}' ]
}

@test "with --auth: 401 without a token, 403 for a master, an admin's Bearer or Basic token serves, routes stay open" {
	HTTP_PORT=$(random_port)
	start_auth_daemon --http "127.0.0.1:$HTTP_PORT" --http-route /open=open --http-timeout 1
	wait_for_port "$HTTP_PORT"
	H=http://127.0.0.1:$HTTP_PORT
	run hcurl -i "$H/stats"
	[[ "$output" == *"401 Unauthorized"* ]]
	[[ "$output" == *'WWW-Authenticate: Basic realm="jobfs"'* ]]
	[[ "$output" == *'"error":"auth_required"'* ]]
	[ "$(hstatus --json 1 "$H/types/x/jobs")" = 401 ]
	[ "$(hstatus "$H/events")" = 401 ]
	[ "$(hstatus -H 'Authorization: Bearer not-a-token-of-the-file' "$H/stats")" = 401 ]
	run hcurl -w ' %{http_code}' -H "Authorization: Bearer $TOK_ALICE" "$H/stats"
	[[ "$output" == *'"error":"forbidden"'*' 403' ]]
	[ "$(hstatus -H "Authorization: Bearer $TOK_ROOT" "$H/stats")" = 200 ]
	[ "$(hstatus -u "root:$TOK_ROOT" "$H/")" = 200 ]
	# Nothing was submitted by the refused requests.
	[ "$(hcurl -u "x:$TOK_ROOT" "$H/stats" | jq .submitted)" = 0 ]
	# A route needs no token: the operator opened it.
	run hcurl -w ' %{http_code}' "$H/open/x"
	[[ "$output" == *'"error":"timeout"'*' 503' ]]
	admin_round_trip
}

@test "without --auth a peer beyond loopback is refused over HTTP too, unless --insecure" {
	make_peer_ns
	HTTP_PORT=$(random_port)
	start_daemon --listen 0.0.0.0 --http "0.0.0.0:$HTTP_PORT"
	wait_for_port "$HTTP_PORT"
	H=http://127.0.0.1:$HTTP_PORT
	run ip netns exec "$NS" curl -s --max-time 10 -w ' %{http_code}' "http://$HOST_IP:$HTTP_PORT/stats"
	[[ "$output" == *'"error":"auth_required"'*'--insecure'*' 403' ]]
	[ "$(hstatus "$H/stats")" = 200 ]
	other_clients_ok
	stop_daemon
	start_daemon --listen 0.0.0.0 --insecure --http "0.0.0.0:$HTTP_PORT"
	wait_for_port "$HTTP_PORT"
	run ip netns exec "$NS" curl -s --max-time 10 -o /dev/null -w '%{http_code}' "http://$HOST_IP:$HTTP_PORT/stats"
	[ "$output" = 200 ]
	other_clients_ok
}
