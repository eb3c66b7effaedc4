#!/usr/bin/env bats
# auth_cluster.bats — --auth in cluster mode (--redis): a job's id stays
# its owner's across the daemons: another name that submits the id of a
# finished job, on another daemon, gets id_exists, and the owner's status
# still answers its own job.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/ext'
load 'helpers/auth'
load 'helpers/redis'
load 'helpers/cluster'

teardown() {
	ext_teardown
	cluster_teardown
}

@test "cluster mode: an id that another name's finished job keeps gets id_exists on any daemon" {
	command -v redis-server >/dev/null || skip "no redis-server"
	redis_start
	TOKENS=$BATS_TEST_TMPDIR/tokens
	write_tokens "$TOKENS"
	start_node A --auth "$TOKENS"
	start_node B --auth "$TOKENS"
	use_node A
	conn_open W --worker
	send W "$(auth_frame wk)" '{"type":"join","job_type":"cid"}'
	wait_lines W 1
	conn_open MA
	send MA "$(auth_frame alice)" '{"type":"job","job_type":"cid","id":"same","body":"a"}'
	wait_frame W '.type == "job" and .id == "same"'
	send W '{"type":"response","body":"alice-result"}'
	wait_frame MA '.id == "same" and .body == "alice-result"'
	wait_until 10 st_is same done
	# bob, on the other daemon, submits the same id: refused.
	use_node B
	conn_open MB
	send MB "$(auth_frame bob)" '{"type":"job","job_type":"cid","id":"same","body":"b"}'
	wait_frame MB '.error == "id_exists" and .id == "same"'
	[ "$(st same)" = done ]
	[ "$(rcli HGET "$(rkey j:same)" ow)" = alice ]
	[ "$(as alice job_status '"same"')" = done ]
	settle W
	[ "$(count W '.type == "job"')" = 1 ]
	JOBFS_TOKEN=$TOK_ROOT round_trip A B
}
