#!/usr/bin/env bash
# Cluster mode's benchmark rows: jobfs on Redis beside the
# embedded daemon, in the same run, with the same load generator as
# run.sh (out/loadgen), each measurement on a fresh redis-server of its own
# (a free loopback port, its directory under this run's temporary one):
#
#   throughput   run.sh's shape (M=4 masters x K=64 in flight, W=8 workers,
#                100-byte bodies) against: the embedded daemon; one daemon
#                on Redis; two daemons on one Redis, masters on A and
#                workers on B; and two daemons "split": two load generators
#                at once, one with its masters on A and workers on B, the
#                other the other way round (half the masters, workers and
#                jobs each).  Target: >= 20000 jobs/s with two daemons.
#                Also Redis's own CPU (utime + stime of its pid, from
#                /proc/PID/stat, over the run) per job and as a share of
#                one CPU, and the daemons' CPU per job.
#   latency      run.sh's shape (M=1 K=1 W=1), everything (Redis too)
#                pinned to one CPU as there: embedded, one daemon, two
#                (masters on A, workers on B).  Target: p50 <= 4x embedded.
#   memory       Redis memory per queued 100-byte job: INFO memory
#                used_memory before, and after N=100000 jobs are queued
#                (submitted detached through one daemon by loadgen --fill,
#                no worker; counted in Redis as ZCARD P:q:echo), divided
#                by N; with Redis's defaults and with CONFIG SET
#                hash-max-listpack-value 1024.
#   failover     kill -9 of daemon B while its worker holds a job submitted
#                on A: seconds from the kill to the job starting on a
#                worker of A (the worker writes the time it got it), with
#                --redis-lease 5000.  The master on A must then get the
#                job's result, and each worker must have seen it once.
#                Target: <= the lease + 1 s.
#   peers        jobfs (one daemon; two, masters on A and workers on B)
#                beside BullMQ (peers/bullmq.js: its producers, and its
#                Worker in another Node process; npm ci into
#                peers/node_modules when missing) and Sidekiq
#                (peers/sidekiq_*.rb: a Ruby producer, a sidekiq process),
#                each on a fresh Redis: round trips (M=4 K=64, 8 workers or
#                concurrency 8, 100-byte bodies, N=20000); N=100000 jobs
#                added with no worker, then drained by 8; latency (one job
#                at a time, N=5000, everything pinned to one CPU) beside a
#                bare PING (redis-benchmark -c 1 -t ping, pinned too).  For
#                each: jobs/s, Redis CPU per job (INFO cpu) and Redis
#                commands per job (INFO commandstats after CONFIG
#                RESETSTAT: every command, those inside FCALL/EVALSHA
#                too), and for round trips and latency Redis's socket reads
#                per job (INFO stats total_reads_processed: each costs a
#                system call and an event-loop turn).  A peer whose tools are missing is skipped, with a
#                note.  BENCH_PEER_REPS repetitions (default 1);
#                BENCH_PEERS="j1 j2 bull sk" the columns (those by default).
#   profile      where jobfs's Redis time goes in the round-trip shape (one
#                daemon, N=10000): commands per job by name, and by
#                function the FCALLs, their time (SLOWLOG) and the commands
#                each runs (MONITOR); out/redis-profile.md.
#
#   tests/bench/redis.sh                       # every shape
#   tests/bench/redis.sh memory failover       # some of them
#   BENCH_SCALE=0.1 BENCH_REPS=1 tests/bench/redis.sh
#
# Environment: BENCH_SCALE (default 1), BENCH_REPS (3), JOBFS (default
# build/jobfs; jobctl is taken from beside it), BENCH_LAT_CPU (0),
# BENCH_REDIS_LEASE (ms, 5000), BENCH_REDIS_CONF (redis-server options for
# every measurement, default "--appendonly no": in memory, as the embedded
# daemon is; "--appendonly yes --appendfsync always" measures durable
# Redis).  A daemon without --redis (the cluster mode not built yet) makes
# the Redis cells "pending"; the embedded column is measured anyway.
#
# Prints one table (rows as run.sh's: medians of BENCH_REPS), also written
# to out/redis-table.md, RESULT lines in out/redis-results.txt and logs in
# out/redis-logs/.  Exits non-zero only if a server crashed or a run failed
# verification; missed targets are in the table.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$HERE/out
JOBFS_SRC=${JOBFS:-$ROOT/build/jobfs}
WORK=$(mktemp -d /tmp/jobfs-redisbench.XXXXXX)
LOGDIR=$WORK/logs
LOADGEN=$WORK/loadgen
JOBFS=$WORK/jobfs
JOBCTL=$WORK/jobctl
SCALE=${BENCH_SCALE:-1}
REPS=${BENCH_REPS:-3}
LAT_CPU=${BENCH_LAT_CPU:-0}
LEASE=${BENCH_REDIS_LEASE:-5000}
PREPS=${BENCH_PEER_REPS:-1}
read -r -a REDIS_CONF <<<"${BENCH_REDIS_CONF:---appendonly no}"
SHAPES=" ${*:-throughput latency memory failover peers profile} "
# redis-server, and what out/loadgen is built with.
PACKAGES=(redis-server libgearman-dev libev-dev libjansson-dev)
HZ=$(getconf CLK_TCK)

# Configurations, one column each.
CONFS=(emb r1 r2 r2s)

STATUS=0
NOTES=()
PIN=()              # command prefix (taskset) for the latency shape
declare -A CELL     # "row|conf" -> values, one per repetition
declare -A BAD      # "row|conf" -> FAIL / pending / -
declare -A STARTED  # pid -> what it is: stopped at exit if still running
declare -A GROUPS_  # process-group id -> what it is (worker commands)
PORTS=" "           # ports handed out and not yet released

note() { NOTES+=("$*"); echo "  note: $*" >&2; }
failed() { STATUS=1; note "$*"; }

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
	local pid g
	for g in "${!GROUPS_[@]}"; do kill -KILL -- "-$g" 2>/dev/null; done
	for g in "$WORK"/fo-held.* "$WORK"/fo-got.*; do
		[ -f "$g" ] && kill_listed "$g"
	done
	for pid in "${!STARTED[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	sleep 0.3
	for pid in "${!STARTED[@]}"; do kill -KILL "$pid" 2>/dev/null; done
	mkdir -p "$OUT"
	rm -rf "$OUT/redis-logs"
	cp -r "$LOGDIR" "$OUT/redis-logs" 2>/dev/null
	cp "$WORK/results.txt" "$OUT/redis-results.txt" 2>/dev/null
	cp "$WORK/table.md" "$OUT/redis-table.md" 2>/dev/null
	cp "$WORK/profile.md" "$OUT/redis-profile.md" 2>/dev/null
	[ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- setup ----

ensure_packages() {
	local missing=() p sudo=()
	for p in "${PACKAGES[@]}"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" = 0 ] || sudo=(sudo)
	echo "installing: ${missing[*]}"
	"${sudo[@]}" apt-get update -q &&
		DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q "${missing[@]}"
}

scaled() { # base [minimum]
	awk -v n="$1" -v s="$SCALE" -v min="${2:-100}" \
		'BEGIN { v = int(n * s); if (v < min) v = min; print v }'
}

wants() { [[ $SHAPES == *" $1 "* ]]; }

now() { date +%s.%N; }

# A loopback port nobody uses nor was given out in this run, below the
# ephemeral range so that our own client sockets cannot collide with it.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 12000))
		[[ $PORTS == *" $p "* ]] && continue
		[ -z "$(ss -Htan "( sport = :$p or dport = :$p )")" ] && break
	done
	PORTS+="$p "
	echo "$p"
}

wait_listening() { # port pid
	local i
	for ((i = 0; i < 200; i++)); do
		[ -n "$(ss -Htln "sport = :$1")" ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# wait_for SECONDS CMD...: poll CMD every 10 ms until it succeeds.
wait_for() {
	local end
	end=$(awk -v t="$(now)" -v s="$1" 'BEGIN { printf "%.3f", t + s }')
	shift
	until "$@"; do
		awk -v t="$(now)" -v e="$end" 'BEGIN { exit !(t >= e) }' && return 1
		sleep 0.01
	done
}

# CPU time of a process so far, in clock ticks (utime + stime: fields 14
# and 15 of /proc/PID/stat, counted after the ")" that ends its name).
cpu_ticks() { # pid
	sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'
}

# ---- Redis ----

# redis_start: a fresh redis-server; sets REDIS_PID, REDIS_PORT, REDIS_URL.
redis_start() {
	local dir
	REDIS_PORT=$(free_port)
	dir=$WORK/redis-$REDIS_PORT
	mkdir -p "$dir"
	"${PIN[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$dir" \
		--save '' --daemonize no "${REDIS_CONF[@]}" >>"$LOGDIR/redis.log" 2>&1 &
	REDIS_PID=$!
	STARTED[$REDIS_PID]=redis-server
	REDIS_URL=redis://127.0.0.1:$REDIS_PORT
	if ! wait_listening "$REDIS_PORT" "$REDIS_PID" || ! wait_for 10 rping; then
		failed "redis-server did not start (see out/redis-logs/redis.log)"
		redis_stop
		return 1
	fi
}

rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
# shellcheck disable=SC2317 # called through wait_for
rping() { [ "$(rcli ping 2>/dev/null)" = PONG ]; }

# INFO memory's used_memory, in bytes.
used_memory() { rcli info memory | tr -d '\r' | sed -n 's/^used_memory://p'; }

redis_stop() {
	[ -n "${REDIS_PID:-}" ] || return 0
	rcli shutdown nosave >/dev/null 2>&1 || kill -TERM "$REDIS_PID" 2>/dev/null
	wait_for 10 eval "! kill -0 $REDIS_PID 2>/dev/null" || kill -KILL "$REDIS_PID" 2>/dev/null
	wait "$REDIS_PID" 2>/dev/null
	unset "STARTED[$REDIS_PID]"
	PORTS=${PORTS/ $REDIS_PORT / }
	REDIS_PID=
}

# ---- daemons ----

# node_start NAME [jobfs options]: a daemon; NODE_PID[NAME], NODE_M[NAME],
# NODE_W[NAME] are its pid and ports.
declare -A NODE_PID NODE_M NODE_W
node_start() {
	local name=$1 m w
	shift
	m=$(free_port)
	w=$(free_port)
	"${PIN[@]}" "$JOBFS" -f --listen 127.0.0.1 --master-port "$m" --worker-port "$w" \
		"$@" >>"$LOGDIR/jobfs-$name.log" 2>&1 &
	NODE_PID[$name]=$!
	NODE_M[$name]=$m
	NODE_W[$name]=$w
	STARTED[$!]=jobfs-$name
	if ! wait_listening "$m" "$!" || ! wait_listening "$w" "$!"; then
		failed "jobfs ($name) did not start listening (see out/redis-logs/jobfs-$name.log)"
		node_stop "$name"
		return 1
	fi
}

# A daemon on this run's Redis, under PREFIX.
rnode_start() { # name
	node_start "$1" --redis "$REDIS_URL" --redis-prefix "$PREFIX" --redis-lease "$LEASE"
}

# Redis has said hello to COUNT daemons of PREFIX (each has a number):
# until then a daemon answers submissions "unavailable".
nodes_ready() { # count
	# shellcheck disable=SC2317 # called through wait_for
	hellos() { [ "$(rcli hlen "$PREFIX:daemons" 2>/dev/null)" -ge "$1" ] 2>/dev/null; }
	wait_for 20 hellos "$1" || { failed "Redis saw fewer than $1 daemons of $PREFIX"; return 1; }
}

# node_stop NAME: SIGTERM; returns 1 (and records a failure) unless it
# was running and exited 0, as the spec says it does on SIGTERM.
node_stop() {
	local name=$1 pid=${NODE_PID[$1]:-} rc
	[ -n "$pid" ] || return 0
	NODE_PID[$name]=
	PORTS=${PORTS/ ${NODE_M[$name]} / }
	PORTS=${PORTS/ ${NODE_W[$name]} / }
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid"
		rc=$?
		unset "STARTED[$pid]"
		failed "jobfs ($name) exited during the run (status $rc; see out/redis-logs/jobfs-$name.log)"
		return 1
	fi
	kill -TERM "$pid"
	wait_for 10 eval "! kill -0 $pid 2>/dev/null" || {
		note "jobfs ($name) did not exit within 10 s of SIGTERM; killed"
		kill -KILL "$pid"
	}
	wait "$pid"
	rc=$?
	unset "STARTED[$pid]"
	[ "$rc" = 0 ] && return 0
	failed "jobfs ($name) exit status $rc after SIGTERM (see out/redis-logs/jobfs-$name.log)"
	return 1
}

# node_kill NAME: kill -9 (the failover shape).
node_kill() {
	local pid=${NODE_PID[$1]}
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null
	unset "STARTED[$pid]"
	NODE_PID[$1]=
	PORTS=${PORTS/ ${NODE_M[$1]} / }
	PORTS=${PORTS/ ${NODE_W[$1]} / }
}

# ---- loadgen ----

# run_lg LABEL ARGS...: runs loadgen, echoes its human lines, leaves the
# RESULT line in $LAST; returns loadgen's status.
run_lg() {
	local label=$1 out rc
	shift
	out=$("${PIN[@]}" "$LOADGEN" --label "$label" "$@" 2>>"$LOGDIR/loadgen.err")
	rc=$?
	printf '%s\n' "$out" >>"$WORK/results.txt"
	LAST=$(grep '^RESULT' <<<"$out")
	grep -v '^RESULT' <<<"$out" | sed 's/^/    /'
	[ "$rc" = 0 ] || echo "    (loadgen exit $rc; stderr in out/redis-logs/loadgen.err)"
	return "$rc"
}

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"${2:-$LAST}"; }
add() { CELL[$1|$2]="${CELL[$1|$2]:-} $3"; } # row conf value
mark() { BAD[$1|$2]=$3; }                     # row conf FAIL|pending|-

gloom() { # master-node worker-node
	echo "--system gloom --master-port ${NODE_M[$1]} --worker-port ${NODE_W[$2]}"
}

# The nodes a configuration runs: emb (one embedded daemon), r1 (one on
# Redis), r2 and r2s (two on one Redis).
conf_up() { # conf
	case $1 in
	emb) node_start a ;;
	r1) redis_start && rnode_start a && nodes_ready 1 ;;
	r2 | r2s) redis_start && rnode_start a && rnode_start b && nodes_ready 2 ;;
	esac
}

conf_down() { # conf: 0 if every daemon stopped cleanly
	local ok=0
	node_stop a || ok=1
	if [ "$1" = r2 ] || [ "$1" = r2s ]; then node_stop b || ok=1; fi
	[ "$1" = emb ] || redis_stop
	return "$ok"
}

# CPU ticks of the daemons of a configuration, together.
nodes_ticks() { # conf
	local t
	t=$(cpu_ticks "${NODE_PID[a]}")
	if [ "$1" = r2 ] || [ "$1" = r2s ]; then
		t=$((t + $(cpu_ticks "${NODE_PID[b]}")))
	fi
	echo "$t"
}

# One repetition of a loadgen shape in one configuration.  PFX names the
# rows: PFX_rate, PFX_p50, PFX_p99 (not for r2s), PFX_rcpu (Redis µs/job),
# PFX_rpct (Redis % of one CPU), PFX_jcpu (daemons' µs/job).
shape_rep() { # conf pfx N "loadgen args (no -N)"
	local conf=$1 pfx=$2 n=$3 args=$4 ok=1 r0=0 r1=0 j0 j1 t0 t1 secs rate half
	local pid1 rc1 rc2 split1=$WORK/split-ab.out
	PREFIX=bench$RANDOM
	if ! conf_up "$conf"; then
		conf_down "$conf"
		fail_rows "$pfx" "$conf"
		return
	fi
	[ "$conf" = emb ] || r0=$(cpu_ticks "$REDIS_PID")
	j0=$(nodes_ticks "$conf")
	t0=$(now)
	case $conf in
	emb | r1)
		# shellcheck disable=SC2046,SC2086 # word splitting is intended
		run_lg "$pfx-$conf" $(gloom a a) $args -N "$n" || ok=0 ;;
	r2)
		# shellcheck disable=SC2046,SC2086
		run_lg "$pfx-$conf" $(gloom a b) $args -N "$n" || ok=0 ;;
	r2s)
		# Half the masters, workers and jobs each way, at once.
		half=$((n / 2))
		# shellcheck disable=SC2046,SC2086
		"$LOADGEN" --label "$pfx-r2s-ab" $(gloom a b) $args -M 2 -W 4 -N "$half" \
			>"$split1" 2>>"$LOGDIR/loadgen.err" &
		pid1=$!
		# shellcheck disable=SC2046,SC2086
		run_lg "$pfx-r2s-ba" $(gloom b a) $args -M 2 -W 4 -N "$half"
		rc2=$?
		wait "$pid1"
		rc1=$?
		;;
	esac
	t1=$(now)
	if [ "$conf" = r2s ]; then
		cat "$split1" >>"$WORK/results.txt"
		grep -v '^RESULT' "$split1" | sed 's/^/    /'
		if [ "$rc1" != 0 ] || [ "$rc2" != 0 ]; then
			echo "    (split loadgen exit $rc1 / $rc2; stderr in out/redis-logs/loadgen.err)"
			ok=0
		fi
		# Both ran at once: all their jobs over the longer one's time
		# (each counts from its own start, as loadgen does everywhere).
		n=$((half * 2))
		secs=$(printf '%s\n' "$(field secs "$(grep '^RESULT' "$split1")")" "$(field secs)" |
			sort -g | tail -n 1)
		rate=$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
		echo "    split: $n jobs in $secs s (the longer of the two): $rate jobs/s"
	else
		secs=$(field secs)
		rate=$(field jobs_per_sec)
	fi
	[ "$conf" = emb ] || r1=$(cpu_ticks "$REDIS_PID")
	j1=$(nodes_ticks "$conf")
	conf_down "$conf" || ok=0
	if [ $ok = 0 ]; then
		fail_rows "$pfx" "$conf"
		return
	fi
	add "${pfx}_rate" "$conf" "$rate"
	if [ "$conf" != r2s ]; then
		add "${pfx}_p50" "$conf" "$(field p50_us)"
		add "${pfx}_p99" "$conf" "$(field p99_us)"
	fi
	add "${pfx}_jcpu" "$conf" "$(awk -v t=$((j1 - j0)) -v n="$n" -v hz="$HZ" \
		'BEGIN { printf "%.2f", t / hz * 1e6 / n }')"
	if [ "$conf" != emb ]; then
		add "${pfx}_rcpu" "$conf" "$(awk -v t=$((r1 - r0)) -v n="$n" -v hz="$HZ" \
			'BEGIN { printf "%.2f", t / hz * 1e6 / n }')"
		add "${pfx}_rpct" "$conf" "$(awk -v t=$((r1 - r0)) -v a="$t0" -v b="$t1" -v hz="$HZ" \
			'BEGIN { printf "%.1f", t / hz / (b - a) * 100 }')"
	fi
}

# fail_rows PFX CONF: a repetition failed: its rows say FAIL (except
# those that do not apply to CONF).
fail_rows() {
	local r
	STATUS=1
	for r in rate p50 p99 rcpu rpct jcpu; do
		[ "${BAD[${1}_$r|$2]:-}" = - ] || mark "${1}_$r" "$2" FAIL
	done
}

# shape PFX TITLE N "args" CONFS...: repetitions interleaved across
# configurations, as in run.sh.
shape() {
	local pfx=$1 title=$2 n=$3 args=$4 rep conf r
	shift 4
	echo "== $title"
	for ((rep = 1; rep <= REPS; rep++)); do
		for conf in "$@"; do
			if [ "$conf" != emb ] && [ -n "$PENDING" ]; then
				for r in rate p50 p99 rcpu rpct jcpu; do
					[ "${BAD[${pfx}_$r|$conf]:-}" = - ] || mark "${pfx}_$r" "$conf" pending
				done
				continue
			fi
			echo "  $conf, repetition $rep"
			shape_rep "$conf" "$pfx" "$n" "$args"
		done
	done
}

# ---- Redis memory per queued job ----

memory_rep() { # conf: default | lp1024
	local used0 used1 queued key enc
	PREFIX=bench$RANDOM
	redis_start || { mark "mem_$1" r1 FAIL; return; }
	if [ "$1" = lp1024 ]; then
		rcli config set hash-max-listpack-value 1024 >/dev/null
	fi
	if ! rnode_start a || ! nodes_ready 1; then
		node_stop a
		redis_stop
		mark "mem_$1" r1 FAIL
		return
	fi
	used0=$(used_memory)
	# shellcheck disable=SC2046 # word splitting is intended
	if ! run_lg "memory-$1" $(gloom a a) --fill -M 1 -W 1 -S 100 -N "$N_MEM" \
		--timeout 600 --pid "${NODE_PID[a]}"; then
		node_stop a
		redis_stop
		mark "mem_$1" r1 FAIL
		STATUS=1
		return
	fi
	# loadgen --fill returns once the daemon has read every job; they are
	# in Redis once its queue holds them all.
	# shellcheck disable=SC2317 # called through wait_for
	all_queued() { queued=$(rcli zcard "$PREFIX:q:echo"); [ "$queued" = "$N_MEM" ]; }
	if ! wait_for 120 all_queued; then
		failed "memory: $N_MEM jobs submitted, but $PREFIX:q:echo holds ${queued:-nothing}"
		node_stop a
		redis_stop
		mark "mem_$1" r1 FAIL
		return
	fi
	used1=$(used_memory)
	# A job's hash: which encoding Redis chose for it.
	key=$(rcli zrange "$PREFIX:q:echo" 0 0 | cut -c33-)
	enc=$(rcli object encoding "$PREFIX:j:$key")
	node_stop a || { mark "mem_$1" r1 FAIL; redis_stop; return; }
	redis_stop
	add "mem_$1" r1 "$(awk -v a="$used0" -v b="$used1" -v n="$N_MEM" 'BEGIN { printf "%.0f", (b - a) / n }')"
	ENC[$1]=$enc
	echo "    $1: used_memory $used0 -> $used1 bytes for $N_MEM queued jobs; a job hash is a $enc"
}

declare -A ENC
memory_shape() {
	local rep c
	echo "== Redis memory: $N_MEM queued 100-byte jobs, no worker, one daemon"
	for ((rep = 1; rep <= REPS; rep++)); do
		for c in default lp1024; do
			if [ -n "$PENDING" ]; then mark "mem_$c" r1 pending; continue; fi
			memory_rep "$c"
		done
	done
}

# ---- failover ----

# A jobctl worker of type echo on NODE, in its own process group (setsid:
# not a group leader here, so it does not fork); WPID is its pid and group.
# For each job its command appends a line "TIME PID" to FILE (when it got
# the job; its own pid, as jobctl runs each command in a group of its own),
# then holds the job (hold) or answers it (echo).
start_worker() { # node file hold|echo
	local script
	# shellcheck disable=SC2016 # $1 is the script's argument, for sh
	case $3 in
	hold) script='echo "$(date +%s.%N) $$" >>"$1"; exec sleep 3600' ;;
	echo) script='echo "$(date +%s.%N) $$" >>"$1"; exec cat' ;;
	esac
	setsid "$JOBCTL" -w "${NODE_W[$1]}" work echo -- sh -c "$script" sh "$2" \
		>>"$LOGDIR/workers.log" 2>&1 &
	WPID=$!
	GROUPS_[$WPID]=worker
}

# stop_worker PGID FILE: jobctl and the commands it started (those listed
# in FILE: jobctl kills them when it stops, but not when it has already
# lost its daemon and exited).
stop_worker() {
	local pid
	kill -KILL -- "-$1" 2>/dev/null
	wait "$1" 2>/dev/null
	unset "GROUPS_[$1]"
	kill_listed "$2"
}

kill_listed() { # file of "TIME PID" lines
	local _t pid
	while read -r _t pid; do
		[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	done <"$1"
}

failover_rep() { # rep
	local rep=$1 w1 w2 f1=$WORK/fo-held.$1 f2=$WORK/fo-got.$1 out=$WORK/fo-out.$1
	local mpid t0 t1 ok=1
	PREFIX=bench$RANDOM
	: >"$f1"
	: >"$f2"
	if ! redis_start || ! rnode_start a || ! rnode_start b || ! nodes_ready 2; then
		node_stop a
		node_stop b
		redis_stop
		mark failover r2 FAIL
		return
	fi
	# B's worker takes the job (it holds it: sleep), submitted by a master on A.
	start_worker b "$f1" hold
	w1=$WPID
	"$JOBCTL" -m "${NODE_M[a]}" submit --id "failover-$rep" echo '"failover"' >"$out" 2>&1 &
	mpid=$!
	# shellcheck disable=SC2317 # called through wait_for
	held() { [ -s "$f1" ]; }
	# shellcheck disable=SC2317
	joined() { [ -n "$(ss -Htn state established "( dport = :${NODE_W[a]} )")" ]; }
	# shellcheck disable=SC2317
	got() { [ -s "$f2" ]; }
	if ! wait_for 30 held; then
		failed "failover: B's worker never got the job"
		ok=0
	fi
	# Then an idle worker on A, which can only get it once B's lease is gone.
	start_worker a "$f2" echo
	w2=$WPID
	if [ $ok = 1 ] && ! wait_for 10 joined; then
		failed "failover: A's worker did not connect"
		ok=0
	fi
	sleep 0.2 # its join is read: the job is free to go to it
	if [ $ok = 1 ]; then
		t0=$(now)
		node_kill b
		if ! wait_for $((LEASE / 1000 + 30)) got; then
			failed "failover: the job never reached A's worker after kill -9 of B"
			ok=0
		fi
	fi
	if [ $ok = 1 ]; then
		t1=$(awk 'NR == 1 { print $1 }' "$f2")
		# The master on A gets the result, once; each worker saw it once.
		# shellcheck disable=SC2317
		answered() { ! kill -0 "$mpid" 2>/dev/null; }
		wait_for 30 answered || kill "$mpid" 2>/dev/null
		wait "$mpid"
		if [ "$(cat "$out")" != '"failover"' ] || [ "$(wc -l <"$f1")" != 1 ] ||
			[ "$(wc -l <"$f2")" != 1 ]; then
			failed "failover: master got '$(head -c 200 "$out")', held $(wc -l <"$f1") times, rerun $(wc -l <"$f2") times"
			ok=0
		fi
	else
		kill "$mpid" 2>/dev/null
		wait "$mpid" 2>/dev/null
	fi
	stop_worker "$w1" "$f1"
	stop_worker "$w2" "$f2"
	node_stop a || ok=0
	node_stop b
	redis_stop
	if [ $ok = 0 ]; then
		mark failover r2 FAIL
		STATUS=1
		return
	fi
	add failover r2 "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
	echo "    kill -9 of B to the job on A's worker: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') s"
}

failover_shape() {
	local rep
	echo "== failover: kill -9 of the daemon whose worker holds a job, lease $LEASE ms"
	if [ -n "$PENDING" ]; then
		mark failover r2 pending
		return
	fi
	for ((rep = 1; rep <= REPS; rep++)); do
		failover_rep "$rep"
	done
}

# ---- peers: jobfs beside BullMQ and Sidekiq on the same fresh Redis ----

# Columns of the peers table: jobfs with one daemon, with two (masters on
# A, workers on B), BullMQ, Sidekiq.
read -r -a PCONFS <<<"${BENCH_PEERS:-j1 j2 bull sk}"
declare -A PCELL    # "row|conf" -> values, one per repetition
declare -A PSKIP    # conf -> why its column is not measured
PEERS=$HERE/peers

# Redis's own CPU so far (INFO cpu: used_cpu_sys + used_cpu_user), in s.
redis_cpu() {
	rcli info cpu | tr -d '\r' |
		awk -F: '$1 == "used_cpu_sys" || $1 == "used_cpu_user" { s += $2 } END { printf "%.6f", s }'
}

# stats_begin / stats_end ROW CONF N: Redis CPU and commands over a
# measurement, per job.  CONFIG RESETSTAT between; every command in INFO
# commandstats is counted (those run inside FCALL/EVALSHA too, and the
# FCALL/EVALSHA themselves) but the CONFIG RESETSTAT and INFO of this
# script.  The whole commandstats goes to the log, for the profile.
stats_begin() {
	rcli config resetstat >/dev/null
	CPU0=$(redis_cpu)
	READS0=$(redis_reads)
}
# Reads Redis made from its clients' sockets so far (INFO stats
# total_reads_processed): about one per request or pipelined batch.
redis_reads() { rcli info stats | tr -d '\r' | sed -n 's/^total_reads_processed://p'; }
stats_end() { # row conf n
	local cpu1 cmds
	cpu1=$(redis_cpu)
	padd "${1}_reads" "$2" "$(awk -v a="$READS0" -v b="$(redis_reads)" -v n="$3" 'BEGIN { printf "%.2f", (b - a - 1) / n }')"
	rcli info commandstats | tr -d '\r' >"$LOGDIR/commandstats-$2-$1.txt"
	cmds=$(awk -F'[:=,]' '/^cmdstat_/ && $1 != "cmdstat_info" && $1 != "cmdstat_config|resetstat" {
		s += $3 } END { print s + 0 }' "$LOGDIR/commandstats-$2-$1.txt")
	padd "${1}_rcpu" "$2" "$(awk -v a="$CPU0" -v b="$cpu1" -v n="$3" 'BEGIN { printf "%.1f", (b - a) * 1e6 / n }')"
	padd "${1}_cmds" "$2" "$(awk -v c="$cmds" -v n="$3" 'BEGIN { printf "%.2f", c / n }')"
	echo "    Redis: $(awk -v a="$CPU0" -v b="$cpu1" -v n="$3" 'BEGIN { printf "%.1f", (b - a) * 1e6 / n }') µs CPU and $(awk -v c="$cmds" -v n="$3" 'BEGIN { printf "%.2f", c / n }') commands per job"
}
padd() { PCELL[$1|$2]="${PCELL[$1|$2]:-} $3"; } # row conf value

# A bare PING round trip on this Redis, pinned as the latency shape is.
ping_p50() { # conf
	local us
	us=$("${PIN[@]}" redis-benchmark -p "$REDIS_PORT" -c 1 -n "$N_PLAT" -t ping --csv 2>/dev/null |
		tr -d '"' | awk -F, '$1 == "PING_MBULK" { printf "%.0f", $5 * 1000 }')
	[ -n "$us" ] && padd ping_p50 "$1" "$us"
	echo "    PING p50 $us µs (redis-benchmark -c 1 -t ping, pinned)"
}

# What a peer needs: node with bullmq installed under peers/node_modules
# (npm ci from the pinned lock, once), sidekiq and ruby.
peers_setup() {
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		PSKIP[bull]="no node/npm"
	elif [ ! -d "$PEERS/node_modules/bullmq" ] &&
		! (cd "$PEERS" && npm ci --no-audit --no-fund >>"$LOGDIR/npm.log" 2>&1); then
		PSKIP[bull]="npm ci of bullmq failed (no network?), see out/redis-logs/npm.log"
	fi
	if ! command -v sidekiq >/dev/null || ! ruby -e 'require "sidekiq"' 2>/dev/null; then
		PSKIP[sk]="no sidekiq (Debian ruby-sidekiq)"
	fi
	[ -z "$PENDING" ] || { PSKIP[j1]="no --redis"; PSKIP[j2]="no --redis"; }
	local c
	for c in "${!PSKIP[@]}"; do note "peers: $c column skipped: ${PSKIP[$c]}"; done
}

# bg_start NAME OUTFILE CMD...: a peer process in the background (pinned
# as PIN says); BGPID is its pid.
bg_start() {
	local name=$1 out=$2
	shift 2
	"${PIN[@]}" "$@" >"$out" 2>>"$LOGDIR/$name.err" &
	BGPID=$!
	STARTED[$BGPID]=$name
}
bg_stop() { # pid
	kill -TERM "$1" 2>/dev/null
	wait_for 15 eval "! kill -0 $1 2>/dev/null" || kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	unset "STARTED[$1]"
}
# The RESULT line of a peer's output: sets LAST, echoes it.
peer_result() { # file
	LAST=$(grep '^RESULT' "$1" | tail -n 1)
	cat "$1" >>"$WORK/results.txt"
	echo "    ${LAST:-no RESULT}"
	[ -n "$LAST" ] && [ "$(field errors)" = 0 ]
}

# A BullMQ worker process (concurrency C), ready to take jobs.
bull_worker() { # concurrency [n]
	local f=$WORK/bull-worker.$RANDOM
	bg_start bullmq-worker "$f" node "$PEERS/bullmq.js" work "$REDIS_URL" bench "$@"
	# shellcheck disable=SC2317 # called through wait_for
	ready() { grep -q '^READY' "$1"; }
	wait_for 30 ready "$f" || { failed "BullMQ worker did not start (out/redis-logs/bullmq-worker.err)"; return 1; }
	WFILE=$f
}

# A Sidekiq process (concurrency C), ready; with N, it writes DONE once N
# jobs are done.
sk_worker() { # concurrency [n]
	local ready=$WORK/sk-ready.$RANDOM
	DONE=$WORK/sk-done.$RANDOM
	BENCH_READY=$ready BENCH_DONE=$DONE BENCH_DRAIN_N=${2:-0} REDIS_URL=$REDIS_URL \
		bg_start sidekiq "$LOGDIR/sidekiq.log" sidekiq -r "$PEERS/sidekiq_jobs.rb" -c "$1" -q bench
	# shellcheck disable=SC2317 # called through wait_for
	exists() { [ -s "$1" ]; }
	wait_for 60 exists "$ready" || { failed "Sidekiq did not start (out/redis-logs/sidekiq.log)"; return 1; }
}

# Round trips (M K W) or latency (1 1 1, pinned): ROW is rt or lat.
peer_rt() { # row conf n M K W
	local row=$1 c=$2 n=$3 M=$4 K=$5 W=$6 f=$WORK/peer-out ok=1
	PREFIX=bench$RANDOM
	case $c in
	j1 | j2)
		conf_up "r${c#j}" || { pmark "$row" "$c" FAIL; return; }
		[ "$row" = lat ] && ping_p50 "$c"
		stats_begin
		# shellcheck disable=SC2046 # word splitting is intended
		run_lg "peers-$row-$c" $(gloom a "$([ "$c" = j2 ] && echo b || echo a)") \
			-M "$M" -K "$K" -W "$W" -S 100 -N "$n" --timeout 300 || ok=0
		stats_end "$row" "$c" "$n"
		conf_down "r${c#j}" || ok=0
		;;
	bull)
		redis_start || { pmark "$row" "$c" FAIL; return; }
		[ "$row" = lat ] && ping_p50 "$c"
		if bull_worker "$W"; then
			stats_begin
			"${PIN[@]}" node "$PEERS/bullmq.js" rt "$REDIS_URL" bench "$M" "$K" "$n" 100 \
				>"$f" 2>>"$LOGDIR/bullmq.err" || ok=0
			stats_end "$row" "$c" "$n"
			bg_stop "$BGPID"
			peer_result "$f" || ok=0
		else ok=0; fi
		redis_stop
		;;
	sk)
		redis_start || { pmark "$row" "$c" FAIL; return; }
		[ "$row" = lat ] && ping_p50 "$c"
		if sk_worker "$W"; then
			stats_begin
			"${PIN[@]}" ruby -W0 "$PEERS/sidekiq_bench.rb" rt "$REDIS_URL" "$M" "$K" "$n" 100 \
				>"$f" 2>>"$LOGDIR/sidekiq-bench.err" || ok=0
			stats_end "$row" "$c" "$n"
			bg_stop "$BGPID"
			peer_result "$f" || ok=0
		else ok=0; fi
		redis_stop
		;;
	esac
	if [ $ok = 0 ]; then pmark "$row" "$c" FAIL; return; fi
	padd "${row}_rate" "$c" "$(field jobs_per_sec)"
	padd "${row}_p50" "$c" "$(field p50_us)"
}

# The bulk shape: N jobs added with no worker (timed until Redis holds
# them all), then drained by 8 workers (timed from their start).
peer_bulk() { # conf n
	local c=$1 n=$2 f=$WORK/peer-out ok=1 t0 t1 pid
	PREFIX=bench$RANDOM
	case $c in
	j1 | j2)
		conf_up "r${c#j}" || { pmark add "$c" FAIL; pmark drain "$c" FAIL; return; }
		stats_begin
		t0=$(now)
		# shellcheck disable=SC2046 # word splitting is intended
		"$LOADGEN" --label "peers-add-$c" $(gloom a a) --fill -M 1 -W 1 -S 100 -N "$n" \
			--timeout 300 --pid "${NODE_PID[a]}" >>"$WORK/results.txt" 2>>"$LOGDIR/loadgen.err" &
		pid=$!
		# shellcheck disable=SC2317 # called through wait_for
		all_in() { [ "$(jobfs_queued)" = "$n" ]; }
		if ! wait_for 120 all_in; then
			failed "peers: $n jobs added to $c, Redis holds $(jobfs_queued) after 120 s (see out/redis-logs/jobfs-a.log)"
			ok=0
		fi
		t1=$(now)
		[ $ok = 1 ] || kill "$pid" 2>/dev/null
		wait "$pid" || ok=0
		stats_end add "$c" "$n"
		padd add_rate "$c" "$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')"
		echo "    added $n in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') s (until all in Redis)"
		if [ $ok = 0 ]; then
			conf_down "r${c#j}"
			pmark add "$c"
			pmark drain "$c"
			return
		fi
		stats_begin
		# shellcheck disable=SC2046 # word splitting is intended
		run_lg "peers-drain-$c" $(gloom a "$([ "$c" = j2 ] && echo b || echo a)") --drain \
			-W 8 -N "$n" --timeout 180 ||
			{ failed "peers: $c's workers did not drain $n queued jobs within 180 s (see out/redis-logs/jobfs-*.log)"; ok=0; }
		stats_end drain "$c" "$n"
		[ $ok = 1 ] && padd drain_rate "$c" "$(field jobs_per_sec)"
		conf_down "r${c#j}" || ok=0
		;;
	bull)
		redis_start || { pmark add "$c" FAIL; pmark drain "$c" FAIL; return; }
		stats_begin
		node "$PEERS/bullmq.js" bulk "$REDIS_URL" bench "$n" 100 1000 >"$f" 2>>"$LOGDIR/bullmq.err" || ok=0
		stats_end add "$c" "$n"
		peer_result "$f" && padd add_rate "$c" "$(field jobs_per_sec)" || ok=0
		stats_begin
		if bull_worker 8 "$n"; then
			wait_for 600 eval "! kill -0 $BGPID 2>/dev/null" || ok=0
			stats_end drain "$c" "$n"
			bg_stop "$BGPID"
			peer_result "$WFILE" && padd drain_rate "$c" "$(field jobs_per_sec)" || ok=0
		else ok=0; fi
		redis_stop
		;;
	sk)
		redis_start || { pmark add "$c" FAIL; pmark drain "$c" FAIL; return; }
		stats_begin
		ruby -W0 "$PEERS/sidekiq_bench.rb" bulk "$REDIS_URL" "$n" 100 1000 >"$f" 2>>"$LOGDIR/sidekiq-bench.err" || ok=0
		stats_end add "$c" "$n"
		peer_result "$f" && padd add_rate "$c" "$(field jobs_per_sec)" || ok=0
		stats_begin
		if sk_worker 8 "$n"; then
			# shellcheck disable=SC2317 # called through wait_for
			exists() { [ -s "$1" ]; }
			if wait_for 600 exists "$DONE"; then
				stats_end drain "$c" "$n"
				padd drain_rate "$c" "$(awk -v n="$n" -v s="$(cat "$DONE")" 'BEGIN { printf "%.0f", n / s }')"
				echo "    drained $n in $(cat "$DONE") s"
			else
				failed "peers: Sidekiq did not finish $n jobs"
				ok=0
			fi
			bg_stop "$BGPID"
		else ok=0; fi
		redis_stop
		;;
	esac
	[ $ok = 1 ] || { pmark add "$c" FAIL; pmark drain "$c" FAIL; }
}

# Jobs queued in jobfs's Redis (of type echo, under PREFIX).
jobfs_queued() { rcli zcard "$PREFIX:q:echo" 2>/dev/null; }

pmark() { # row conf: every cell of that row's shape says FAIL
	local r
	for r in rate rcpu cmds reads; do PCELL[$1_$r|$2]=FAIL; done
	STATUS=1
}

peers_shape() {
	local rep c
	echo "== peers: jobfs, BullMQ and Sidekiq on fresh Redis servers"
	peers_setup
	for ((rep = 1; rep <= PREPS; rep++)); do
		for c in "${PCONFS[@]}"; do
			[ -z "${PSKIP[$c]:-}" ] || continue
			echo "  $c, round trips M=4 K=64 W=8 S=100 N=$N_PRT, repetition $rep"
			peer_rt rt "$c" "$N_PRT" 4 64 8
		done
		for c in "${PCONFS[@]}"; do
			[ -z "${PSKIP[$c]:-}" ] || continue
			echo "  $c, $N_PBULK jobs added with no worker, then drained by 8, repetition $rep"
			peer_bulk "$c" "$N_PBULK"
		done
		PIN=(taskset -c "$LAT_CPU")
		for c in "${PCONFS[@]}"; do
			[ -z "${PSKIP[$c]:-}" ] || continue
			echo "  $c, latency M=1 K=1 W=1 N=$N_PLAT pinned to CPU $LAT_CPU, repetition $rep"
			peer_rt lat "$c" "$N_PLAT" 1 1 1
		done
		PIN=()
	done
}

pvalue() { # row conf
	local c=$2
	if [ -n "${PSKIP[$c]:-}" ]; then echo skip; return; fi
	case " ${PCELL[$1|$c]:-} " in
	*FAIL*) echo FAIL ;;
	"  ") echo "-" ;;
	*)
		# shellcheck disable=SC2086 # one value per word
		median ${PCELL[$1|$c]}
		;;
	esac
}

prow() { # key title decimals
	local c line="| $2 |"
	for c in "${PCONFS[@]}"; do line+=" $(fmt "$(pvalue "$1" "$c")" "$3") |"; done
	echo "$line"
}

peers_table() {
	local c line="| latency p50 ÷ PING p50 (target ≤ 2.5) |" head="| shape |" rule="|---|"
	for c in "${PCONFS[@]}"; do
		case $c in
		j1) head+=" jobfs, 1 daemon |" ;;
		j2) head+=" jobfs, 2 daemons |" ;;
		bull) head+=" BullMQ $(bullmq_version) |" ;;
		sk) head+=" Sidekiq $(sidekiq_version) |" ;;
		esac
		rule+="---|"
	done
	echo "$head"
	echo "$rule"
	prow rt_rate "round trips M4 K64 W8 S100 N$N_PRT (jobs/s)" 0
	prow rt_rcpu "round trips: Redis CPU (µs/job)" 1
	prow rt_cmds "round trips: Redis commands per job" 2
	prow rt_reads "round trips: Redis socket reads per job" 2
	prow add_rate "$N_PBULK jobs added, no worker (jobs/s)" 0
	prow add_rcpu "added: Redis CPU (µs/job)" 1
	prow add_cmds "added: Redis commands per job" 2
	prow drain_rate "then drained by 8 workers (jobs/s)" 0
	prow drain_rcpu "drained: Redis CPU (µs/job)" 1
	prow drain_cmds "drained: Redis commands per job" 2
	prow lat_p50 "latency p50, M1 K1 W1 N$N_PLAT, one CPU (µs)" 0
	prow lat_rcpu "latency: Redis CPU (µs/job)" 1
	prow lat_cmds "latency: Redis commands per job" 2
	prow lat_reads "latency: Redis socket reads per job" 2
	prow ping_p50 "bare Redis PING p50, same Redis, one CPU (µs)" 0
	for c in "${PCONFS[@]}"; do line+=" $(ratio "$(pvalue lat_p50 "$c")" "$(pvalue ping_p50 "$c")") |"; done
	echo "$line"
}

bullmq_version() {
	node -p 'require(process.argv[1] + "/node_modules/bullmq/package.json").version' "$PEERS" 2>/dev/null
}
sidekiq_version() {
	ruby -e 'require "sidekiq"; print Sidekiq::VERSION' 2>/dev/null
}

# ---- profile: where jobfs's Redis time goes on the round-trip shape ----

# One daemon, the peers' round-trip shape (M=4 K=64 W=8 S=100), three runs
# of N_PROF jobs on fresh Redis servers: INFO commandstats and INFO cpu;
# SLOWLOG of every top-level command (slowlog-log-slower-than 0) for each
# FCALL's duration by function; MONITOR for the commands each function runs.
# redis_profile.py prints the tables (also out/redis-profile.md).
profile_run() { # what: stats | slowlog | monitor
	local mpid ok=0
	PREFIX=bench$RANDOM
	conf_up r1 || return 1
	case $1 in
	slowlog)
		rcli config set slowlog-max-len $((N_PROF * 40)) >/dev/null
		rcli config set slowlog-log-slower-than 0 >/dev/null
		rcli slowlog reset >/dev/null
		;;
	monitor)
		rcli monitor >"$WORK/profile-monitor.txt" 2>/dev/null &
		mpid=$!
		STARTED[$mpid]=redis-cli-monitor
		# shellcheck disable=SC2317 # called through wait_for
		monitoring() { [ -n "$(ss -Htn state established "( dport = :$REDIS_PORT )" | head -n 2)" ]; }
		wait_for 5 monitoring
		sleep 0.2 # its MONITOR is read before the load starts
		;;
	esac
	stats_begin
	# shellcheck disable=SC2046 # word splitting is intended
	run_lg "profile-$1" $(gloom a a) -M 4 -K 64 -W 8 -S 100 -N "$N_PROF" --timeout 300 || ok=1
	case $1 in
	stats)
		stats_end prof j1 "$N_PROF"
		PROF_CPU=$(pvalue prof_rcpu j1)
		cp "$LOGDIR/commandstats-j1-prof.txt" "$WORK/profile-commandstats.txt"
		;;
	slowlog)
		rcli config set slowlog-log-slower-than 10000 >/dev/null
		rcli --json slowlog get $((N_PROF * 40)) >"$WORK/profile-slowlog.json"
		;;
	monitor)
		kill "$mpid"
		wait "$mpid" 2>/dev/null
		unset "STARTED[$mpid]"
		;;
	esac
	conf_down r1 || ok=1
	return $ok
}

profile_shape() {
	local w
	echo "== profile: jobfs's Redis commands and functions, round trips M=4 K=64 W=8 S=100 N=$N_PROF, one daemon"
	if [ -n "$PENDING" ]; then note "profile: no --redis"; return; fi
	for w in stats slowlog monitor; do
		echo "  $w run"
		profile_run "$w" || { failed "profile: the $w run failed"; return; }
	done
	python3 "$HERE/redis_profile.py" "$N_PROF" "$PROF_CPU" "$WORK/profile-commandstats.txt" \
		"$WORK/profile-slowlog.json" "$WORK/profile-monitor.txt" >"$WORK/profile.md" ||
		{ failed "profile: redis_profile.py failed"; return; }
}

# ---- the table ----

median() { # values...
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2];
		else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

value() { # row conf
	local k="$1|$2"
	if [ -n "${BAD[$k]:-}" ]; then
		echo "${BAD[$k]}"
	elif [ -n "${CELL[$k]:-}" ]; then
		# shellcheck disable=SC2086 # one value per word
		median ${CELL[$k]}
	else
		echo "-"
	fi
}

isnum() { [[ $1 =~ ^-?[0-9.]+$ ]]; }

fmt() { # value [decimals]
	isnum "$1" && awk -v v="$1" -v d="${2:-0}" 'BEGIN { printf "%.*f", d, v }' || echo "$1"
}

ratio() { # a b
	if isnum "$1" && isnum "$2" && awk -v b="$2" 'BEGIN { exit !(b != 0) }'; then
		awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
	else
		echo "-"
	fi
}

check() { # VALUE OP LIMIT -> ok / MISS / -
	isnum "$1" || { echo "-"; return; }
	awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
		ok = op == ">=" ? v >= l : v <= l; print ok ? "ok" : "MISS" }'
}

both() { # results... -> ok only if all ok
	local r out=ok
	for r in "$@"; do
		[ "$r" = "-" ] && out="-" && break
		[ "$r" = MISS ] && out=MISS
	done
	echo "$out"
}

row() { # key title decimals target-text
	local key=$1 title=$2 d=$3 c line
	line="| $title |"
	for c in "${CONFS[@]}"; do
		line+=" $(fmt "$(value "$key" "$c")" "$d") |"
	done
	echo "$line $4 |"
}

table() {
	local e r1 r2 r2s
	echo "| workload | embedded | redis, 1 daemon | redis, 2 daemons: masters A, workers B | redis, 2 daemons: split | target |"
	echo "|---|---|---|---|---|---|"
	if wants throughput; then
		r2=$(value tp_rate r2)
		r2s=$(value tp_rate r2s)
		row tp_rate "throughput M4 K64 W8 S100 N$N_TP (jobs/s)" 0 \
			"≥20000 with 2 daemons: $(both "$(check "$r2" ">=" 20000)" "$(check "$r2s" ">=" 20000)")"
		row tp_rcpu "throughput: Redis CPU (µs/job)" 2 ""
		row tp_rpct "throughput: Redis CPU (% of one CPU)" 1 ""
		row tp_jcpu "throughput: jobfs CPU, all daemons (µs/job)" 2 ""
	fi
	if wants latency; then
		e=$(value lat_p50 emb)
		r1=$(value lat_p50 r1)
		r2=$(value lat_p50 r2)
		row lat_rate "latency M1 K1 W1 N$N_LAT, one CPU (jobs/s)" 0 ""
		row lat_p50 "latency p50 (µs)" 1 \
			"≤4× embedded ($(ratio "$r1" "$e"), $(ratio "$r2" "$e")): $(both "$(check "$(ratio "$r1" "$e")" "<=" 4)" "$(check "$(ratio "$r2" "$e")" "<=" 4)")"
		row lat_p99 "latency p99 (µs)" 1 ""
		row lat_rcpu "latency: Redis CPU (µs/job)" 2 ""
	fi
	if wants memory; then
		row mem_default "Redis memory per queued 100-byte job, N$N_MEM (bytes; hash ${ENC[default]:-?})" 0 ""
		row mem_lp1024 "the same, hash-max-listpack-value 1024 (bytes; hash ${ENC[lp1024]:-?})" 0 \
			"of default: $(ratio "$(value mem_lp1024 r1)" "$(value mem_default r1)")"
	fi
	if wants failover; then
		row failover "kill -9 → its job running on another daemon, lease $LEASE ms (s)" 3 \
			"≤$(awk -v l="$LEASE" 'BEGIN { print l / 1000 + 1 }') s: $(check "$(value failover r2)" "<=" "$(awk -v l="$LEASE" 'BEGIN { print l / 1000 + 1 }')")"
	fi
}

jobfs_version() {
	local head
	head=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")
	if [ -x "$JOBFS_SRC" ]; then
		echo "at $head, built $(date -u -r "$JOBFS_SRC" '+%Y-%m-%d %H:%M UTC')"
	else
		echo "not built"
	fi
}

# ---- main ----

main() {
	ensure_packages || { echo "package installation failed" >&2; exit 1; }
	make -s -C "$HERE" all || exit 1
	mkdir -p "$LOGDIR"
	: >"$WORK/results.txt"
	: >"$LOGDIR/loadgen.err"
	cp "$OUT/loadgen" "$LOADGEN" || exit 1
	if [ ! -x "$JOBFS_SRC" ]; then
		echo "redis.sh: $JOBFS_SRC not built" >&2
		exit 1
	fi
	cp "$JOBFS_SRC" "$JOBFS"
	cp "$(dirname "$JOBFS_SRC")/jobctl" "$JOBCTL" 2>/dev/null
	# Cluster mode not in this daemon yet: its cells are "pending".
	PENDING=
	# (grep without -q: under pipefail, jobfs's SIGPIPE after an early exit
	# of grep -q would read as "no --redis")
	"$JOBFS" --help 2>&1 | grep -E -- '--redis([ =]|$)' >/dev/null || PENDING=yes
	[ -z "$PENDING" ] || note "$JOBFS_SRC has no --redis: the Redis cells are pending"
	# Cells that do not apply: the split needs two masters, the embedded
	# daemon has no Redis, memory is of one daemon, failover needs two.
	for r in lat_rate lat_p50 lat_p99 lat_rcpu lat_rpct lat_jcpu; do mark "$r" r2s -; done
	for r in tp_rcpu tp_rpct lat_rcpu lat_rpct; do mark "$r" emb -; done
	for c in emb r2 r2s; do mark mem_default "$c" -; mark mem_lp1024 "$c" -; done
	for c in emb r1 r2s; do mark failover "$c" -; done

	N_TP=$(scaled 200000 1000)
	N_LAT=$(scaled 20000 500)
	N_MEM=$(scaled 100000 1000)
	N_PRT=$(scaled 20000 1000)
	N_PBULK=$(scaled 100000 1000)
	N_PLAT=$(scaled 5000 500)
	N_PROF=$(scaled 10000 1000)
	START=$(date +%s)
	LOAD=$(cut -d' ' -f1 /proc/loadavg)

	# Unpinned, as run.sh's throughput shape.
	wants throughput && shape tp "throughput: M=4 K=64 W=8 S=100 N=$N_TP" "$N_TP" \
		"-M 4 -K 64 -W 8 -S 100 --timeout 300" emb r1 r2 r2s

	# Pinned to one CPU, as run.sh's latency shape: Redis and the daemons too.
	PIN=(taskset -c "$LAT_CPU")
	wants latency && shape lat "latency: M=1 K=1 W=1 N=$N_LAT (pinned to CPU $LAT_CPU)" "$N_LAT" \
		"-M 1 -K 1 -W 1 -S 100 --timeout 300" emb r1 r2
	PIN=()

	wants memory && memory_shape
	wants failover && failover_shape
	wants peers && peers_shape
	wants profile && profile_shape

	{
		echo "jobfs cluster-mode benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs," \
			"Linux $(uname -r), load average $LOAD at start, BENCH_SCALE=$SCALE," \
			"medians of $REPS, $(($(date +%s) - START)) s; jobfs $(jobfs_version);" \
			"$(redis-server --version | cut -d' ' -f1-3), ${REDIS_CONF[*]}"
		if [[ $SHAPES =~ throughput|latency|memory|failover ]]; then
			echo
			table
		fi
		if wants peers; then
			echo
			echo "Peers, each on a fresh Redis (medians of $PREPS):"
			echo
			peers_table
		fi
		if [ -s "$WORK/profile.md" ]; then
			echo
			echo "Profile of jobfs's Redis cost, round trips M=4 K=64 W=8 S=100 N=$N_PROF, one daemon:"
			echo
			cat "$WORK/profile.md"
		fi
		if [ ${#NOTES[@]} -gt 0 ]; then
			echo
			printf -- '- %s\n' "${NOTES[@]}" | awk '!seen[$0]++' # once each
		fi
	} | tee "$WORK/table.md"
	return "$STATUS"
}

# Sourced (to try a piece: `. tests/bench/redis.sh; redis_start; ...`), it
# only defines the functions; run, it runs the shapes.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	main
	exit $?
fi
