#!/usr/bin/env bats
# jobctl_top.bats — jobctl top in a real terminal (tmux): the types with
# their rates, the workers with the jobs they run and the latest failures
# (from the web face), redrawn each second; q quits.  Waits poll the
# pane's text, never the clock.

load 'helpers/daemon'
load 'helpers/web'
load 'helpers/conn'

setup() {
	command -v tmux >/dev/null || skip "no tmux: install the Debian package tmux"
	start_web
	SESSION=jobfs-top-$$-$RANDOM
	export TMUX_TMPDIR=$BATS_TEST_TMPDIR
}

teardown() {
	tmux kill-session -t "$SESSION" 2>/dev/null || true
	daemon_teardown
}

pane() {
	tmux capture-pane -p -t "$SESSION"
}

# pane_has REGEX: the pane shows a line matching REGEX (extended).
pane_has() {
	pane | grep -qE "$1"
}

@test "jobctl top shows types with rates, workers with their jobs, the latest failures; redraws; q quits" {
	bg "$JOBCTL" work --capacity 6 busy -- sleep 600
	bg "$JOBCTL" work bad --fail -- sh -c 'echo top-oops >&2; exit 3'
	bg "$JOBCTL" work quick -- cat
	for i in $(seq 8); do
		hcurl --json '{}' "$H/types/busy/jobs?id=b$i" >/dev/null
	done
	hcurl --json '{}' "$H/types/bad/jobs?id=x1" >/dev/null
	wait_until 20 stat_is .types.busy.running 6
	wait_until 20 stat_is .types.bad.dead 1
	tmux new-session -d -s "$SESSION" -x 140 -y 45 \
		"env JOBFS_MASTER_PORT=$JOBFS_MASTER_PORT $JOBCTL top --http 127.0.0.1:$HTTP_PORT; echo top-exited-\$?; sleep 600"
	wait_until 20 pane_has '^busy +2 +6 +1 '
	wait_until 20 pane_has '^bad +0 +0 +1 .* 1 *$'
	wait_until 20 pane_has '^127\.0\.0\.1:[0-9]+ +busy +6  b[1-6] b[1-6] b[1-6] \+3 more'
	wait_until 20 pane_has ' x1 +bad +failed +top-oops'
	# Redrawn: jobs done meanwhile move the quick type's rate above 0.
	bg sh -c "while $JOBCTL submit quick '{}' >/dev/null; do :; done"
	wait_until 20 pane_has '^quick +[0-9]+ +[0-9]+ +1 +[1-9][0-9.]* '
	tmux send-keys -t "$SESSION" q
	wait_until 20 pane_has '^top-exited-0$'
	other_clients_ok
}

@test "jobctl top without the web face shows the types, and says how to see workers" {
	hcurl --json '{}' "$H/types/held/jobs" >/dev/null
	tmux new-session -d -s "$SESSION" -x 120 -y 30 \
		"env JOBFS_MASTER_PORT=$JOBFS_MASTER_PORT JOBFS_HTTP= $JOBCTL top; echo top-exited-\$?; sleep 600"
	wait_until 20 pane_has '^held +1 +0 +0 '
	wait_until 20 pane_has 'give --http HOST:PORT'
	tmux send-keys -t "$SESSION" q
	wait_until 20 pane_has '^top-exited-0$'
	other_clients_ok
}
