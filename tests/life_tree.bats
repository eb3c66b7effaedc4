#!/usr/bin/env bats
# life_tree.bats — the job lifecycle in the tree: types/T/submit
# takes one JSON envelope per line with every option (and reads back ids
# on a read-write handle); types/T/dead, kick, delayed, paused, limit and
# retries; jobs/ID/status says delayed and waiting.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'
load 'helpers/fs'

# (helpers/fs has tree_njobs, the jobs in the tree: W's are counted here)
wjobs() {
	jobs_of "$1" | wc -l
}

has_wjobs() {
	[ "$(wjobs "$1")" -ge "$2" ]
}

wait_wjobs() {
	wait_until 10 has_wjobs "$1" "$2"
}

setup() {
	require_fuse
	start_daemon_mounted
	mkdir "$MNT/types/t"
	T=$MNT/types/t
}

@test "types/T/submit: an envelope per line, every option; ids read back on a read-write handle" {
	exec 5<>"$T/submit"
	echo '{"body":{"n":1},"id":"first","priority":5}' >&5
	read -r id1 <&5
	echo '{"body":2,"delay":600000,"retries":2,"backoff":50}' >&5
	read -r id2 <&5
	echo '{"body":3,"after":["first"]}' >&5
	read -r id3 <&5
	exec 5>&-
	[ "$id1" = first ]
	[ "$(cat "$MNT/jobs/first/body")" = '{"n":1}' ]
	[ "$(cat "$MNT/jobs/first/status")" = queued ]
	[ "$(cat "$MNT/jobs/$id2/status")" = delayed ]
	[ "$(jq -c '[.retries, .priority]' "$MNT/jobs/$id2/info")" = '[2,0]' ]
	[ "$(cat "$MNT/jobs/$id3/status")" = waiting ]
	[ "$(cat "$T/delayed")" = "$id2" ]
	grep -qx 'delayed 1' "$T/stats"
	grep -qx 'waiting 1' "$T/stats"
	grep -qx 'waiting 1' "$MNT/stats"
	[ "$(jq -c .priority "$MNT/jobs/first/info")" = 5 ]
	join_worker W t
	wait_wjobs W 1
	respond W 1
	wait_wjobs W 2
	respond W 2
	wait_until 10 file_is "$MNT/jobs/$id3/status" done
	[ "$(cat "$MNT/jobs/$id2/status")" = delayed ]
}

@test "types/T/submit: bad envelopes fail the write" {
	run bash -c "echo '{\"n\":1}' > '$T/submit'"
	[ "$status" != 0 ]                        # no body
	run bash -c "echo '{\"body\":1,\"delay\":-1}' > '$T/submit'"
	[[ $output == *"Invalid argument"* ]]
	run bash -c "echo '{\"body\":1,\"dealy\":5}' > '$T/submit'"
	[[ $output == *"Invalid argument"* ]]
	run bash -c "echo '{\"body\":1,\"after\":[\"nope\"]}' > '$T/submit'"
	[[ $output == *"No such file"* ]]
	run bash -c "echo '{\"body\":1,\"id\":\"x\",\"after\":[\"x\"]}' > '$T/submit'"
	[[ $output == *"Invalid argument"* ]]
	run bash -c "echo '{\"body\":1,\"retries\":101}' > '$T/submit'"
	[[ $output == *"Invalid argument"* ]]
	[ "$(daemon_stat .submitted)" = 0 ]
	assert_daemon_healthy
}

@test "dead and kick: a failed job is listed in dead; echo ID > kick queues it again" {
	join_worker W t
	echo '{"body":1,"id":"d1"}' >"$T/submit"
	wait_wjobs W 1
	send W '{"type":"fail","body":"broken"}'
	wait_until 10 file_is "$T/dead" d1
	[ "$(cat "$MNT/jobs/d1/status")" = failed ]
	[ "$(jq -c '[.dead, .attempts[0].error]' "$MNT/jobs/d1/info")" = '[true,"broken"]' ]
	echo d1 >"$T/kick"
	[ "$(cat "$T/dead")" = "" ]
	wait_wjobs W 2
	respond W '"fixed"'
	wait_until 10 file_is "$MNT/jobs/d1/status" done
	run bash -c "echo d1 > '$T/kick'"
	[[ $output == *"Invalid argument"* ]]       # not dead
	run bash -c "echo nope > '$T/kick'"
	[[ $output == *"No such file"* ]]
	assert_daemon_healthy
}

@test "touch types/T/paused pauses, rm resumes; limit and retries read and write" {
	[ ! -e "$T/paused" ]
	ls "$T" | grep -qvx paused
	touch "$T/paused"
	[ -e "$T/paused" ]
	ls "$T" | grep -qx paused
	[ "$(daemon_stat .types.t.paused)" = true ]
	grep -qx 'paused 1' "$T/stats"
	grep -qx 'paused 1' "$MNT/stats"
	join_worker W t
	echo '{"body":1}' >"$T/submit"
	settle W
	[ "$(wjobs W)" = 0 ]
	rm "$T/paused"
	wait_wjobs W 1
	[ "$(daemon_stat .types.t.paused)" = false ]
	[ "$(cat "$T/limit")" = 0 ]
	echo 5 >"$T/limit"
	[ "$(cat "$T/limit")" = 5 ]
	[ "$(daemon_stat .types.t.limit)" = 5 ]
	run bash -c "echo -1 > '$T/limit'"
	[ "$status" != 0 ]
	run bash -c "echo 2000000 > '$T/limit'"
	[ "$status" != 0 ]
	[ "$(cat "$T/retries")" = "0 1000" ]
	echo "3 250" >"$T/retries"
	[ "$(cat "$T/retries")" = "3 250" ]
	echo 4 >"$T/retries"
	[ "$(cat "$T/retries")" = "4 250" ]
	run bash -c "echo 101 > '$T/retries'"
	[ "$status" != 0 ]
	assert_daemon_healthy
}
