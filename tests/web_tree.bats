#!/usr/bin/env bats
# web_tree.bats — the web face and the tree are two views of the same jobs
# and channels: what HTTP submits the tree shows, what the tree
# submits HTTP serves, and a tree channel streams to /sub/C.

load 'helpers/daemon'
load 'helpers/fs'
load 'helpers/web'
load 'helpers/conn'

setup() {
	require_fuse
	HTTP_PORT=$(random_port)
	start_daemon_mounted --http "127.0.0.1:$HTTP_PORT" || return 1
	wait_for_port "$HTTP_PORT"
	H=http://127.0.0.1:$HTTP_PORT
}

@test "a job submitted over HTTP is in the tree; one written to a queue is served over HTTP" {
	hcurl --json '{"via":"http"}' "$H/types/both/jobs?id=h1" >/dev/null
	[ "$(cat "$MNT/jobs/h1/body")" = '{"via":"http"}' ]
	[ "$(cat "$MNT/jobs/h1/status")" = queued ]
	exec 8<>"$MNT/types/both/queue"
	echo '{"via":"tree"}' >&8
	read -r id <&8
	exec 8>&-
	[ "$(hcurl "$H/jobs/$id/body")" = '{"via":"tree"}' ]
	bg "$JOBCTL" work both -- cat
	[ "$(hcurl "$H/jobs/$id/response")" = '{"via":"tree"}' ]
	[ "$(cat "$MNT/jobs/h1/response")" = '{"via":"http"}' ]
	# DELETE is rmdir: gone from the tree too (the kernel is told by the
	# notify thread, a moment after the answer).
	[ "$(hcurl -X DELETE "$H/jobs/h1" | jq -c .forgotten)" = true ]
	wait_until 10 test ! -e "$MNT/jobs/h1"
	other_clients_ok
}

@test "lines written to channels/C in the tree stream to /sub/C" {
	hcurl -N "$H/sub/tc" >"$BATS_TEST_TMPDIR/sse" &
	BG_PIDS+=("$!")
	wait_until 10 http_stat_is .http.streams 1
	printf '%s\n' '{"a":1}' '"two"' >"$MNT/channels/tc"
	wait_until 10 bash -c "[ \$(grep -c '^data: ' '$BATS_TEST_TMPDIR/sse') = 2 ]"
	[ "$(sed -n 's/^data: //p' "$BATS_TEST_TMPDIR/sse")" = $'{"a":1}\n"two"' ]
	other_clients_ok
}
