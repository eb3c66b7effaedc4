#!/usr/bin/env bats
# web_channels.bats — a channel followed over the web (GET /sub/C) is a
# channel like one a TCP client subscribes to: counted in stats, listed in
# the tree's channels/, and gone with its last subscriber.

load 'helpers/daemon'
load 'helpers/fs'
load 'helpers/web'
load 'helpers/conn'

setup() {
	require_fuse
	HTTP_PORT=$(random_port)
	# --http-idle 4: streams are sent a comment every 2 s, which finds a
	# reader that went away.
	start_daemon_mounted --http "127.0.0.1:$HTTP_PORT" --http-idle 4 || return 1
	wait_for_port "$HTTP_PORT"
	H=http://127.0.0.1:$HTTP_PORT
}

@test "a channel followed by GET /sub/C is counted in stats and listed in channels/, as a TCP subscription is" {
	[ "$(daemon_stat .channels)" = 0 ]
	curl -sS -N "$H/sub/wc" >"$BATS_TEST_TMPDIR/sse" &   # (not in a function: $! is curl)
	sse=$!
	BG_PIDS+=("$sse")
	wait_until 10 http_stat_is .http.streams 1
	[ "$(daemon_stat .channels)" = 1 ]
	[ "$(ls "$MNT/channels")" = wc ]
	[ "$(hcurl --json '"one"' "$H/pub/wc" | jq -c .delivered)" = 1 ]
	[ "$(hcurl --json '"two"' "$H/pub/wc" | jq -c .delivered)" = 1 ]
	wait_until 10 bash -c "[ \$(grep -c '^data: ' '$BATS_TEST_TMPDIR/sse') = 2 ]"
	[ "$(daemon_stat '| [.messages_published,.messages_delivered,.channels]')" = '[2,2,1]' ]
	[ "$(http_stat '[.messages_published,.channels]')" = '[2,1]' ]
	# The same exchange over TCP counts the same way.
	"$JOBCTL" subscribe -n 1 tc2 >"$BATS_TEST_TMPDIR/tcp" &
	BG_PIDS+=("$!")
	wait_until 10 stat_is .channels 2
	[ "$(ls "$MNT/channels" | tr '\n' ' ')" = "tc2 wc " ]
	"$JOBCTL" publish tc2 '"three"'
	wait_until 10 test -s "$BATS_TEST_TMPDIR/tcp"
	[ "$(daemon_stat '| [.messages_published,.messages_delivered]')" = '[3,3]' ]
	# The channel goes with its last stream (found gone by the comment
	# sent every half of --http-idle); its counts stay.
	kill "$sse"
	wait_until 20 stat_is .channels 0
	[ -z "$(ls "$MNT/channels")" ]
	[ "$(daemon_stat .messages_published)" = 3 ]
	other_clients_ok
}
