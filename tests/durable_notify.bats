#!/usr/bin/env bats
# durable_notify.bats — systemd readiness: jobfs sends READY=1 to
# $NOTIFY_SOCKET once its journal is replayed (and its tree mounted).

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'
load 'helpers/durable'

@test "READY=1 goes to NOTIFY_SOCKET after the journal is replayed" {
	python3 - "$BATS_TEST_TMPDIR/notify" "$BATS_TEST_TMPDIR/got" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
open(sys.argv[2] + ".ready", "w").close()
s.settimeout(30)
open(sys.argv[2], "wb").write(s.recv(200))
PY
	BG_PIDS+=("$!")
	wait_until 10 test -e "$BATS_TEST_TMPDIR/got.ready"
	NOTIFY_SOCKET=$BATS_TEST_TMPDIR/notify start_durable_mounted
	wait_until 30 test -s "$BATS_TEST_TMPDIR/got"
	grep -qx 'READY=1' "$BATS_TEST_TMPDIR/got"
	# By then the replay was logged and the tree mounted.
	grep -q 'replayed in' "$DAEMON_LOG"
	mountpoint -q "$MNT"
	assert_daemon_healthy
}
