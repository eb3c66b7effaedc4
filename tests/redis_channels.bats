#!/usr/bin/env bats
# redis_channels.bats — cluster mode: channels go through Redis
# pub/sub, so a message published on any daemon (TCP or tree) reaches
# subscribers and tree readers on all of them; while Redis is away a
# publish is refused.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'
load 'helpers/fs'
load 'helpers/redis'
load 'helpers/cluster'

setup() {
	redis_start
}



@test "a subscriber on one daemon gets what is published on others, by TCP and in the tree" {
	start_node A
	start_node B --mount
	start_node C
	on A "$JOBCTL" subscribe -n 100 news >"$BATS_TEST_TMPDIR/sub" 2>&1 &
	BG_PIDS+=("$!")
	# (subscribed once a first message gets through)
	wait_until 10 sh -c "'$JOBCTL' -m ${NODE_MPORT[C]} publish news '\"probe\"' && grep -q probe '$BATS_TEST_TMPDIR/sub'"
	on B "$JOBCTL" publish news '{"from":"B tcp"}'
	echo '{"from":"B tree"}' >"$(node_mnt B)/channels/news"
	wait_until 10 grep -q 'B tree' "$BATS_TEST_TMPDIR/sub"
	[ "$(grep -v probe "$BATS_TEST_TMPDIR/sub")" = '{"from":"B tcp"}
{"from":"B tree"}' ]
	round_trip
}

@test "a tree reader on one daemon gets messages published on another" {
	local rpid
	start_node A --mount
	start_node B
	touch "$(node_mnt A)/channels/feed"
	cat "$(node_mnt A)/channels/feed" >"$BATS_TEST_TMPDIR/reader" &
	rpid=$!
	BG_PIDS+=("$rpid")
	wait_until 10 has_open "$rpid" "$(node_mnt A)/channels/feed"
	on B "$JOBCTL" publish feed '{"m":1}'
	on A "$JOBCTL" publish feed '{"m":2}'
	wait_until 10 lines_in "$BATS_TEST_TMPDIR/reader" 2
	[ "$(cat "$BATS_TEST_TMPDIR/reader")" = '{"m":1}
{"m":2}' ]
	round_trip
}

@test "publishing while Redis is away is refused (unavailable, EIO in the tree)" {
	start_node A --mount
	start_node B
	touch "$(node_mnt A)/channels/c"
	redis_stop
	wait_until 10 grep -q ': lost (' "$(node_log A)"
	use_node A
	conn_open P
	send P '{"type":"publish","channel":"c","body":1}'
	# (helpers/fs's file_has_lines counts a file's lines: wait on the file)
	wait_until 10 grep -q error "$(conn_file P)"
	is_error "$(line P 1)" unavailable
	run sh -c "echo 1 > '$(node_mnt A)/channels/c'"
	[ "$status" != 0 ]
	redis_run
	wait_until 20 node_up A
	wait_until 20 node_up B
	round_trip
}
