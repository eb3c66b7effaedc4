#!/usr/bin/env bats
# mount_helper_data.bats — mount.jobfs turns data=, sync= and repair into
# jobfs's --data, --sync and --repair, so fstab lines can use them.

load 'helpers/daemon'

@test "mount.jobfs passes data=, sync= and repair to jobfs as options" {
	run env JOBFS=/bin/echo "$JOBFS_BIN/mount.jobfs" jobfs /mnt/x \
		-o data=/var/lib/jobfs,sync=interval:50,repair,allow_other
	[ "$status" = 0 ]
	[ "$output" = "--data /var/lib/jobfs --sync interval:50 --repair -o fsname=jobfs,allow_other /mnt/x" ]
}

@test "an fstab-style mount with data= keeps jobs across a restart" {
	local mnt=$BATS_TEST_TMPDIR/mnt data=$BATS_TEST_TMPDIR/data mp wp pid
	mkdir -p "$mnt"
	mp=$(random_port) wp=$(random_port)
	JOBFS=$JOBFS "$JOBFS_BIN/mount.jobfs" jobfs "$mnt" \
		-o "master_port=$mp,worker_port=$wp,data=$data"
	wait_until 10 test -e "$mnt/README"
	mkdir "$mnt/types/t"
	echo '{"kept":1}' >"$mnt/types/t/queue"
	pid=$(cat "$data/lock")
	fusermount3 -u "$mnt"
	wait_until 10 bash -c "! kill -0 $pid 2>/dev/null"
	JOBFS=$JOBFS "$JOBFS_BIN/mount.jobfs" jobfs "$mnt" \
		-o "master_port=$mp,worker_port=$wp,data=$data"
	wait_until 10 test -e "$mnt/README"
	[ "$(ls "$mnt/jobs" | wc -l)" = 1 ]
	[ "$(cat "$mnt/jobs"/*/status)" = queued ]
	pid=$(cat "$data/lock")
	fusermount3 -u "$mnt"
	wait_until 10 bash -c "! kill -0 $pid 2>/dev/null"
}
