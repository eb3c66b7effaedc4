#!/usr/bin/env bats
# web_metrics.bats — GET /metrics: the Prometheus text format,
# daemon counters, per-type gauges and counters, a run-time histogram, the
# process's figures; every family with HELP and TYPE, names by
# Prometheus's conventions, as promtool(1) checks them.

load 'helpers/daemon'
load 'helpers/web'
load 'helpers/conn'
load 'helpers/auth'

setup() {
	T0=$(date +%s)
	start_web --http-route /r=rt
}

# metric NAME-WITH-LABELS: its value.
metric() {
	hcurl "$H/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}

# http_connections_at_least N: the daemon holds N TCP connections or more.
http_connections_at_least() {
	[ "$(http_stat .connections)" -ge "$1" ]
}

# exposition_errors FILE: what breaks the text format's rules in FILE, as
# read without promtool: a family's HELP and TYPE once each, HELP first,
# before its samples, which follow each other; a counter's name ends in
# _total.
exposition_errors() {
	awk '
	/^# HELP / { if (help[$3]++) print "two HELPs: " $3; next }
	/^# TYPE / {
		if (type[$3]++) print "two TYPEs: " $3
		if (!help[$3]) print "TYPE before HELP: " $3
		if ($4 == "counter" && $3 !~ /_total$/) print "a counter without _total: " $3
		kind[$3] = $4
		next
	}
	/^#/ { next }
	{
		f = $1
		sub(/\{.*/, "", f)
		if (!(f in kind)) {
			h = f
			sub(/_(bucket|sum|count)$/, "", h)
			if (kind[h] == "histogram") f = h
		}
		if (!(f in kind)) print "no TYPE: " $1
		else if (f != last && seen[f]++) print "family split: " f
		last = f
	}' "$1"
}

# need_promtool: skip unless promtool(1) (Debian package prometheus, which
# make test installs) is here.
need_promtool() {
	command -v promtool >/dev/null ||
		skip "no promtool(1): apt-get install prometheus (make test does)"
}

@test "GET /metrics: daemon counters, per-type figures and a run-time histogram" {
	bg "$JOBCTL" work m -- cat
	for i in 1 2 3; do
		id=$(hcurl --json "$i" "$H/types/m/jobs" | jq -r .id)
		hcurl "$H/jobs/$id/response" >/dev/null
	done
	hcurl --json 1 "$H/types/idle/jobs" >/dev/null
	run hcurl -i "$H/metrics"
	[[ "$output" == *"Content-Type: text/plain; version=0.0.4"* ]]
	[ "$(metric jobfs_submitted_total)" = 4 ]
	[ "$(metric jobfs_queued)" = 1 ]
	[ "$(metric 'jobfs_type_done_total{type="m"}')" = 3 ]
	[ "$(metric 'jobfs_type_queued{type="idle"}')" = 1 ]
	[ "$(metric 'jobfs_type_workers{type="m"}')" = 1 ]
	[ "$(metric 'jobfs_job_run_seconds_count{type="m"}')" = 3 ]
	[ "$(metric 'jobfs_job_run_seconds_bucket{type="m",le="+Inf"}')" = 3 ]
	hcurl "$H/metrics" | grep -q '^# TYPE jobfs_job_run_seconds histogram$'
	hcurl "$H/metrics" | grep -q '^# TYPE jobfs_type_queued gauge$'
	# The job lifecycle's counters and gauges.
	hcurl "$H/metrics" | grep -q '^# TYPE jobfs_retried_total counter$'
	hcurl "$H/metrics" | grep -q '^# TYPE jobfs_delayed gauge$'
	[ "$(metric jobfs_http_requests_total)" -ge 8 ]
	# Every sample line is NAME[{LABELS}] NUMBER, NAME as Prometheus spells one.
	local bad
	bad=$(hcurl "$H/metrics" | grep -v '^#' |
		grep -vE '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? ([0-9.e+-]+|\+Inf)$' || true)
	[ -z "$bad" ]
	hcurl "$H/metrics" >"$BATS_TEST_TMPDIR/metrics"
	run exposition_errors "$BATS_TEST_TMPDIR/metrics"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ "$(hstatus -X POST "$H/metrics")" = 405 ]
	other_clients_ok
}

@test "type names are escaped in labels" {
	hcurl --json 1 "$H/types/a%22b%5Cc/jobs" >/dev/null
	hcurl "$H/metrics" | grep -qF 'jobfs_type_queued{type="a\"b\\c"} 1'
	other_clients_ok
}

@test "process metrics: start time, file descriptors, memory and CPU of the daemon" {
	local before now start fds rss vsize
	# The daemon started within this test's lifetime (btime has whole
	# seconds, hence the second's slack before).
	start=$(metric process_start_time_seconds)
	now=$(date +%s)
	awk -v s="$start" -v t0="$T0" -v now="$now" \
		'BEGIN { exit !(s >= t0 - 2 && s <= now + 1) }'
	# The soft limit on descriptors, as the kernel tells it.
	[ "$(metric process_max_fds)" = "$(awk '/^Max open files/ { print $4 }' "/proc/$DAEMON_PID/limits")" ]
	# Four more connections are four more descriptors.
	before=$(metric process_open_fds)
	for i in 1 2 3 4; do
		conn_open "c$i"
	done
	wait_until 30 http_connections_at_least 4
	fds=$(metric process_open_fds)
	[ "$fds" -ge $((before + 4)) ]
	rss=$(metric process_resident_memory_bytes)
	vsize=$(metric process_virtual_memory_bytes)
	[ "$rss" -gt 0 ]
	[ "$vsize" -ge "$rss" ]
	metric process_cpu_seconds_total | grep -qE '^[0-9]+\.[0-9]+$'
	other_clients_ok
}

@test "promtool check metrics: clean after every kind of job, routes, streams and channels" {
	need_promtool
	local m=$BATS_TEST_TMPDIR/metrics id
	bg "$JOBCTL" work m -- cat
	bg "$JOBCTL" work --fail f -- false
	bg "$JOBCTL" work rt -- jq -c '[200, {}, "routed " + .path]'
	bg curl -sN --max-time 120 -o /dev/null "$H/events"
	bg curl -sN --max-time 120 -o /dev/null "$H/sub/c"
	wait_until 30 http_stat_is .http.streams 2
	# done
	id=$(hcurl --json 1 "$H/types/m/jobs" | jq -r .id)
	[ "$(hcurl "$H/jobs/$id/response")" = 1 ]
	# retried once, then failed and dead
	run "$JOBCTL" submit --retries 1 --backoff 1 f 1
	[ "$status" -eq 8 ]
	# cancelled
	id=$(hcurl --json 1 "$H/types/idle/jobs" | jq -r .id)
	[ "$(hstatus -X POST "$H/jobs/$id/cancel")" = 200 ]
	# timed out
	hcurl --json 1 "$H/types/idle/jobs?timeout=50" >/dev/null
	# delayed
	bg "$JOBCTL" submit --detach --delay 600000 m 1
	# a routed request (a job done too), and a 404
	[ "$(hcurl "$H/r/x")" = "routed /r/x" ]
	[ "$(hstatus "$H/jobs/nosuch")" = 404 ]
	# a message to the channel's stream and to a TCP subscriber
	bg "$JOBCTL" subscribe c
	wait_until 30 stat_is .channels 1
	[ "$(hcurl --json '{"n":1}' "$H/pub/c" | jq .delivered)" -ge 2 ]
	wait_until 30 stat_is .timeout 1
	wait_until 30 stat_is .delayed 1
	stat_is .done 2
	stat_is .failed 1
	stat_is .cancelled 1
	stat_is .retried 1
	stat_is .dead 1
	http_stat_is .http.routed 1
	hcurl "$H/metrics" >"$m"
	run promtool check metrics <"$m"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	# The figures promised, under their names.
	grep -qx 'jobfs_http_responses_total{code="2xx"} [1-9][0-9]*' "$m"
	grep -qx 'jobfs_http_responses_total{code="4xx"} [1-9][0-9]*' "$m"
	grep -qx 'jobfs_http_responses_total{code="5xx"} [0-9][0-9]*' "$m"
	grep -q '^jobfs_uptime_seconds [0-9]' "$m"
	grep -q '^jobfs_dead 1$' "$m"
	grep -q '^jobfs_http_streams 2$' "$m"
	grep -q '^jobfs_messages_delivered_total [1-9]' "$m"
	grep -q '^jobfs_http_events_sent_total [1-9]' "$m"
	for p in start_time_seconds cpu_seconds_total resident_memory_bytes \
		virtual_memory_bytes open_fds max_fds; do
		grep -q "^process_$p [0-9]" "$m"
	done
	# The old names are gone: one family with a code label instead.
	run grep -c '^jobfs_http_responses_[245]xx_total\|^jobfs_uptime ' "$m"
	[ "$output" = 0 ]
	# Every figure is in the table, none shown with the fallback help.
	run grep -c '^# HELP .* The stats figure ' "$m"
	[ "$output" = 0 ]
	other_clients_ok
}

@test "promtool check metrics: clean with --data, --auth and TLS figures" {
	need_promtool
	command -v openssl >/dev/null || skip "no openssl(1)"
	local c=$BATS_TEST_TMPDIR m=$BATS_TEST_TMPDIR/metrics out
	stop_daemon
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$c/srv.key" -out "$c/srv.pem" -days 2 -subj /CN=localhost \
		-addext 'subjectAltName=IP:127.0.0.1' 2>/dev/null
	TOKENS=$c/tokens
	write_tokens "$TOKENS"
	start_web --auth "$TOKENS" --data "$c/data" \
		--tls-cert "$c/srv.pem" --tls-key "$c/srv.key"
	H=https://127.0.0.1:$HTTP_PORT   # the web face speaks TLS too
	# A master that fails to authenticate, then a job round trip over TLS.
	run env JOBFS_TOKEN=wrong-0123456789abcdef012345 "$JOBCTL" --tls --ca "$c/srv.pem" ping
	[ "$status" -ne 0 ]
	bg env JOBFS_TOKEN="$TOK_WK" "$JOBCTL" --tls --ca "$c/srv.pem" work m -- cat
	out=$(JOBFS_TOKEN=$TOK_ALICE "$JOBCTL" --tls --ca "$c/srv.pem" submit m '{"n":1}')
	[ "$out" = '{"n":1}' ]
	hcurl --cacert "$c/srv.pem" -H "Authorization: Bearer $TOK_ROOT" "$H/metrics" >"$m"
	run promtool check metrics <"$m"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	grep -q '^jobfs_auth_failures_total [1-9]' "$m"
	grep -q '^jobfs_tls_handshake_timeouts_total 0$' "$m"
	grep -q '^jobfs_journal_syncs_total [1-9]' "$m"
	grep -q '^jobfs_journal_sync_max_seconds [0-9]' "$m"
	run grep -c '^# HELP .* The stats figure ' "$m"
	[ "$output" = 0 ]
	# Another client's job still completes.
	out=$(JOBFS_TOKEN=$TOK_BOB "$JOBCTL" --tls --ca "$c/srv.pem" submit m '{"n":2}')
	[ "$out" = '{"n":2}' ]
}
