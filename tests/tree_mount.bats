#!/usr/bin/env bats
# tree_mount.bats — the mount's life: a tree left by a
# daemon killed with SIGKILL is detached by the next daemon on the same
# mountpoint (SPEC 3), even though stat() of it still succeeds from the
# kernel's cache; readers blocked when the daemon died get ECONNABORTED.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/fs'

setup() {
	require_fuse
}

# kill9_daemon: SIGKILL the daemon and reap it; its mount stays, dead.
kill9_daemon() {
	kill -KILL "$DAEMON_PID"
	wait "$DAEMON_PID" 2>/dev/null || true
	DAEMON_PID=
}

# dead_mount DIR: accesses under DIR fail with ENOTCONN.
dead_mount() {
	run ls "$1"
	[ "$status" != 0 ] && [[ $output == *"not connected"* ]]
}

@test "a daemon started on the mountpoint of one killed with SIGKILL detaches the dead mount and serves" {
	start_daemon_mounted
	mkdir "$MNT/types/before"
	stat "$MNT" >/dev/null         # the kernel caches the root's attributes
	kill9_daemon
	dead_mount "$MNT"
	# stat() still succeeds from the cache: that alone cannot tell.
	stat "$MNT" >/dev/null
	start_daemon "$MNT"
	wait_until 10 test -e "$MNT/README"
	grep -q 'stale mount' "$DAEMON_LOG"
	[ ! -e "$MNT/types/before" ]   # a fresh daemon's tree
	assert_tree_healthy
	stop_daemon
	# Nothing dead was left under the new mount.
	run ! mountpoint -q "$MNT"
	run ls "$MNT"
	[ "$status" = 0 ]
	[ -z "$output" ]
}

@test "twice killed: stacked dead mounts are all detached" {
	start_daemon_mounted
	kill9_daemon
	# Stack a second dead mount by hand, as the old daemon did.
	start_daemon "$MNT"
	wait_until 10 test -e "$MNT/README"
	kill9_daemon
	dead_mount "$MNT"
	start_daemon "$MNT"
	wait_until 10 test -e "$MNT/README"
	assert_tree_healthy
	stop_daemon
	run ! mountpoint -q "$MNT"
	run ls "$MNT"
	[ "$status" = 0 ]
}

@test "a reader blocked when the daemon is killed gets ECONNABORTED" {
	start_daemon_mounted
	mkdir "$MNT/types/r"
	exec {fd}<>"$MNT/types/r/queue"
	echo '{}' >&$fd
	id=$(read_line "$fd")
	exec {fd}>&-
	python3 -c '
import os, sys
try:
    os.read(os.open(sys.argv[1], os.O_RDONLY), 100)
    print("read returned")
except OSError as e:
    print(e.errno)' "$MNT/jobs/$id/response" >"$BATS_TEST_TMPDIR/reader" &
	local rpid=$!
	BG_PIDS+=("$rpid")
	wait_until 10 has_open "$rpid" "$MNT/jobs/$id/response"
	# The read(2) itself is waiting for the daemon's answer.
	wait_until 10 grep -q request_wait_answer "/proc/$rpid/wchan" 
	kill9_daemon
	wait_until 10 file_has_lines "$BATS_TEST_TMPDIR/reader" 1
	[ "$(cat "$BATS_TEST_TMPDIR/reader")" = 103 ]   # ECONNABORTED
	start_daemon "$MNT"
	wait_until 10 test -e "$MNT/README"
	assert_tree_healthy
}
