# cluster.bash — several jobfs daemons on one test Redis.
#
# load 'helpers/daemon'
# load 'helpers/redis'
# load 'helpers/cluster'
#
#   redis_start                     the test's own redis-server (helpers/redis)
#   start_node A [--mount] [opts]   a daemon "A" on it: own ports, log, tree at
#                                   $BATS_TEST_TMPDIR/mnt-A with --mount; its keys
#                                   prefixed t$BATS_TEST_NUMBER; lease 1 s
#                                   (NODE_LEASE ms to change it; NODE_DEBUG=1: -v); ready once
#                                   connected to Redis
#   use_node A                      jobctl and conn_open talk to A from now on
#   on A CMD...                     run CMD with A's ports
#   node_mnt A                      A's tree
#   kill_node A                     kill -9 (its tree is unmounted lazily)
#   stop_node A                     SIGTERM; fails unless it exits 0 with a
#                                   clean sanitizer report
#   cluster_teardown                everything the test started, then Redis
#   round_trip [M W]                a fresh job from M answered on W (A, B)
#   st ID, st_is ID STATE           a job's state in Redis
#
# A node's log is $BATS_TEST_TMPDIR/node-A.log.

declare -gA NODE_PID=() NODE_MPORT=() NODE_WPORT=() NODE_MNT=() NODE_ARGS=()

node_log() {
	echo "$BATS_TEST_TMPDIR/node-$1.log"
}

node_mnt() {
	echo "${NODE_MNT[$1]}"
}

# start_node NAME [--mount] [jobfs options...]
start_node() {
	local name=$1 mnt= log mp wp
	fast_helpers
	shift
	if [ "${1:-}" = --mount ]; then
		shift
		mnt=$BATS_TEST_TMPDIR/mnt-$name
		mkdir -p "$mnt"
	fi
	log=$(node_log "$name")
	mp=${NODE_MPORT[$name]:-$(random_port)}
	wp=${NODE_WPORT[$name]:-$(random_port)}
	: >>"$log"
	"$JOBFS" -f --master-port "$mp" --worker-port "$wp" --redis "$REDIS_URL" \
		--redis-prefix "t$BATS_TEST_NUMBER" --redis-lease "${NODE_LEASE:-1000}" ${NODE_DEBUG:+-v} \
		"$@" ${mnt:+"$mnt"} >>"$log" 2>&1 &
	NODE_PID[$name]=$!
	NODE_MPORT[$name]=$mp
	NODE_WPORT[$name]=$wp
	NODE_MNT[$name]=$mnt
	wait_until 20 node_up "$name" || {
		cat "$log" >&2
		return 1
	}
	[ -z "$mnt" ] || wait_until 10 test -e "$mnt/README"
}

# node_up NAME: its daemon runs and has said it is connected (again).
node_up() {
	local log
	log=$(node_log "$1")
	kill -0 "${NODE_PID[$1]}" 2>/dev/null || return 1
	[ "$(grep -cE 'connected, daemon|back after' "$log")" -gt "$(grep -cE ': lost \(' "$log")" ]
}

use_node() {
	JOBFS_MASTER_PORT=${NODE_MPORT[$1]}
	JOBFS_WORKER_PORT=${NODE_WPORT[$1]}
	export JOBFS_MASTER_PORT JOBFS_WORKER_PORT
}

on() {
	local n=$1
	shift
	JOBFS_MASTER_PORT=${NODE_MPORT[$n]} JOBFS_WORKER_PORT=${NODE_WPORT[$n]} "$@"
}

node_unmount() {
	local mnt=${NODE_MNT[$1]}
	if [ -n "$mnt" ] && mountpoint -q "$mnt" 2>/dev/null; then
		fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt"
	fi
}

kill_node() {
	local pid=${NODE_PID[$1]}
	[ -n "$pid" ] || return 0
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
	NODE_PID[$1]=
	node_unmount "$1"
}

stop_node() {
	local name=$1 pid=${NODE_PID[$1]} i rc status=0 log
	log=$(node_log "$name")
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 200; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "node $name did not exit within 10s of SIGTERM" >&2
		kill -KILL "$pid"
		status=1
	fi
	wait "$pid" 2>/dev/null
	rc=$?
	NODE_PID[$name]=
	if [ "$status" = 0 ] && [ "$rc" != 0 ]; then
		echo "node $name exited with status $rc" >&2
		status=1
	fi
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: (Address|Undefined)' "$log"; then
		echo "sanitizer report in node $name's log" >&2
		status=1
	fi
	if [ -n "${NODE_MNT[$name]}" ] && mountpoint -q "${NODE_MNT[$name]}" 2>/dev/null; then
		echo "node $name's tree still mounted after it stopped" >&2
		node_unmount "$name"
		status=1
	fi
	[ "$status" = 0 ] || cat "$log" >&2
	return "$status"
}

cluster_teardown() {
	local status=0 n
	daemon_teardown || status=1
	for n in "${!NODE_PID[@]}"; do
		stop_node "$n" || status=1
	done
	redis_teardown || status=1
	return "$status"
}

teardown() {
	cluster_teardown
}

# rkey SUFFIX: a key of this test's cluster, e.g. $(rkey j:ID).
rkey() {
	echo "t$BATS_TEST_NUMBER:$1"
}

# round_trip [M W]: a fresh job submitted on node M (default A) and answered
# by a worker on node W (default B): the cluster still works.
round_trip() {
	local m=${1:-A} w=${2:-B}
	on "$w" "$JOBCTL" work rt -- cat >/dev/null 2>&1 &
	BG_PIDS+=("$!")
	[ "$(on "$m" timeout 30 "$JOBCTL" submit rt '{"fresh":true}')" = '{"fresh":true}' ]
}

# st ID: the job's state in Redis; st_is ID STATE (for wait_until).
st() {
	rcli HGET "$(rkey "j:$1")" st
}

st_is() {
	[ "$(st "$1")" = "$2" ]
}

# lines_in FILE N: FILE has N lines or more.
lines_in() {
	[ "$(wc -l <"$1" 2>/dev/null)" -ge "$2" ]
}
