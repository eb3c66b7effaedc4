#!/usr/bin/env bats
# retain_bytes.bats — retention by bytes (--keep-bytes): past the bound the
# oldest finished jobs' bodies and results go (their status and ending
# stay; a read of the result answers result_dropped over TCP and REST,
# ENODATA in the tree), the daemon's retained_bytes stays within it, memory
# does not grow with the number of jobs run, and a restart with --data
# does not bring a dropped body or result back.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'
load 'helpers/durable'
load 'helpers/web'

BOUND=4194304   # --keep-bytes 4M

# big_jobs N PREFIX: N jobs of 256 KiB bodies and results, each result
# checked byte for byte by the master.
big_jobs() {
	run python3 "$BATS_TEST_DIRNAME/helpers/big_jobs.py" "$JOBFS_MASTER_PORT" \
		"$JOBFS_WORKER_PORT" big "$1" 262144 "$2"
	[ "$status" -eq 0 ]
	[ "$output" = "ok $1" ]
}

# within_bound: the daemon's own figure of what finished jobs hold.
within_bound() {
	local n
	n=$(daemon_stat .retained_bytes)
	[ "$n" -gt 0 ]
	[ "$n" -le "$BOUND" ]
}

@test "past --keep-bytes the oldest results go, their status stays, and memory does not grow with the jobs" {
	start_web --keep-bytes 4M
	[ "$(daemon_stat .keep_bytes)" = "$BOUND" ]
	big_jobs 40 a
	within_bound
	# 40 jobs of 512 KiB: at most 8 fit, the others' results went.
	[ "$(daemon_stat .results_dropped)" -ge 32 ]
	[ "$(daemon_stat .retained)" = 40 ]

	# The oldest: its record, status and ending stay; its result does not.
	[ "$(status_json '"a0"' | jq -c '[.status, .dropped, .body_bytes]')" = '["done",true,0]' ]
	[ "$(request '{"type":"wait","id":"a0"}' | jq -r .error)" = result_dropped ]
	[ "$(hstatus "$H/jobs/a0/response")" = 410 ]
	[ "$(hcurl "$H/jobs/a0/response" | jq -r .error)" = result_dropped ]
	[ "$(hstatus "$H/jobs/a0/body")" = 410 ]
	[ "$(hcurl "$H/jobs/a0" | jq -r .status)" = done ]
	# The newest: intact.
	run request '{"type":"wait","id":"a39"}'
	[ "$status" -eq 0 ]
	[ "$(jq -r '.body.r | length' <<<"$output")" = 262142 ]
	[ "$(jq -r '.body.r[0:4]' <<<"$output")" = a39- ]
	hcurl "$H/metrics" | grep -q "^jobfs_retained_bytes [0-9]"
	hcurl "$H/metrics" | grep -q "^jobfs_results_dropped_total [0-9]"

	# 80 more (40 MiB of bodies and results): the bound holds, and the
	# daemon's memory does not follow the jobs (loosely: malloc's own).
	local rss
	rss=$(rss_kb)
	big_jobs 80 b
	within_bound
	[ "$(daemon_stat .results_dropped)" -ge 112 ]
	if ! asan_build; then
		echo "RSS $rss kB -> $(rss_kb) kB" >&2
		[ "$(rss_kb)" -lt $((rss + 20480)) ]
	fi
	other_clients_ok
}

@test "with --data a dropped body and result do not come back on restart, and the journal's live state follows" {
	start_durable --keep-bytes 4M
	big_jobs 40 d
	within_bound
	[ "$(daemon_stat .results_dropped)" -ge 32 ]
	crash_daemon
	# A larger bound after the restart: what went stays gone.
	start_durable_mounted --keep-bytes 64M
	within_bound
	[ "$(daemon_stat .retained)" = 40 ]
	[ "$(daemon_stat .journal_live_bytes)" -le $((BOUND + 65536)) ]
	[ "$(status_json '"d0"' | jq -c '[.status, .dropped]')" = '["done",true]' ]
	[ "$(request '{"type":"wait","id":"d0"}' | jq -r .error)" = result_dropped ]
	run cat "$MNT/jobs/d0/response"
	[ "$status" -ne 0 ]
	[[ "$output" == *"No data available"* ]]
	[ "$(cat "$MNT/jobs/d0/status")" = done ]
	run request '{"type":"wait","id":"d39"}'
	[ "$status" -eq 0 ]
	[ "$(jq -r '.body.r | length' <<<"$output")" = 262142 ]
	[ "$(jq -r '.body.r[0:4]' <<<"$output")" = d39- ]
	assert_daemon_healthy
}
