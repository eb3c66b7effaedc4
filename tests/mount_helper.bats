#!/usr/bin/env bats
# mount_helper.bats — mount.jobfs (SPEC 3): `mount -t fuse.jobfs` and fstab
# lines start a detached daemon; the helper only translates argv.
#
# mount(8) looks for /sbin/mount.fuse.jobfs and nowhere else, so the tests
# that go through mount(8) link it to this build for their duration (and
# skip if something else is installed there).  $JOBFS makes the helper run
# the daemon of this build whatever it finds next to itself.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/fs'

HELPER=/sbin/mount.fuse.jobfs
LINKED=

setup() {
	require_fuse
	MNT=$BATS_TEST_TMPDIR/mnt
	mkdir -p "$MNT"
	# A detached daemon's stderr is /dev/null: sanitizers report to files.
	export ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$BATS_TEST_TMPDIR/asan"
	export UBSAN_OPTIONS="$UBSAN_OPTIONS:log_path=$BATS_TEST_TMPDIR/ubsan"
}

teardown() {
	local status=0
	if mountpoint -q "$MNT" 2>/dev/null; then
		umount "$MNT" || { umount -l "$MNT"; status=1; }
	fi
	stop_detached || status=1
	[ -z "$LINKED" ] || rm -f "$HELPER"
	if ls "$BATS_TEST_TMPDIR"/asan* "$BATS_TEST_TMPDIR"/ubsan* >/dev/null 2>&1; then
		echo "sanitizer report from the detached daemon:" >&2
		cat "$BATS_TEST_TMPDIR"/asan* "$BATS_TEST_TMPDIR"/ubsan* >&2
		status=1
	fi
	daemon_teardown || status=1
	return "$status"
}

# link_helper: make mount(8) find this build's helper.
link_helper() {
	if [ -e "$HELPER" ] || [ -L "$HELPER" ]; then
		[ "$(readlink "$HELPER")" = "$JOBFS_BIN/mount.jobfs" ] ||
			skip "$HELPER exists and is not this build's; not replacing it"
	else
		ln -s "$JOBFS_BIN/mount.jobfs" "$HELPER" || skip "cannot write $HELPER"
		LINKED=1
	fi
	export JOBFS
}

# fake_jobfs: a stand-in daemon that prints the arguments it was given.
fake_jobfs() {
	local f=$BATS_TEST_TMPDIR/fake-jobfs
	printf '#!/bin/sh\nprintf "%%s\\n" "$@"\n' >"$f"
	chmod +x "$f"
	echo "$f"
}

@test "mount.jobfs turns the options jobfs knows into flags and passes the rest with -o" {
	run env JOBFS="$(fake_jobfs)" "$JOBFS_BIN/mount.jobfs" jobfs /mnt/jobs -n \
		-o rw,master_port=7001,worker_port=7002,listen=0.0.0.0,max_frame=4096 \
		-o keep=30,keep_max=9,verbose,allow_other,noauto,_netdev,nofail,defaults,user,x-systemd.automount,comment=x,default_permissions
	[ "$status" = 0 ]
	[ "$output" = "--master-port
7001
--worker-port
7002
--listen
0.0.0.0
--max-frame
4096
--keep
30
--keep-max
9
-v
-o
fsname=jobfs,allow_other,default_permissions
/mnt/jobs" ]
}

@test "mount.jobfs names the mount after its source; -f (fake) only prints the command" {
	run env JOBFS="$(fake_jobfs)" "$JOBFS_BIN/mount.jobfs" src /m
	[ "$output" = "-o
fsname=src
/m" ]
	run env JOBFS="$(fake_jobfs)" "$JOBFS_BIN/mount.jobfs" -f src /m -o keep=5
	[ "$status" = 0 ]
	[ "$output" = "mount.jobfs: jobfs --keep 5 -o fsname=src /m" ]
	run "$JOBFS_BIN/mount.jobfs" onlyone
	[ "$status" = 1 ]
	[[ $output == *usage* ]]
}

@test "mount -t fuse.jobfs starts a detached daemon with the options given; umount stops it" {
	link_helper
	mount_t() {
		mount -t fuse.jobfs jobfs "$MNT" \
			-o "master_port=$P,worker_port=$Q,keep=1,allow_other,noauto,_netdev"
	}
	on_free_ports mount_t
	# mount(8) returned: the tree is there, served by a daemon that detached.
	[ "$(findmnt -n -o FSTYPE "$MNT")" = fuse.jobfs ]
	[ "$(findmnt -n -o SOURCE "$MNT")" = jobfs ]
	[[ $(findmnt -n -o OPTIONS "$MNT") == *allow_other* ]]
	DETACHED_PID=$(listener_pid "$P")
	[ -n "$DETACHED_PID" ]
	[ "$(listener_pid "$Q")" = "$DETACHED_PID" ]
	assert_tree_healthy
	# keep=1 reached the daemon: finished jobs go within seconds.
	wait_until 10 dir_empty "$MNT/jobs"
	umount "$MNT"
	wait_until 10 eval "! kill -0 $DETACHED_PID 2>/dev/null"
	DETACHED_PID=
	if mountpoint -q "$MNT"; then false; fi
}

@test "an fstab line of type fuse.jobfs mounts the tree" {
	link_helper
	mount_fstab() {
		echo "jobs-from-fstab $MNT fuse.jobfs master_port=$P,worker_port=$Q,noauto,nofail,x-systemd.automount 0 0" \
			>"$BATS_TEST_TMPDIR/fstab"
		mount --fstab "$BATS_TEST_TMPDIR/fstab" "$MNT"
	}
	on_free_ports mount_fstab
	[ "$(findmnt -n -o SOURCE "$MNT")" = jobs-from-fstab ]
	DETACHED_PID=$(listener_pid "$P")
	[ -n "$DETACHED_PID" ]
	assert_tree_healthy
}

@test "mount fails, and nothing is mounted, when jobfs rejects an option" {
	link_helper
	run mount -t fuse.jobfs jobfs "$MNT" -o master_port=notaport
	[ "$status" != 0 ]
	[[ $output == *"bad port"* ]]
	if mountpoint -q "$MNT"; then false; fi
	run mount -t fuse.jobfs jobfs "$MNT" -o "master_port=$(random_port),worker_port=$(random_port),no_such_fuse_option"
	[ "$status" != 0 ]
	if mountpoint -q "$MNT"; then false; fi
}
