#!/usr/bin/env bats
# auth_mount_helper.bats — mount.jobfs passes auth=, insecure,
# the limits, tls_*= and group= through to jobfs as flags (a bare "group",
# fstab's, is still ignored); and the tree beside --auth.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/fs'
source "$BATS_TEST_DIRNAME/helpers/conn.bash"
load 'helpers/auth'

@test "mount.jobfs turns auth=, insecure, the limits, tls_*= and group= into flags" {
	run "$JOBFS_BIN/mount.jobfs" -f jobfs /mnt/x -o auth=/etc/t,insecure,tls_cert=/c,tls_key=/k \
		-o tls_ca=/ca,group=staff,max_unauth=3,auth_timeout=5,max_unauth_frames=4 \
		-o max_conns_per_addr=9,group,allow_other
	[ "$status" = 0 ]
	[ "$output" = "mount.jobfs: jobfs --auth /etc/t --insecure --tls-cert /c --tls-key /k --tls-ca /ca --group staff --max-unauth 3 --auth-timeout 5 --max-unauth-frames 4 --max-conns-per-addr 9 -o fsname=jobfs,allow_other /mnt/x" ]
}

@test "with --auth the tree still submits; its jobs have no owner, so over TCP only admin sees them" {
	require_fuse
	TOKENS=$BATS_TEST_TMPDIR/tokens
	write_tokens "$TOKENS"
	start_daemon_mounted --auth "$TOKENS"
	bg as wk "$JOBCTL" work tree -- cat
	wait_until 10 test -d "$MNT/types/tree"
	exec {fd}<>"$MNT/types/tree/queue"
	echo '{"from":"tree"}' >&$fd
	id=$(read_line "$fd")
	exec {fd}>&-
	[ "$(timeout 10 cat "$MNT/jobs/$id/response")" = '{"from":"tree"}' ]
	[ "$(as alice job_status "\"$id\"")" = unknown_id ]
	[ "$(as root job_status "\"$id\"")" = done ]
	[ "$(jq -r 'has("owner")' "$MNT/jobs/$id/info")" = false ]
	run env -u JOBFS_TOKEN "$JOBCTL" stats
	[[ "$output" == *auth_required* ]]
	auth_healthy
}
