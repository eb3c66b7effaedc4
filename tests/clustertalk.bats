#!/usr/bin/env bats
# clustertalk.bats — ClusterTalk's own two tests (seeds/clustertalk.txt),
# replayed over jobfs channels: a one-way send of 10k messages checked for
# number and content, and 5 peers each broadcasting 10k messages, each
# confirming it received the (5 - 1) * 10k of the others.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/ext'

setup() {
	start_daemon
}

@test "one sender to one receiver: 10,000 messages arrive intact, counted and in order" {
	conn_open R
	send R '{"type":"subscribe","channel":"pair"}'
	settle R
	awk 'BEGIN { for (i = 1; i <= 10000; i++)
		printf "{\"type\":\"publish\",\"channel\":\"pair\",\"body\":{\"seq\":%d,\"text\":\"message %d of 10000\"}}\n", i, i
		print "{\"type\":\"ping\"}" }' >"$BATS_TEST_TMPDIR/send.in"
	run timeout 60 "$JOBCTL" raw -n 1 <"$BATS_TEST_TMPDIR/send.in"
	[ "$status" = 0 ]
	[ "$output" = '{"type":"pong"}' ]
	wait_lines R 10001 30
	settle R
	# Exactly the frames expected, byte for byte, in order.
	awk 'BEGIN { for (i = 1; i <= 10000; i++)
		printf "{\"type\":\"message\",\"channel\":\"pair\",\"body\":{\"seq\":%d,\"text\":\"message %d of 10000\"}}\n", i, i }' \
		>"$BATS_TEST_TMPDIR/expected"
	grep -v '^{"type":"pong"}$' "$(conn_file R)" >"$BATS_TEST_TMPDIR/got"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/got")" = 10000 ]
	cmp "$BATS_TEST_TMPDIR/expected" "$BATS_TEST_TMPDIR/got"
	[ "$(daemon_stat '| [.messages_published,.messages_delivered,.messages_dropped]')" = '[10000,10000,0]' ]
}

@test "five peers each broadcast 10,000 messages and each receives the 40,000 of the others" {
	dir=$BATS_TEST_TMPDIR/ct
	mkdir "$dir"
	for p in 1 2 3 4 5; do
		bg python3 "$BATS_TEST_DIRNAME/helpers/ct_peer.py" "$JOBFS_MASTER_PORT" cluster "$p" 5 10000 "$dir"
	done
	wait_until 10 eval 'ls "$dir"/ready.* 2>/dev/null | wc -l | grep -qx 5'
	t0=$(date +%s%N)
	echo >"$dir/go"
	wait_until 120 eval 'ls "$dir"/result.[0-9] 2>/dev/null | wc -l | grep -qx 5'
	echo "# 5 x 10,000 broadcasts took $((($(date +%s%N) - t0) / 1000000)) ms" >&3
	for p in 1 2 3 4 5; do
		r=$(cat "$dir/result.$p")
		# Pub/sub also hands each peer its own 10,000: counted apart.
		[ "$(jq -c '[.others,.own,.in_order,.intact,.missed,.unexpected]' <<<"$r")" = '[40000,10000,true,true,0,0]' ] ||
			{ echo "peer $p: $r" >&2; false; }
		[ "$(jq -c '.per_sender' <<<"$r")" = '{"1":10000,"2":10000,"3":10000,"4":10000,"5":10000}' ]
	done
	[ "$(daemon_stat '| [.messages_published,.messages_delivered,.messages_dropped]')" = '[50000,250000,0]' ]
}
