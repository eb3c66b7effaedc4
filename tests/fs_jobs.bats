#!/usr/bin/env bats
# fs_jobs.bats — jobs/ (SPEC 2): every job, whoever submitted it, with
# body, status, type and info; percent-encoded names; rmdir cancels and
# forgets; retention (--keep, --keep-max) makes directories disappear.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/fs'

setup() {
	require_fuse
}

@test "a job submitted over TCP appears in the tree with all its files" {
	start_daemon_mounted
	gloom submit tcp '"t1"' '{"x":[1,2]}' --detach --priority 7
	[ "$(ls "$MNT/jobs")" = t1 ]
	[ "$(ls "$MNT/jobs/t1" | tr '\n' ' ')" = "body info log progress response status type " ]
	[ "$(cat "$MNT/jobs/t1/body")" = '{"x":[1,2]}' ]
	[ "$(cat "$MNT/jobs/t1/status")" = queued ]
	[ "$(cat "$MNT/jobs/t1/type")" = tcp ]
	[ -d "$MNT/types/tcp" ]
	[ "$(cat "$MNT/types/tcp/queue")" = t1 ]
	run jq -c '[.id, .type, .status, .priority, .body_bytes]' "$MNT/jobs/t1/info"
	[ "$output" = '["t1","tcp","queued",7,11]' ]
	# body and type never change: their size is exact.
	[ "$(stat -c %s "$MNT/jobs/t1/body")" = 12 ]
}

@test "status and info follow a job from queued to running to done" {
	start_daemon_mounted
	gloom submit life '42' '"b"' --detach
	[ "$(cat "$MNT/jobs/42/status")" = queued ]
	bg "$GLOOM" worker life --name wk --hold "$BATS_TEST_TMPDIR/go"
	wait_until 10 file_is "$MNT/jobs/42/status" running
	[ "$(jq -r .worker "$MNT/jobs/42/info")" = wk ]
	[ "$(jq -c .id "$MNT/jobs/42/info")" = 42 ]   # the id as the master sent it
	touch "$BATS_TEST_TMPDIR/go"
	wait_until 10 file_is "$MNT/jobs/42/status" done
	[ "$(jq -r '.result_bytes' "$MNT/jobs/42/info")" = 3 ]
	[ "$(cat "$MNT/jobs/42/response")" = '"b"' ]
}

@test "ids that are not file names are percent-encoded" {
	start_daemon_mounted
	local id
	for id in '"a/b"' '"%"' '"."' '".."' '"50%/x"' '"plain"'; do
		gloom submit enc "$id" "{\"id\":$id}" --detach
	done
	[ "$(ls -a "$MNT/jobs" | LC_ALL=C sort | tr '\n' ' ')" = "%25 %2E %2E%2E . .. 50%25%2Fx a%2Fb plain " ]
	[ "$(cat "$MNT/jobs/a%2Fb/body")" = '{"id":"a/b"}' ]
	[ "$(cat "$MNT/jobs/%25/body")" = '{"id":"%"}' ]
	[ "$(cat "$MNT/jobs/%2E/body")" = '{"id":"."}' ]
	[ "$(cat "$MNT/jobs/%2E%2E/body")" = '{"id":".."}' ]
	[ "$(cat "$MNT/jobs/50%25%2Fx/body")" = '{"id":"50%/x"}' ]
	[ "$(jq -r .id "$MNT/jobs/a%2Fb/info")" = a/b ]
	# Only the canonical spelling names a job.
	[ ! -e "$MNT/jobs/%61%2Fb" ]
	[ ! -e "$MNT/jobs/%2e" ]
	[ "$(cat "$MNT/types/enc/queue" | tr '\n' ' ')" = "a%2Fb %25 %2E %2E%2E 50%25%2Fx plain " ]
	rmdir "$MNT/jobs/a%2Fb"
	[ ! -e "$MNT/jobs/a%2Fb" ]
}

@test "an id whose encoded name would pass 255 bytes is refused" {
	start_daemon_mounted
	local long
	long=$(printf '/%.0s' $(seq 100))   # 100 bytes, 300 encoded
	run gloom submit enc "\"$long\"" '{}' --detach
	[[ $output == *'"error":"invalid_type"'* ]]
	[ -z "$(ls "$MNT/jobs")" ]
	assert_tree_healthy
}

@test "rmdir jobs/ID cancels a queued job, and its TCP master gets cancelled" {
	start_daemon_mounted
	"$GLOOM" submit rm '"victim"' '{}' --wait >"$BATS_TEST_TMPDIR/master.out" &
	local mpid=$!
	wait_until 10 test -d "$MNT/jobs/victim"
	rmdir "$MNT/jobs/victim"
	wait "$mpid"
	[ "$(cat "$BATS_TEST_TMPDIR/master.out")" = '{"error":"cancelled","reason":"victim","id":"victim"}' ]
	[ ! -e "$MNT/jobs/victim" ]
	[ -z "$(ls "$MNT/jobs")" ]
	grep -qx 'cancelled 1' "$MNT/stats"
}

@test "rmdir jobs/ID cancels a running job; its response reader gets ECANCELED" {
	start_daemon_mounted
	mkdir "$MNT/types/rr"
	echo '{}' >"$MNT/types/rr/queue"
	local id
	id=$(job_ids)
	bg "$GLOOM" worker rr --hold "$BATS_TEST_TMPDIR/never"
	wait_until 10 file_is "$MNT/jobs/$id/status" running
	cat "$MNT/jobs/$id/response" 2>"$BATS_TEST_TMPDIR/err" &
	local cpid=$!
	wait_until 10 has_open "$cpid" "$MNT/jobs/$id/response"
	rmdir "$MNT/jobs/$id"
	local rc=0
	wait "$cpid" || rc=$?
	[ "$rc" = 1 ]
	grep -q 'Operation canceled' "$BATS_TEST_TMPDIR/err"
	[ ! -e "$MNT/jobs/$id" ]
	grep -qx 'cancelled 1' "$MNT/types/rr/stats"
	assert_tree_healthy
}

@test "rmdir of a finished job forgets it; of an unknown one fails with ENOENT" {
	start_daemon_mounted
	mkdir "$MNT/types/f"
	echo '{"d":1}' >"$MNT/types/f/queue"
	gloom worker f --count 1 >/dev/null
	local id
	id=$(job_ids)
	wait_until 10 file_is "$MNT/jobs/$id/status" done
	rmdir "$MNT/jobs/$id"
	[ -z "$(ls "$MNT/jobs")" ]
	grep -qx 'done 1' "$MNT/types/f/stats"
	run rmdir "$MNT/jobs/$id"
	[ "$status" != 0 ]
	[[ $output == *"No such file"* ]]
}

@test "--keep 1: a finished job's directory disappears, even one the kernel has cached" {
	start_daemon_mounted --keep 1
	mkdir "$MNT/types/k"
	echo '{"k":1}' >"$MNT/types/k/queue"
	local id
	id=$(job_ids)
	gloom worker k --count 1 >/dev/null
	wait_until 10 file_is "$MNT/jobs/$id/status" done
	stat "$MNT/jobs/$id" "$MNT/jobs/$id/response" >/dev/null
	wait_until 10 test ! -e "$MNT/jobs/$id"
	[ -z "$(ls "$MNT/jobs")" ]
	grep -qx 'done 1' "$MNT/stats"
	grep -qx 'retained 0' "$MNT/stats"
}

@test "--keep-max 3 keeps only the 3 newest finished jobs listed" {
	start_daemon_mounted --keep-max 3
	mkdir "$MNT/types/m"
	local i
	for i in 1 2 3 4 5 6; do echo "{\"m\":$i}" >"$MNT/types/m/queue"; done
	local ids
	ids=$(job_ids | tail -3)
	gloom worker m --count 6 >/dev/null
	listed() { [ "$(ls "$MNT/jobs" | wc -l)" -eq "$1" ]; }
	wait_until 10 listed 3
	[ "$(job_ids)" = "$ids" ]
}

@test "a reader keeps the result of a job forgotten while it had it open" {
	start_daemon_mounted --keep 1
	mkdir "$MNT/types/o"
	local fd id
	exec {fd}<>"$MNT/types/o/queue"
	echo '{"o":1}' >&$fd
	id=$(read_line "$fd")
	exec {fd}>&-
	exec {fd}<"$MNT/jobs/$id/response"
	gloom worker o --count 1 >/dev/null
	wait_until 10 test ! -e "$MNT/jobs/$id"
	[ "$(timeout 5 cat <&$fd)" = '{"o":1}' ]
	exec {fd}<&-
}

@test "ls jobs lists thousands of jobs, each once" {
	start_daemon_mounted
	mkdir "$MNT/types/n"
	python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.write(fd, b"{}\n" * 3000)
os.close(fd)' "$MNT/types/n/queue"
	[ "$(ls "$MNT/jobs" | wc -l)" = 3000 ]
	[ "$(ls "$MNT/jobs" | sort -u | wc -l)" = 3000 ]
	[ "$(cat "$MNT/types/n/queue" | wc -l)" = 3000 ]
	grep -qx 'queued 3000' "$MNT/types/n/stats"
}
