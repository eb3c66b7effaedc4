#!/usr/bin/env bats
# redis_retain.bats — cluster mode and --keep-bytes: the local copies a
# daemon keeps of finished jobs (its masters' jobs run elsewhere, its
# workers' jobs submitted elsewhere) are bounded by bytes like its own, and
# a copy whose result went is made again from Redis when asked for.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'
load 'helpers/redis'
load 'helpers/cluster'

BOUND=1048576   # --keep-bytes 1M

# retained_ok NODE: the node's own figure is within the bound.
retained_ok() {
	local n
	n=$(on "$1" daemon_stat .retained_bytes)
	[ "$n" -gt 0 ]
	[ "$n" -le "$BOUND" ]
}

@test "local copies are bounded by --keep-bytes on both daemons; a dropped one is looked up in Redis again" {
	redis_start
	start_node A --keep-bytes 1M
	start_node B --keep-bytes 1M
	# Masters on A, the worker on B: 12 jobs of 256 KiB bodies and results.
	run python3 "$BATS_TEST_DIRNAME/helpers/big_jobs.py" "${NODE_MPORT[A]}" \
		"${NODE_WPORT[B]}" big 12 262144 c
	[ "$status" -eq 0 ]
	[ "$output" = "ok 12" ]
	retained_ok A
	retained_ok B
	[ "$(on A daemon_stat .results_dropped)" -ge 8 ]
	[ "$(on B daemon_stat .results_dropped)" -ge 8 ]
	# A's copy of c0 lost its result; Redis still has it.
	run on A request '{"type":"wait","id":"c0"}'
	[ "$status" -eq 0 ]
	[ "$(jq -r '.body.r | length' <<<"$output")" = 262142 ]
	[ "$(jq -r '.body.r[0:3]' <<<"$output")" = c0- ]
	round_trip
}
