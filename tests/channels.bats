#!/usr/bin/env bats
# channels.bats — subscribe, unsubscribe and publish on either port
# (SPEC 1.3, Tempest's pub/sub and ClusterTalk's broadcast).

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/ext'

setup() {
	start_daemon
}

@test "a subscriber on the master port receives what is published there" {
	conn_open S
	send S '{"type":"subscribe","channel":"news"}'
	settle S
	conn_open P
	send P '{"type":"publish","channel":"news","body":{"headline":"hi","n":[1,2]}}' \
		'{"type":"publish","channel":"news","body":"second"}'
	wait_lines S 3
	[ "$(frames S)" = '{"type":"message","channel":"news","body":{"headline":"hi","n":[1,2]}}
{"type":"message","channel":"news","body":"second"}' ]
	# The publisher hears nothing back: no ack, no error.
	settle P
	[ "$(frames P)" = "" ]
	[ "$(daemon_stat '| [.messages_published,.messages_delivered,.messages_dropped,.channels]')" = '[2,2,0,1]' ]
}

@test "subscribers and publishers on the worker port work the same, across ports" {
	conn_open WS --worker
	conn_open MS
	send WS '{"type":"subscribe","channel":"mix"}'
	send MS '{"type":"subscribe","channel":"mix"}'
	settle WS MS
	conn_open WP --worker
	send WP '{"type":"publish","channel":"mix","body":"from a worker"}'
	settle WP
	conn_open MP
	send MP '{"type":"publish","channel":"mix","body":"from a master"}'
	wait_lines WS 3
	wait_lines MS 3
	expected='{"type":"message","channel":"mix","body":"from a worker"}
{"type":"message","channel":"mix","body":"from a master"}'
	[ "$(frames WS)" = "$expected" ]
	[ "$(frames MS)" = "$expected" ]
	settle WP MP
	[ "$(frames WP)" = "" ]
	[ "$(frames MP)" = "" ]
}

@test "a worker subscribed to a channel still takes and answers jobs" {
	conn_open W --worker
	send W '{"type":"join","job_type":"cj"}' '{"type":"subscribe","channel":"ops"}'
	settle W
	conn_open M
	send M '{"type":"job","job_type":"cj","id":1,"body":"work"}'
	wait_frame W '.type == "job"'
	send M '{"type":"publish","channel":"ops","body":"meanwhile"}'
	wait_frame W '.type == "message"'
	send W '{"type":"response","body":"done"}'
	wait_lines M 1
	[ "$(frames W)" = '{"type":"job","id":1,"body":"work"}
{"type":"message","channel":"ops","body":"meanwhile"}' ]
	[ "$(frames M)" = '{"id":1,"body":"done"}' ]
}

@test "every subscriber of a channel gets each message, and only its channels" {
	for s in A B C D; do
		conn_open "$s"
	done
	send A '{"type":"subscribe","channel":"red"}'
	send B '{"type":"subscribe","channel":"red"}'
	send C '{"type":"subscribe","channel":"red"}' '{"type":"subscribe","channel":"blue"}'
	send D '{"type":"subscribe","channel":"blue"}'
	settle A B C D
	conn_open P
	for i in 1 2 3; do
		send P "{\"type\":\"publish\",\"channel\":\"red\",\"body\":$i}"
	done
	send P '{"type":"publish","channel":"blue","body":"b"}'
	settle P
	settle A B C D
	red='{"type":"message","channel":"red","body":1}
{"type":"message","channel":"red","body":2}
{"type":"message","channel":"red","body":3}'
	[ "$(frames A)" = "$red" ]
	[ "$(frames B)" = "$red" ]
	[ "$(frames C)" = "$red
{\"type\":\"message\",\"channel\":\"blue\",\"body\":\"b\"}" ]
	[ "$(frames D)" = '{"type":"message","channel":"blue","body":"b"}' ]
	[ "$(daemon_stat '| [.messages_published,.messages_delivered,.channels]')" = '[4,11,2]' ]
}

@test "an unsubscribed connection gets nothing more while others still do" {
	conn_open A
	conn_open B
	send A '{"type":"subscribe","channel":"c"}'
	send B '{"type":"subscribe","channel":"c"}'
	settle A B
	conn_open P
	send P '{"type":"publish","channel":"c","body":1}'
	wait_lines A 2
	send A '{"type":"unsubscribe","channel":"c"}'
	settle A
	send P '{"type":"publish","channel":"c","body":2}'
	settle P
	settle A B
	[ "$(frames A)" = '{"type":"message","channel":"c","body":1}' ]
	[ "$(frames B)" = '{"type":"message","channel":"c","body":1}
{"type":"message","channel":"c","body":2}' ]
	# Unsubscribing from a channel one never joined is harmless and silent.
	send A '{"type":"unsubscribe","channel":"c"}' '{"type":"unsubscribe","channel":"never"}'
	settle A
	[ "$(frames A)" = '{"type":"message","channel":"c","body":1}' ]
}

@test "subscribing twice delivers each message once" {
	conn_open S
	send S '{"type":"subscribe","channel":"twice"}' '{"type":"subscribe","channel":"twice"}'
	settle S
	conn_open P
	send P '{"type":"publish","channel":"twice","body":"once"}'
	settle P
	settle S
	[ "$(frames S)" = '{"type":"message","channel":"twice","body":"once"}' ]
	# One unsubscribe undoes it.
	send S '{"type":"unsubscribe","channel":"twice"}'
	settle S
	send P '{"type":"publish","channel":"twice","body":"gone"}'
	settle P
	settle S
	[ "$(count S true)" = 1 ]
}

@test "a publisher subscribed to its own channel receives its own message" {
	conn_open S
	send S '{"type":"subscribe","channel":"echo"}' '{"type":"publish","channel":"echo","body":"me"}'
	settle S
	[ "$(frames S)" = '{"type":"message","channel":"echo","body":"me"}' ]
}

@test "a publish to a channel nobody subscribes is dropped without an error" {
	conn_open P
	send P '{"type":"publish","channel":"void","body":1}' '{"type":"publish","channel":"void","body":2}'
	settle P
	[ "$(frames P)" = "" ]
	[ "$(daemon_stat .channels)" = 0 ]
	# A later subscriber does not get old messages.
	conn_open S
	send S '{"type":"subscribe","channel":"void"}'
	settle S
	send P '{"type":"publish","channel":"void","body":3}'
	settle P
	settle S
	[ "$(frames S)" = '{"type":"message","channel":"void","body":3}' ]
	assert_daemon_healthy
}

@test "a closed subscriber's subscriptions go away with it" {
	conn_open S
	send S '{"type":"subscribe","channel":"a"}' '{"type":"subscribe","channel":"b"}'
	settle S
	[ "$(daemon_stat .channels)" = 2 ]
	conn_kill S
	wait_until 5 stat_is .channels 0
	conn_open P
	send P '{"type":"publish","channel":"a","body":1}'
	settle P
	[ "$(frames P)" = "" ]
	assert_daemon_healthy
}

@test "bad channel messages get error frames and the connection stays usable" {
	conn_open C
	send C '{"type":"subscribe"}' \
		'{"type":"subscribe","channel":""}' \
		'{"type":"subscribe","channel":"a/b"}' \
		'{"type":"subscribe","channel":".."}' \
		'{"type":"subscribe","channel":7}' \
		'{"type":"unsubscribe"}' \
		'{"type":"publish","channel":"x"}' \
		'{"type":"publish","body":1}' \
		'{"type":"publish","channel":["x"],"body":1}'
	settle C
	[ "$(frames C | jq -c '[.error,.name]')" = '["missing_field","channel"]
["invalid_type",null]
["invalid_type",null]
["invalid_type",null]
["invalid_type",null]
["missing_field","channel"]
["missing_field","body"]
["missing_field","channel"]
["invalid_type",null]' ]
	[ "$(daemon_stat .channels)" = 0 ]
	# Still usable on the same connection.
	send C '{"type":"subscribe","channel":"ok"}' '{"type":"publish","channel":"ok","body":"fine"}'
	settle C
	[ "$(frames C | tail -n 1)" = '{"type":"message","channel":"ok","body":"fine"}' ]
	assert_daemon_healthy
}

@test "a channel name may be any valid type name, unicode included" {
	conn_open S
	send S '{"type":"subscribe","channel":"café ☕ #1"}'
	settle S
	conn_open P
	send P '{"type":"publish","channel":"café ☕ #1","body":"ok"}'
	wait_lines S 2
	[ "$(frames S | jq -r .channel)" = "café ☕ #1" ]
}

@test "jobctl publish and subscribe carry messages end to end" {
	"$JOBCTL" subscribe -n 2 tools >"$BATS_TEST_TMPDIR/sub.out" &
	spid=$!
	BG_PIDS+=("$spid")
	wait_until 5 stat_is .channels 1
	run timeout 10 "$JOBCTL" publish tools '{"v":1}'
	[ "$status" = 0 ]
	printf '%s\n' '"two"' | timeout 10 "$JOBCTL" publish tools -
	wait_until 5 eval '! proc_alive '"$spid"
	[ "$(cat "$BATS_TEST_TMPDIR/sub.out")" = '{"v":1}
"two"' ]
}

@test "a subscriber that stops reading neither slows the publisher nor others, and learns what it missed" {
	dir=$BATS_TEST_TMPDIR/slow
	mkdir "$dir"
	bg python3 "$BATS_TEST_DIRNAME/helpers/slow_sub.py" "$JOBFS_MASTER_PORT" flood "$dir"
	wait_until 10 test -e "$dir/ready"
	conn_open F
	send F '{"type":"subscribe","channel":"flood"}'
	settle F
	# N messages of 64 KiB: three times what the slow subscriber can hold
	# (the 1 MiB backlog, and the most the kernel buffers for its socket:
	# tcp_wmem's maximum on the daemon's side, 32 KiB on its own), so
	# about 16 MiB here.  They go in batches of 12 (768 KiB) and each
	# batch waits until F has it, so F, which reads, is never the
	# backlogged one even on a busy machine; the slow subscriber, which
	# never reads, falls behind at once.
	local wmax N
	read -r _ _ wmax </proc/sys/net/ipv4/tcp_wmem || wmax=4194304
	N=$(((wmax + (1 << 20) + 32768) * 3 / 65536))
	python3 - "$BATS_TEST_TMPDIR/flood" "$N" <<-'EOF'
		import sys
		pad = "x" * 65500
		n = int(sys.argv[2])
		for b in range(0, n, 12):
		    with open("%s.%04d" % (sys.argv[1], b), "w") as f:
		        for i in range(b, min(b + 12, n)):
		            f.write('{"type":"publish","channel":"flood","body":{"seq":%d,"pad":"%s"}}\n' % (i, pad))
		        f.write('{"type":"ping"}\n')
	EOF
	t0=$(date +%s%N)
	local batch sent=0
	for batch in "$BATS_TEST_TMPDIR"/flood.*; do
		run timeout 60 "$JOBCTL" raw -n 1 <"$batch"
		[ "$status" = 0 ]
		[ "$output" = '{"type":"pong"}' ]
		sent=$((sent + $(wc -l <"$batch") - 1))
		wait_lines F $((sent + 1)) 30
	done
	[ "$sent" = "$N" ]
	echo "# publishing $N messages of 64 KiB took $((($(date +%s%N) - t0) / 1000000)) ms" >&3
	# The fast subscriber got every message, in order.
	wait_lines F $((N + 1)) 60
	[ "$(frames F | jq -r '.body.seq' | awk '$1 != NR - 1 { bad++ } END { print NR, bad + 0 }')" = "$N 0" ]
	[ "$(count F 'has("missed")')" = 0 ]
	dropped=$(daemon_stat .messages_dropped)
	[ "$dropped" -gt 0 ]
	# The slow one is still connected; let it read, and publish markers
	# until one gets through its drained backlog.
	echo > "$dir/go"
	conn_open P
	n=0
	while [ ! -e "$dir/got" ] && [ "$n" -lt 200 ]; do
		n=$((n + 1))
		send P "{\"type\":\"publish\",\"channel\":\"flood\",\"body\":{\"last\":$n}}"
		sleep 0.05
	done
	[ -e "$dir/got" ]
	# What it got: seq 0..R-1 in order, then the first marker that got
	# through, carrying how many it missed: the rest of the flood and the
	# markers before.
	got=$(wc -l <"$dir/got")
	r=$((got - 1))
	[ "$r" -gt 0 ]
	[ "$(head -n "$r" "$dir/got" | jq -r '.body.seq' | awk '$1 != NR - 1 { bad++ } END { print bad + 0 }')" = 0 ]
	[ "$(head -n "$r" "$dir/got" | jq -r 'has("missed")' | sort -u)" = false ]
	last=$(tail -n 1 "$dir/got")
	k=$(jq .body.last <<<"$last")
	missed=$(jq .missed <<<"$last")
	[ "$missed" = $((N - r + k - 1)) ]
	[ "$(jq -c 'del(.missed)' <<<"$last")" = "{\"type\":\"message\",\"channel\":\"flood\",\"body\":{\"last\":$k}}" ]
	# Every miss was counted, and only this subscriber missed any.
	[ "$(daemon_stat .messages_dropped)" = "$missed" ]
	[ "$(daemon_stat .slow_clients_dropped)" = 0 ]
	# The fast subscriber got every marker too.
	settle P
	settle F
	[ "$(frames F '.body.last != null' | jq -r .body.last | tr '\n' ' ')" = "$(seq -s ' ' 1 "$n") " ]
	assert_daemon_healthy
}
