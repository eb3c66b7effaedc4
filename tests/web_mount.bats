#!/usr/bin/env bats
# web_mount.bats — mount.jobfs passes the web face's options through
# (http=, http_route= once per route, http_timeout=, http_max_conn=,
# http_idle=), and jobfs refuses malformed ones.

load 'helpers/daemon'

@test "mount.jobfs turns http options into jobfs flags" {
	run "$JOBFS_BIN/mount.jobfs" -f src /m \
		-o http=127.0.0.1:8080,http_route=/app=web,http_route=/api=api,http_timeout=5,http_max_conn=9,http_idle=7
	[ "$status" = 0 ]
	[ "$output" = "mount.jobfs: jobfs --http 127.0.0.1:8080 --http-route /app=web --http-route /api=api --http-timeout 5 --http-max-conn 9 --http-idle 7 -o fsname=src /m" ]
}

@test "jobfs refuses a malformed --http or --http-route" {
	run "$JOBFS" -f --http-route app=web
	[ "$status" = 1 ]
	[[ "$output" == *"bad --http-route"* ]]
	run "$JOBFS" -f --http-route /app=a/b
	[ "$status" = 1 ]
	run "$JOBFS" -f --master-port 0 --worker-port 0 --http nope
	[ "$status" = 1 ]
	[[ "$output" == *"bad --http nope"* ]]
	run "$JOBFS" --help
	[[ "$output" == *"--http [ADDR:]PORT"* ]]
}
