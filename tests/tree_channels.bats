#!/usr/bin/env bats
# tree_channels.bats — channels made in the tree live until rm channels/C
# (or exit); one with subscribers cannot be removed.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/fs'

setup() {
	require_fuse
	start_daemon_mounted
}

@test "rm channels/C removes a channel made in the tree" {
	touch "$MNT/channels/made"
	echo '{"n":1}' >"$MNT/channels/written"
	[ "$(ls "$MNT/channels" | sort)" = 'made
written' ]
	rm "$MNT/channels/made" "$MNT/channels/written"
	[ -z "$(ls "$MNT/channels")" ]
	[ ! -e "$MNT/channels/made" ]
	run rm "$MNT/channels/made"
	[ "$status" != 0 ]
	[[ $output == *"No such file"* ]]
	# Made again, it works again.
	touch "$MNT/channels/made"
	gloom subscribe made 1 >"$BATS_TEST_TMPDIR/sub" &
	BG_PIDS+=("$!")
	wait_until 10 grep -q subscribed "$BATS_TEST_TMPDIR/sub"
	echo '{"again":true}' >"$MNT/channels/made"
	wait_until 10 grep -qx '{"again":true}' "$BATS_TEST_TMPDIR/sub"
	assert_tree_healthy
}

@test "rm of a channel with subscribers is EBUSY; other files cannot be removed" {
	gloom subscribe busy 1 >"$BATS_TEST_TMPDIR/sub" &
	local sub=$!
	BG_PIDS+=("$sub")
	wait_until 10 grep -q subscribed "$BATS_TEST_TMPDIR/sub"
	run rm "$MNT/channels/busy"
	[ "$status" != 0 ]
	[[ $output == *"Device or resource busy"* ]]
	mkdir "$MNT/types/t"
	run rm "$MNT/types/t/queue"
	[ "$status" != 0 ]
	[[ $output == *"not permitted"* ]]
	# The subscriber still gets what is published.
	gloom publish busy '{"still":1}'
	wait_until 10 grep -qx '{"still":1}' "$BATS_TEST_TMPDIR/sub"
	assert_tree_healthy
}
