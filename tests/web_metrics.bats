#!/usr/bin/env bats
# web_metrics.bats — GET /metrics (issue 10): the Prometheus text format,
# daemon counters, per-type gauges and counters, a run-time histogram.

load 'helpers/daemon'
load 'helpers/web'
load 'helpers/conn'

setup() {
	start_web
}

# metric NAME-WITH-LABELS: its value.
metric() {
	hcurl "$H/metrics" | awk -v n="$1" '$1 == n { print $2 }'
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
	# The job lifecycle's counters and gauges (issue 13).
	hcurl "$H/metrics" | grep -q '^# TYPE jobfs_retried_total counter$'
	hcurl "$H/metrics" | grep -q '^# TYPE jobfs_delayed gauge$'
	[ "$(metric jobfs_http_requests_total)" -ge 8 ]
	# Every sample line is NAME[{LABELS}] NUMBER.
	! hcurl "$H/metrics" | grep -v '^#' | grep -vE '^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$'
	[ "$(hstatus -X POST "$H/metrics")" = 405 ]
	other_clients_ok
}

@test "type names are escaped in labels" {
	hcurl --json 1 "$H/types/a%22b%5Cc/jobs" >/dev/null
	hcurl "$H/metrics" | grep -qF 'jobfs_type_queued{type="a\"b\\c"} 1'
	other_clients_ok
}
