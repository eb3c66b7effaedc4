#!/usr/bin/env bats
# redis_sentinel.bats — cluster mode behind Redis Sentinel
# (--redis redis-sentinel://...): a master, one replica and three
# sentinels on free ports; the master killed under load with
# --redis-wait-replicas 1 loses no acknowledged job; a bad URL; no
# sentinel reachable at start.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'
load 'helpers/redis'
load 'helpers/cluster'

REPLICA_PID=
REPLICA_PORT=
SENT_PIDS=()
SENT_PORTS=()
SENT_URL=

setup() {
	redis_start
}

teardown() {
	local p status=0
	cluster_teardown || status=1
	for p in "${SENT_PIDS[@]}" $REPLICA_PID; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	return "$status"
}

# rping PORT: that Redis (or sentinel) answers.
rping() {
	[ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ]
}

# replica_synced: the replica's link to the master is up.
replica_synced() {
	redis-cli -p "$REPLICA_PORT" info replication 2>/dev/null | grep -q 'master_link_status:up'
}

# replica_start: a replica of the test's Redis on a free port.
replica_start() {
	REPLICA_PORT=$(random_port)
	mkdir -p "$BATS_TEST_TMPDIR/replica"
	redis-server --port "$REPLICA_PORT" --bind 127.0.0.1 --dir "$BATS_TEST_TMPDIR/replica" \
		--replicaof 127.0.0.1 "$REDIS_PORT" --appendonly yes --appendfsync always \
		--save '' --daemonize no >>"$BATS_TEST_TMPDIR/replica.log" 2>&1 &
	REPLICA_PID=$!
	wait_until 20 replica_synced
}

# sentinels_start MASTERPORT: three sentinels watching master "mm" (quorum
# 2, down after 1 s, failover timeout 3 s), on the ports in SENT_PORTS (free
# ones if it is empty); sets SENT_URL.
sentinels_start() {
	local i conf hosts=
	[ "${#SENT_PORTS[@]}" = 3 ] || SENT_PORTS=("$(random_port)" "$(random_port)" "$(random_port)")
	for i in 0 1 2; do
		conf=$BATS_TEST_TMPDIR/sentinel-$i.conf
		mkdir -p "$BATS_TEST_TMPDIR/sentinel-$i"
		cat >"$conf" <<-EOF
			port ${SENT_PORTS[$i]}
			bind 127.0.0.1
			dir $BATS_TEST_TMPDIR/sentinel-$i
			sentinel monitor mm 127.0.0.1 $1 2
			sentinel down-after-milliseconds mm 1000
			sentinel failover-timeout mm 3000
			sentinel parallel-syncs mm 1
		EOF
		redis-server "$conf" --sentinel >>"$BATS_TEST_TMPDIR/sentinel-$i.log" 2>&1 &
		SENT_PIDS+=("$!")
		hosts+=${hosts:+,}127.0.0.1:${SENT_PORTS[$i]}
	done
	SENT_URL=redis-sentinel://$hosts/mm
	for i in 0 1 2; do
		wait_until 20 rping "${SENT_PORTS[$i]}" || return 1
	done
}

# sentinel_field I FIELD: FIELD of master mm as sentinel I sees it.
sentinel_field() {
	redis-cli -p "${SENT_PORTS[$1]}" sentinel master mm 2>/dev/null |
		awk -v f="$2" 'prev == f { print; exit } { prev = $0 }'
}

# sentinels_ready: each sentinel knows the replica and the two others
# (a failover needs both).
sentinels_ready() {
	local i
	for i in 0 1 2; do
		[ "$(sentinel_field "$i" num-slaves)" = 1 ] || return 1
		[ "$(sentinel_field "$i" num-other-sentinels)" = 2 ] || return 1
	done
}

# master_port_is PORT: sentinel 0 names 127.0.0.1:PORT master mm.
master_port_is() {
	[ "$(redis-cli -p "${SENT_PORTS[0]}" sentinel get-master-addr-by-name mm 2>/dev/null |
		tail -n 1)" = "$1" ]
}

# new_master_has_replica: the promoted replica has a replica in sync.
new_master_has_replica() {
	redis-cli -p "$REPLICA_PORT" info replication 2>/dev/null | grep -q '^slave0:.*state=online'
}

# acked NAME / ended NAME: the ids NAME's submissions were acknowledged
# for, and the ids of the endings it received, one a line, sorted.
acked() {
	jq -r 'select(.ok == true) | .id' "$(conn_file "$1")" | sort
}

ended() {
	jq -r 'select(.ok == null and .error == null) | .id' "$(conn_file "$1")" | sort
}

# all_answered NAME N: NAME had an answer (ok or error) to each of its N
# submissions, and an ending for each acknowledged one.
all_answered() {
	local f
	f=$(conn_file "$1")
	[ "$(jq -c 'select(.ok == true or .error != null)' "$f" | wc -l)" -ge "$2" ] || return 1
	[ "$(acked "$1" | wc -l)" = "$(ended "$1" | wc -l)" ]
}

@test "Sentinel: the master killed -9 under load: every acknowledged job ends exactly once, then the daemons serve again" {
	local i n=300
	replica_start
	sentinels_start "$REDIS_PORT"
	wait_until 30 sentinels_ready
	start_node A --redis "$SENT_URL" --redis-wait-replicas 1
	start_node B --redis "$SENT_URL" --redis-wait-replicas 1
	grep -q "Sentinel 127.0.0.1:[0-9]* names 127.0.0.1:$REDIS_PORT master mm" "$(node_log A)"
	on B "$JOBCTL" work --capacity 4 ld -- cat >/dev/null 2>&1 &
	BG_PIDS+=("$!")
	on A "$JOBCTL" work --capacity 2 ld -- cat >/dev/null 2>&1 &
	BG_PIDS+=("$!")
	use_node A
	conn_open M
	(
		conn_close_inherited
		for ((i = 1; i <= n; i++)); do
			printf '{"action":"submit","type":"ld","id":%d,"body":%d}\n' "$i" "$i"
			sleep 0.01
		done
	) >"$BATS_TEST_TMPDIR/conn.M.in" &
	BG_PIDS+=("$!")
	# Under load: some jobs acknowledged and ended, then the master dies.
	wait_until 30 conn_has_lines M 60
	kill -KILL "$REDIS_PID"
	wait "$REDIS_PID" 2>/dev/null || true
	REDIS_PID=
	wait_until 10 grep -q ': lost (' "$(node_log A)"
	# Sentinel promotes the replica; the daemons follow it.
	wait_until 30 master_port_is "$REPLICA_PORT"
	wait_until 20 grep -q "names 127.0.0.1:$REPLICA_PORT master mm\|promoted 127.0.0.1:$REPLICA_PORT" "$(node_log A)"
	wait_until 20 grep -q 'back after' "$(node_log A)"
	wait_until 20 grep -q 'back after' "$(node_log B)"
	# The promoted master has no replica: WAIT 1 counts 0, so what the
	# daemons wrote stays unacknowledged and new submissions are refused.
	wait_until 20 grep -q 'only 0 of the 1 replica(s) asked for' "$(node_log A)"
	conn_open R
	send R '{"action":"submit","type":"ld","id":"r1","body":0}'
	wait_lines R 1
	is_error "$(line R 1)" unavailable '"r1"'
	[[ "$(line R 1)" == *"only 0 of the 1 replica(s) asked for (--redis-wait-replicas)"* ]]
	# The old master comes back; Sentinel makes it the new master's replica,
	# and what was held is acknowledged.
	redis_run
	wait_until 30 new_master_has_replica
	# Every submission answered; every acknowledged one ended exactly once.
	wait_until 90 all_answered M "$n" || {
		echo "answers: $(jq -c 'select(.ok == true or .error != null)' "$(conn_file M)" | wc -l)," \
			"acked $(acked M | wc -l), ended $(ended M | wc -l)" >&2
		comm -3 <(acked M) <(ended M) | head -n 20 >&2
		grep -v '"ok"' "$(conn_file M)" | grep error | head -n 5 >&2
		tail -n 30 "$(node_log A)" "$(node_log B)" >&2
		false
	}
	[ "$(acked M | wc -l)" -gt 0 ]
	[ "$(acked M | uniq -d | wc -l)" = 0 ]
	[ "$(ended M | uniq -d | wc -l)" = 0 ]
	diff <(acked M) <(ended M)
	[ "$(jq -c 'select(.ok == null and .error == null and .body != .id)' "$(conn_file M)" | wc -l)" = 0 ]
	# Refused submissions (while no master answered, or no replica) never ended.
	[ -z "$(comm -12 <(jq -r 'select(.error != null) | .id' "$(conn_file M)" | sort) <(ended M))" ]
	[ "$(nlines R)" = 1 ]
	# The daemons serve on the promoted replica, a fresh job across them.
	REDIS_PORT=$REPLICA_PORT
	[ "$(rcli role | head -n 1)" = master ]
	round_trip A B
	round_trip B A
}

@test "Sentinel: a bad URL is refused at start with a clear error and exit status 1" {
	local url
	for url in 'redis-sentinel://127.0.0.1:26379' 'redis-sentinel:///mm' \
		'redis-sentinel://127.0.0.1:0/mm' 'redis-sentinel://127.0.0.1:26379,/mm' \
		'redis-sentinel://127.0.0.1:26379/m m' 'redis-sentinel://[::1/mm'; do
		run timeout 10 "$JOBFS" -f --master-port 0 --worker-port 0 --redis "$url"
		[ "$status" = 1 ] || { echo "$url: status $status" >&2; false; }
		[[ "$output" == *"--redis $url"*"redis-sentinel://[:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTERNAME"* ]] ||
			{ echo "$url: $output" >&2; false; }
	done
	run timeout 10 "$JOBFS" -f --master-port 0 --worker-port 0 --redis redis://127.0.0.1 --redis-wait-replicas 17
	[ "$status" = 1 ]
	[[ "$output" == *--redis-wait-replicas* ]]
	# Another client's job still completes (a plain cluster on the test's Redis).
	start_node A
	round_trip A A
}

@test "Sentinel: no sentinel reachable at start: refusals with the reason, then it serves once they come" {
	local mp wp log
	SENT_PORTS=("$(random_port)" "$(random_port)" "$(random_port)")
	mp=$(random_port)
	wp=$(random_port)
	log=$(node_log A)
	"$JOBFS" -f --master-port "$mp" --worker-port "$wp" --redis-prefix "t$BATS_TEST_NUMBER" \
		--redis-lease 1000 --redis-wait-replicas 1 \
		--redis "redis-sentinel://127.0.0.1:${SENT_PORTS[0]},127.0.0.1:${SENT_PORTS[1]},127.0.0.1:${SENT_PORTS[2]}/mm" \
		>"$log" 2>&1 &
	NODE_PID[A]=$!
	NODE_MPORT[A]=$mp
	NODE_WPORT[A]=$wp
	NODE_MNT[A]=
	wait_until 10 grep -q "cannot connect (no sentinel named master mm (the last: sentinel 127.0.0.1:[0-9]*: .*)); trying again" "$log"
	kill -0 "${NODE_PID[A]}"
	use_node A
	conn_open M
	send M '{"action":"submit","type":"s","id":"early","body":1}'
	wait_lines M 1
	is_error "$(line M 1)" unavailable '"early"'
	[[ "$(line M 1)" == *"no sentinel named master mm"* ]]
	# The sentinels and the replica come: the daemon finds the master.
	replica_start
	sentinels_start "$REDIS_PORT"
	wait_until 30 node_up A
	on A "$JOBCTL" work s -- cat >/dev/null 2>&1 &
	BG_PIDS+=("$!")
	[ "$(on A timeout 30 "$JOBCTL" submit s '"late"')" = '"late"' ]
}
