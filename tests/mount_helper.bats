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
load 'helpers/redis'

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
	redis_teardown || status=1
	return "$status"
}

# link_helper: make mount(8) find this build's helper.  deb.bats installs
# a package that ships $HELPER: the lock keeps the two apart.
link_helper() {
	exec {HELPER_LOCK}>"$BATS_RUN_TMPDIR/sbin-helper.lock"
	flock -w 600 "$HELPER_LOCK" || skip "$HELPER is held by another test"
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
		-o keep=30,keep_max=9,keep_bytes=4M,verbose,allow_other,noauto,_netdev,nofail,defaults,user,x-systemd.automount,comment=x,default_permissions
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
--keep-bytes
4M
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

# fake_jobfs_env: as fake_jobfs, and first the Redis password it was given
# in its environment (or "unset").
fake_jobfs_env() {
	local f=$BATS_TEST_TMPDIR/fake-jobfs-env
	printf '#!/bin/sh\necho "JOBFS_REDIS_PASSWORD=${JOBFS_REDIS_PASSWORD-unset}"\nprintf "%%s\\n" "$@"\n' >"$f"
	chmod +x "$f"
	echo "$f"
}

@test "mount.jobfs: a redis:// source becomes --redis; redis_* options become flags" {
	run env -u JOBFS_REDIS_PASSWORD JOBFS="$(fake_jobfs_env)" "$JOBFS_BIN/mount.jobfs" \
		redis://127.0.0.1:6390/2 /mnt/jobs -o redis_prefix=c1,redis_lease=2000,allow_other \
		-o keep=5
	[ "$status" = 0 ]
	[ "$output" = "JOBFS_REDIS_PASSWORD=unset
--redis
redis://127.0.0.1:6390/2
--redis-prefix
c1
--redis-lease
2000
--keep
5
-o
fsname=redis://127.0.0.1:6390/2,allow_other
/mnt/jobs" ]
	# A source that is not a Redis URL still only names the mount.
	run env JOBFS="$(fake_jobfs)" "$JOBFS_BIN/mount.jobfs" -f redis-like /m
	[ "$output" = "mount.jobfs: jobfs -o fsname=redis-like /m" ]
	run "$JOBFS_BIN/mount.jobfs" -f jobfs /m -o redis_lease
	[ "$status" = 1 ]
	[[ $output == *"redis_lease needs a value"* ]]
}

@test "mount.jobfs: a password in the Redis URL goes in the environment, never in the daemon's argv" {
	# Percent-escapes are decoded: the password is s@cr/t:%.
	run env JOBFS="$(fake_jobfs_env)" "$JOBFS_BIN/mount.jobfs" \
		'redis://:s%40cr%2Ft%3A%25@10.0.0.5:6379/1' /mnt/jobs -o redis_prefix=p
	[ "$status" = 0 ]
	[ "$output" = "JOBFS_REDIS_PASSWORD=s@cr/t:%
--redis
redis://10.0.0.5:6379/1
--redis-prefix
p
-o
fsname=redis://10.0.0.5:6379/1
/mnt/jobs" ]
	# A user name goes too (jobfs ignores it); without a ':' it is all
	# password, as jobfs reads it.
	run env JOBFS="$(fake_jobfs_env)" "$JOBFS_BIN/mount.jobfs" 'redis://ops:pw@h/0' /m
	[ "$output" = "JOBFS_REDIS_PASSWORD=pw
--redis
redis://h/0
-o
fsname=redis://h/0
/m" ]
	run env JOBFS="$(fake_jobfs_env)" "$JOBFS_BIN/mount.jobfs" -f 'redis://secret@h' /m
	[ "$output" = "mount.jobfs: jobfs --redis redis://h -o fsname=redis://h /m" ]
	# -v and -f print the command line without it.
	run env JOBFS="$(fake_jobfs_env)" "$JOBFS_BIN/mount.jobfs" -f 'redis://:hunter2@h:7000' /m
	[ "$status" = 0 ]
	[ "$output" = "mount.jobfs: jobfs --redis redis://h:7000 -o fsname=redis://h:7000 /m" ]
	# Without a password in the URL, one in mount's environment reaches jobfs.
	run env JOBFS_REDIS_PASSWORD=fromenv JOBFS="$(fake_jobfs_env)" "$JOBFS_BIN/mount.jobfs" redis://h /m
	[ "${lines[0]}" = "JOBFS_REDIS_PASSWORD=fromenv" ]
	[ "${lines[2]}" = "redis://h" ]
	# A bad escape is refused, and nothing runs.
	run env JOBFS="$(fake_jobfs_env)" "$JOBFS_BIN/mount.jobfs" 'redis://:pw%4@h' /m
	[ "$status" = 1 ]
	[ "$output" = "mount.jobfs: bad %-escape in the Redis password" ]
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

@test "mount -t fuse.jobfs redis://:PASSWORD@HOST:PORT mounts a cluster-mode daemon; the password shows neither in ps nor in the mount table" {
	link_helper
	redis_start
	# The password holds characters a URL writes percent-encoded.
	rcli config set requirepass 's3@cr/t' >/dev/null
	mount_redis() {
		mount -t fuse.jobfs "redis://:s3%40cr%2Ft@127.0.0.1:$REDIS_PORT" "$MNT" \
			-o "master_port=$P,worker_port=$Q,redis_prefix=t$BATS_TEST_NUMBER,redis_lease=1000"
	}
	on_free_ports mount_redis
	[ "$(findmnt -n -o SOURCE "$MNT")" = "redis://127.0.0.1:$REDIS_PORT" ]
	DETACHED_PID=$(listener_pid "$P")
	[ -n "$DETACHED_PID" ]
	args=$(tr '\0' ' ' <"/proc/$DETACHED_PID/cmdline")
	[[ $args == *" --redis redis://127.0.0.1:$REDIS_PORT --master-port $P "* ]]
	[[ $args == *" --redis-prefix t$BATS_TEST_NUMBER --redis-lease 1000 "* ]]
	[[ $args != *s3* ]]
	tr '\0' '\n' <"/proc/$DETACHED_PID/environ" | grep -qx 'JOBFS_REDIS_PASSWORD=s3@cr/t'
	# It got into Redis with that password: it said hello under its prefix.
	hello() {
		[ "$(rcli -a 's3@cr/t' --no-auth-warning hlen "t$BATS_TEST_NUMBER:daemons")" = 1 ]
	}
	wait_until 10 hello
	# The tree's jobs go through Redis to a worker, and come back.
	assert_tree_healthy
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
