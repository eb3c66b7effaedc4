#!/usr/bin/env bats
# auth_tree.bats — the tree's modes say who may do what, and the
# kernel enforces them (the mount always has default_permissions).  Users
# made here with useradd: one in the --group, one not.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/fs'

GRP= INSIDER= OUTSIDER=

setup() {
	require_fuse
	[ "$(id -u)" = 0 ] || skip "making users needs root"
	command -v useradd >/dev/null && command -v runuser >/dev/null ||
		skip "no useradd or runuser"
	GRP=jft$$g$RANDOM
	INSIDER=jft$$i$RANDOM
	OUTSIDER=jft$$o$RANDOM
	groupadd "$GRP" || skip "cannot make a group"
	useradd -M -N -s /bin/sh -G "$GRP" "$INSIDER"
	useradd -M -N -s /bin/sh "$OUTSIDER"
	# The users must reach the mount point.
	local d=$BATS_TEST_TMPDIR
	while [ "$d" != / ]; do
		chmod o+x "$d"
		d=$(dirname "$d")
	done
}

teardown() {
	daemon_teardown
	local s=$?
	[ -z "$INSIDER" ] || userdel "$INSIDER" 2>/dev/null
	[ -z "$OUTSIDER" ] || userdel "$OUTSIDER" 2>/dev/null
	[ -z "$GRP" ] || groupdel "$GRP" 2>/dev/null
	return $s
}

# as_user USER CMD: run the shell command CMD as USER.
as_user() {
	runuser -u "$1" -- sh -c "$2"
}

@test "without --group others may read the tree but not submit, mkdir or publish" {
	start_daemon_mounted -o allow_other
	mkdir "$MNT/types/t"
	[ "$(stat -c %a "$MNT/types/t/queue")" = 644 ]
	[ "$(stat -c %a "$MNT/jobs")" = 755 ]
	as_user "$OUTSIDER" "cat '$MNT/README' >/dev/null && ls '$MNT/types'"
	run as_user "$OUTSIDER" "echo '{}' >'$MNT/types/t/queue'"
	[ "$status" != 0 ]
	[[ "$output" == *"Permission denied"* ]]
	run as_user "$OUTSIDER" "mkdir '$MNT/types/u'"
	[ "$status" != 0 ]
	[ ! -e "$MNT/types/u" ]
	[ "$(ls "$MNT/jobs" | wc -l)" = 0 ]
	assert_tree_healthy
}

@test "--group: its members submit and read results; others may do nothing; nobody else cancels" {
	start_daemon_mounted -o allow_other --group "$GRP"
	[ "$(stat -c '%a %G' "$MNT/jobs")" = "750 $GRP" ]
	bg "$JOBCTL" work g -- cat
	wait_until 10 test -d "$MNT/types/g"
	[ "$(stat -c '%a %G' "$MNT/types/g/queue")" = "660 $GRP" ]
	id=$(as_user "$INSIDER" "exec 3<>'$MNT/types/g/queue'; echo '{\"by\":\"insider\"}' >&3; head -n 1 <&3")
	[ -n "$id" ]
	[ "$(as_user "$INSIDER" "timeout 10 cat '$MNT/jobs/$id/response'")" = '{"by":"insider"}' ]
	as_user "$INSIDER" "mkdir '$MNT/types/mine'"
	run as_user "$INSIDER" "rmdir '$MNT/jobs/$id'"
	[ "$status" != 0 ]
	[ -d "$MNT/jobs/$id" ]
	run as_user "$OUTSIDER" "ls '$MNT'"
	[ "$status" != 0 ]
	run as_user "$OUTSIDER" "echo '{}' >'$MNT/types/g/queue'"
	[ "$status" != 0 ]
	[ "$(ls "$MNT/jobs" | wc -l)" = 1 ]
	assert_tree_healthy
}

@test "-o group=NAME is --group NAME, and is not passed to FUSE" {
	start_daemon_mounted -o allow_other,group="$GRP"
	mkdir "$MNT/types/o"
	[ "$(stat -c '%a %G' "$MNT/types/o/queue")" = "660 $GRP" ]
	grep "$MNT" /proc/mounts | grep -q default_permissions
	assert_tree_healthy
}
