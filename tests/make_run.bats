#!/usr/bin/env bats
# make_run.bats — `make run` for a user who is not root: the tree goes on
# a directory that user owns ($XDG_RUNTIME_DIR/jobs, else build/mnt, said
# as it starts), mounted through fusermount3; as root it stays /mnt/jobs.

load 'helpers/daemon'
load 'helpers/fs'

TOP=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
XDG=
RUN_PID=

setup() {
	[ "$(id -u)" = 0 ] || skip "needs root to become another user"
	id nobody >/dev/null 2>&1 || skip "no user nobody"
	runuser -u nobody -- test -r "$TOP/Makefile" ||
		skip "nobody cannot read $TOP/Makefile"
	XDG=$(mktemp -d /tmp/jobfs-xdg.XXXXXX)
	chown nobody "$XDG"
	chmod 700 "$XDG"
}

teardown() {
	local status=0
	if [ -n "$RUN_PID" ]; then
		# make and the daemon it runs: the process group setsid made.
		kill -TERM -- "-$RUN_PID" 2>/dev/null
		wait "$RUN_PID" 2>/dev/null
	fi
	if [ -n "$XDG" ] && grep -q " $XDG/jobs " /proc/self/mountinfo; then
		echo "tree still mounted after make run stopped" >&2
		umount -l "$XDG/jobs"
		status=1
	fi
	daemon_teardown || status=1
	[ -z "$XDG" ] || rm -rf "$XDG"
	return "$status"
}

# nobody_sees FILE: nobody (the tree's owner) finds FILE.
nobody_sees() {
	runuser -u nobody -- test -e "$1"
}

@test "make run picks the mount point by user: /mnt/jobs as root, \$XDG_RUNTIME_DIR/jobs or build/mnt otherwise" {
	run make -n -C "$TOP" --no-print-directory run
	[ "$status" -eq 0 ]
	[[ $output == *"mkdir -p /mnt/jobs"* ]]
	[[ $output == *" /mnt/jobs" ]]

	run runuser -u nobody -- env -u XDG_RUNTIME_DIR make -n -C "$TOP" --no-print-directory run
	[ "$status" -eq 0 ]
	[[ $output == *"mkdir -p $TOP/build/mnt"* ]]
	[[ $output == *"tree on $TOP/build/mnt"* ]]
	[[ $output == *" $TOP/build/mnt" ]]

	run runuser -u nobody -- env XDG_RUNTIME_DIR="$XDG" make -n -C "$TOP" --no-print-directory run
	[ "$status" -eq 0 ]
	[[ $output == *"mkdir -p $XDG/jobs"* ]]
	[[ $output == *" $XDG/jobs" ]]
}

@test "make run as nobody mounts the tree on \$XDG_RUNTIME_DIR/jobs and serves the dashboard" {
	require_fuse
	command -v fusermount3 >/dev/null || skip "fusermount3 is not installed"
	runuser -u nobody -- test -x "$JOBFS" || skip "nobody cannot run $JOBFS"
	local hp mp wp log=$BATS_TEST_TMPDIR/run.log
	hp=$(random_port)
	mp=$(random_port)
	wp=$(random_port)
	setsid runuser -u nobody -- env XDG_RUNTIME_DIR="$XDG" \
		make -C "$TOP" --no-print-directory run B="$JOBFS_BIN" DATA="$XDG/data" \
		HTTP="$hp" JOBFS_OPTS="--master-port $mp --worker-port $wp" >"$log" 2>&1 &
	RUN_PID=$!
	wait_until 60 nobody_sees "$XDG/jobs/README"
	grep -q "jobfs: tree on $XDG/jobs, jobs kept in $XDG/data" "$log"
	wait_until 30 curl -sf -o /dev/null "http://127.0.0.1:$hp/"
	# A FUSE mount of nobody's (through fusermount3), on nobody's directory.
	grep -q "^$XDG/jobs fuse.*user_id=$(id -u nobody)," \
		<(awk '{ print $5, $(NF - 2), $NF "," }' /proc/self/mountinfo)
	# An ordinary job still runs (a worker and a master over TCP).
	bg "$JOBCTL" -w "$wp" work echo -- cat
	run timeout 20 "$JOBCTL" -m "$mp" submit echo '{"n":1}'
	[ "$status" -eq 0 ]
	[ "$output" = '{"n":1}' ]
}
