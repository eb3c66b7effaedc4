#!/usr/bin/env bash
# Benchmark jobfs against a frame relay (the ceiling for a broker on this
# box), gearmand and beanstalkd, and print one table. See README.md.
#
#   make bench                     # from the top: builds jobfs, then this
#   BENCH_SCALE=0.1 make bench     # shrink every N for a quick run
#   BENCH_REPS=1 tests/bench/run.sh
#
# Environment: BENCH_SCALE (default 1), BENCH_REPS (3), JOBFS (path of the
# daemon, default build/jobfs), JOBFS_OPTS (extra daemon options),
# BENCH_LAT_CPU (CPU the latency shape is pinned to, default 0),
# BENCH_SHAPES (the shapes to run, default all: "throughput latency idle
# queue tree durable restart bodies").
#
# Exit status is non-zero only if a server crashed or a run failed
# verification; a missing build/jobfs is reported as "pending".
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$HERE/out
JOBFS_SRC=${JOBFS:-$ROOT/build/jobfs}
# Everything a run uses or writes lives in WORK until the end: the tree is
# shared with people rebuilding and running `make clean`, so the binaries
# are snapshotted here and the logs are copied to out/ on exit.
WORK=$(mktemp -d /tmp/jobfs-bench.XXXXXX)
LOGDIR=$WORK/logs
LOADGEN=$WORK/loadgen
RELAY=$WORK/relay
JOBFS=$WORK/jobfs
JOBCTL=$WORK/jobctl
read -r -a JOBFS_EXTRA <<<"${JOBFS_OPTS:-}"
SCALE=${BENCH_SCALE:-1}
REPS=${BENCH_REPS:-3}
LAT_CPU=${BENCH_LAT_CPU:-0}
SHAPES=" ${BENCH_SHAPES:-throughput latency idle queue tree durable restart bodies} "
SYSTEMS=(jobfs relay gearmand beanstalkd)
PACKAGES=(gearman-job-server libgearman-dev beanstalkd libev-dev libjansson-dev fuse3)

SERVER_PID=
MNT=
PIN=()          # command prefix for servers and loadgen (taskset when pinned)
STATUS=0        # becomes 1 on a crash or failed verification
NOTES=()
declare -A CELL # "row|system" -> measured values, one per repetition
declare -A BAD  # "row|system" -> FAIL / pending / skip

note() { NOTES+=("$*"); echo "  note: $*" >&2; }
failed() { STATUS=1; note "$*"; }

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
	# Unmount first: a mount whose daemon is gone answers ENOTCONN until
	# it is lazily detached.
	if [ -n "$MNT" ]; then
		fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -u -z "$MNT" 2>/dev/null
		rmdir "$MNT" 2>/dev/null
	fi
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID" 2>/dev/null
		sleep 0.5
		kill -KILL "$SERVER_PID" 2>/dev/null
	fi
	mkdir -p "$OUT"
	cp -r "$LOGDIR" "$WORK/results.txt" "$WORK/table.md" "$OUT/" 2>/dev/null
	rm -rf "$WORK"
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

# A loopback port nobody uses, below the ephemeral range so that our own
# client sockets cannot collide with it.
free_port() { # [port to avoid]
	local p
	while :; do
		p=$((20000 + RANDOM % 12000))
		[ "$p" = "${1:-}" ] && continue
		[ -z "$(ss -Htan "( sport = :$p or dport = :$p )")" ] && break
	done
	echo "$p"
}

wait_listening() { # port
	local i
	for ((i = 0; i < 200; i++)); do
		[ -n "$(ss -Htln "sport = :$1")" ] && return 0
		kill -0 "$SERVER_PID" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# A system is one of SYSTEMS, or a variant of one with its options
# (jobfs-sync, beanstalkd-f0, ...: see start_server); a variant's cells go
# in its system's column (column).
available() { # system
	case $1 in
	jobfs*) [ -x "$JOBFS" ] ;;
	relay) [ -x "$RELAY" ] ;;
	gearmand) command -v gearmand >/dev/null ;;
	beanstalkd*) command -v beanstalkd >/dev/null ;;
	esac
}

column() { echo "${1%%-*}"; }

# wants SHAPE: the shape is in BENCH_SHAPES.
wants() { [[ $SHAPES == *" $1 "* ]]; }

# A fresh data directory for a durable server, on the disk $WORK is on
# (not a tmpfs, or a sync would cost nothing).
fresh_data() { # name
	rm -rf "$WORK/data-$1"
	mkdir -p "$WORK/data-$1"
	echo "$WORK/data-$1"
}

# ---- servers ----

# start_server SYSTEM [jobfs options]: sets SERVER_PID, MPORT, WPORT.
# Variants: jobfs-sync (--data DIR --sync always), jobfs-i50 (--sync
# interval:50), beanstalkd-f0 (-b DIR -f0: fsync every write), beanstalkd-b
# (-b DIR: its default fsync every 50 ms); each starts on an empty DIR.
start_server() {
	local sys=$1 log=$LOGDIR/$1.log
	shift
	MPORT=$(free_port)
	WPORT=$(free_port "$MPORT")
	case $sys in
	jobfs-sync) set -- --data "$(fresh_data "$sys")" --sync always "$@" ;;
	jobfs-i50) set -- --data "$(fresh_data "$sys")" --sync interval:50 "$@" ;;
	beanstalkd-f0) set -- -b "$(fresh_data "$sys")" -f0 ;;
	beanstalkd-b) set -- -b "$(fresh_data "$sys")" ;;
	esac
	case $sys in
	jobfs*)
		"${PIN[@]}" "$JOBFS" -f --listen 127.0.0.1 --master-port "$MPORT" \
			--worker-port "$WPORT" "${JOBFS_EXTRA[@]}" "$@" >>"$log" 2>&1 &
		;;
	relay)
		"${PIN[@]}" "$RELAY" --listen 127.0.0.1 --master-port "$MPORT" \
			--worker-port "$WPORT" >>"$log" 2>&1 &
		;;
	gearmand)
		WPORT=$MPORT
		"${PIN[@]}" gearmand --listen=127.0.0.1 --port="$MPORT" \
			--log-file=none --verbose=ERROR >>"$log" 2>&1 &
		;;
	beanstalkd*)
		WPORT=$MPORT
		"${PIN[@]}" beanstalkd -l 127.0.0.1 -p "$MPORT" "$@" >>"$log" 2>&1 &
		;;
	esac
	SERVER_PID=$!
	if ! wait_listening "$MPORT" || ! wait_listening "$WPORT"; then
		failed "$sys did not start listening (see out/logs/$sys.log)"
		stop_server "$sys"
		return 1
	fi
}

# Stop the server; returns 1 (and records a failure) if it had died on its
# own or was killed by a signal other than ours.
stop_server() { # system
	local sys=$1 rc i
	[ -n "$SERVER_PID" ] || return 0
	if ! kill -0 "$SERVER_PID" 2>/dev/null; then
		wait "$SERVER_PID"
		rc=$?
		SERVER_PID=
		failed "$sys exited during the run (status $rc; see out/logs/$sys.log)"
		return 1
	fi
	kill -TERM "$SERVER_PID"
	for ((i = 0; i < 50; i++)); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$SERVER_PID" 2>/dev/null; then
		note "$sys did not exit within 5 s of SIGTERM; killed"
		kill -KILL "$SERVER_PID"
	fi
	wait "$SERVER_PID"
	rc=$?
	SERVER_PID=
	# 143 = died of the SIGTERM itself (no handler), 137 = our SIGKILL.
	if [ "$rc" -gt 128 ] && [ "$rc" != 143 ] && [ "$rc" != 137 ]; then
		failed "$sys crashed on shutdown (status $rc)"
		return 1
	fi
	if [ "${sys%%-*}" = jobfs ] && [ "$rc" != 0 ]; then
		note "jobfs exit status $rc after SIGTERM (spec: exits cleanly)"
	fi
	return 0
}

# ---- loadgen ----

sys_args() { # system
	case $1 in
	jobfs* | relay) echo "--system gloom --master-port $MPORT --worker-port $WPORT" ;;
	gearmand) echo "--system gearman --master-port $MPORT" ;;
	beanstalkd*) echo "--system beanstalk --master-port $MPORT" ;;
	esac
}

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
	[ "$rc" = 0 ] || echo "    (loadgen exit $rc; stderr in out/logs/loadgen.err)"
	return "$rc"
}

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$LAST"; }
add() { CELL[$1|$2]="${CELL[$1|$2]:-} $3"; } # row system value
mark() { BAD[$1|$2]=$3; }                     # row system FAIL|pending|skip

# One repetition of a loadgen shape on a fresh server: record the fields
# given as ROW=FIELD pairs (in the system's column).
measure() { # system label "loadgen args" ROW=FIELD...
	local sys=$1 label=$2 args=$3 pair ok=1 col
	col=$(column "$1")
	shift 3
	start_server "$sys" || ok=0
	if [ $ok = 1 ]; then
		# shellcheck disable=SC2046,SC2086 # word splitting is intended
		run_lg "$label" $(sys_args "$sys") $args --pid "$SERVER_PID" || ok=0
		stop_server "$sys" || ok=0
	fi
	for pair in "$@"; do
		if [ $ok = 1 ]; then
			add "${pair%%=*}" "$col" "$(field "${pair#*=}")"
		else
			mark "${pair%%=*}" "$col" FAIL
		fi
	done
	[ $ok = 1 ] || STATUS=1
}

# Repetitions are interleaved across systems (a b c, a b c, ...) so that
# background noise on a shared machine lands on every column alike.
shape() { # title systems-list "loadgen args" ROW=FIELD...
	local title=$1 systems=$2 args=$3 sys rep pair
	shift 3
	echo "== $title"
	for sys in $systems; do
		available "$sys" && continue
		for pair in "$@"; do mark "${pair%%=*}" "$sys" pending; done
	done
	for ((rep = 1; rep <= REPS; rep++)); do
		for sys in $systems; do
			available "$sys" && measure "$sys" "$sys" "$args" "$@"
		done
	done
}

# ---- the jobfs tree ----

tree_rep() {
	local log=$LOGDIR/jobfs.log q i t0 t1 before after
	MNT=$(mktemp -d /tmp/jobfs-bench-mnt.XXXXXX)
	start_server jobfs "$MNT" || return 1
	for ((i = 0; i < 100; i++)); do
		[ -e "$MNT/README" ] && break
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	if [ ! -e "$MNT/README" ]; then
		note "tree shapes skipped: $MNT/README never appeared (FUSE mount failed?)"
		stop_server jobfs
		rmdir "$MNT" 2>/dev/null
		MNT=
		return 2
	fi
	q=$MNT/types/echo/queue
	[ -d "$MNT/types/echo" ] || mkdir "$MNT/types/echo" 2>>"$log"
	before=$(awk '$1 == "queued" { print $2 }' "$MNT/types/echo/stats" 2>/dev/null)

	t0=$(date +%s.%N)
	for ((i = 0; i < N_BASH; i++)); do
		echo '{"n":1}' >"$q" || break
	done
	t1=$(date +%s.%N)
	if [ "$i" = "$N_BASH" ]; then
		add tree_bash jobfs "$(awk -v n="$N_BASH" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')"
		echo "    bash echo loop: $N_BASH jobs in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
	else
		mark tree_bash jobfs FAIL
		failed "bash echo loop: write $i to $q failed"
	fi

	if run_lg tree-handle --tree-write "$q" -N "$N_HANDLE"; then
		add tree_handle jobfs "$(field jobs_per_sec)"
	else
		mark tree_handle jobfs FAIL
		failed "one-handle writer failed on $q"
	fi

	# Cross-check: every line written is one queued job (no worker runs).
	after=$(awk '$1 == "queued" { print $2 }' "$MNT/types/echo/stats" 2>/dev/null)
	if [ -n "$before" ] && [ -n "$after" ] && [ $((after - before)) != $((N_BASH + N_HANDLE)) ]; then
		failed "tree: wrote $((N_BASH + N_HANDLE)) jobs but types/echo/stats queued went $before -> $after"
		mark tree_handle jobfs FAIL
	fi

	fusermount3 -u "$MNT" 2>>"$log" || note "fusermount3 -u $MNT failed"
	# jobfs exits by itself once its tree is unmounted; give it a moment.
	for ((i = 0; i < 50; i++)); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$SERVER_PID" 2>/dev/null; then
		stop_server jobfs || mark tree_handle jobfs FAIL
	else
		wait "$SERVER_PID"
		i=$?
		SERVER_PID=
		if [ "$i" != 0 ]; then
			failed "jobfs exited with status $i after its tree was unmounted"
			mark tree_handle jobfs FAIL
		fi
	fi
	fusermount3 -u -z "$MNT" 2>/dev/null # in case the first one failed
	rmdir "$MNT" 2>/dev/null
	MNT=
}

tree_shapes() {
	local rep rc
	echo "== tree submits (jobfs, FUSE): bash echo loop N=$N_BASH, one handle N=$N_HANDLE"
	if ! available jobfs; then
		mark tree_bash jobfs pending
		mark tree_handle jobfs pending
		return
	fi
	for ((rep = 1; rep <= REPS; rep++)); do
		tree_rep
		rc=$?
		if [ $rc = 2 ]; then
			mark tree_bash jobfs skip
			mark tree_handle jobfs skip
			return
		elif [ $rc != 0 ]; then
			mark tree_bash jobfs FAIL
			mark tree_handle jobfs FAIL
		fi
	done
}

# ---- durability ----

# The throughput shape against journals that sync: jobfs in memory, with
# --data --sync always and --sync interval:50, and beanstalkd with -b -f0
# and -b (50 ms), interleaved per repetition.  beanstalkd -f0 syncs every
# job, so it runs fewer jobs (a rate either way).
durable_shape() {
	local rep sys
	local args="-M 4 -K 64 -W 8 -S 100 --timeout 300"
	echo "== durable throughput: M=4 K=64 W=8 S=100 N=$N_DUR (beanstalkd -f0: N=$N_DUR_F0); data in $WORK"
	for sys in jobfs beanstalkd; do
		available "$sys" && continue
		mark dur_mem "$sys" pending
		mark dur_always "$sys" pending
		mark dur_50 "$sys" pending
	done
	for ((rep = 1; rep <= REPS; rep++)); do
		available jobfs && measure jobfs jobfs-memory "$args -N $N_DUR" dur_mem=jobs_per_sec
		available jobfs && measure jobfs-sync jobfs-sync "$args -N $N_DUR" dur_always=jobs_per_sec
		available jobfs && measure jobfs-i50 jobfs-i50 "$args -N $N_DUR" dur_50=jobs_per_sec
		available beanstalkd && measure beanstalkd-f0 beanstalkd-f0 "$args -N $N_DUR_F0" dur_always=jobs_per_sec
		available beanstalkd && measure beanstalkd-b beanstalkd-b "$args -N $N_DUR" dur_50=jobs_per_sec
	done
	rm -rf "$WORK"/data-*
}

# Seconds from starting jobfs on a data directory holding N_RESTART queued
# 100-byte jobs until it answers "stats" with all of them queued, and the
# journal's bytes per job.  The jobs are submitted detached by loadgen
# --fill (journal written with --sync never: the same bytes, sooner), then
# jobfs is stopped with SIGTERM and started again on the same directory.
restart_rep() {
	local dir q t0 t1 bytes i log=$LOGDIR/jobfs.log
	local opts=(--max-jobs $((N_RESTART * 2)) --max-memory $((N_RESTART * 1024)))
	dir=$(fresh_data restart)
	start_server jobfs --data "$dir" --sync never "${opts[@]}" || return 1
	if ! run_lg restart-fill --system gloom --master-port "$MPORT" --worker-port "$WPORT" \
		--fill -M 1 -W 1 -S 100 -N "$N_RESTART" --timeout 600 --pid "$SERVER_PID"; then
		stop_server jobfs
		return 1
	fi
	q=$("$JOBCTL" -m "$MPORT" stats 2>>"$log" | awk '$1 == "queued" { print $2 }')
	stop_server jobfs || return 1
	if [ "$q" != "$N_RESTART" ]; then
		failed "restart: $N_RESTART jobs submitted but stats says ${q:-nothing} queued"
		return 1
	fi
	bytes=$(cat "$dir"/*.log | wc -c)
	add restart_bytes jobfs "$(awk -v b="$bytes" -v n="$N_RESTART" 'BEGIN { printf "%.1f", b / n }')"

	MPORT=$(free_port)
	WPORT=$(free_port "$MPORT")
	t0=$(date +%s.%N)
	"$JOBFS" -f --listen 127.0.0.1 --master-port "$MPORT" --worker-port "$WPORT" \
		"${JOBFS_EXTRA[@]}" --data "$dir" "${opts[@]}" >>"$log" 2>&1 &
	SERVER_PID=$!
	q=
	for ((i = 0; i < 12000; i++)); do  # 10 ms apart: at most 2 minutes
		q=$("$JOBCTL" -m "$MPORT" stats 2>/dev/null | awk '$1 == "queued" { print $2 }')
		[ -n "$q" ] && break
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.01
	done
	t1=$(date +%s.%N)
	stop_server jobfs || return 1
	if [ "$q" != "$N_RESTART" ]; then
		failed "restart: ${q:-no} jobs queued after the restart, not $N_RESTART"
		return 1
	fi
	add restart_secs jobfs "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
	echo "    restart: $N_RESTART jobs served after $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s; journal $bytes bytes"
	rm -rf "$dir"
}

restart_shape() {
	local rep
	echo "== restart: jobfs --data holding $N_RESTART queued 100-byte jobs"
	if ! available jobfs; then
		mark restart_secs jobfs pending
		mark restart_bytes jobfs pending
		return
	fi
	for ((rep = 1; rep <= REPS; rep++)); do
		if ! restart_rep; then
			mark restart_secs jobfs FAIL
			mark restart_bytes jobfs FAIL
			STATUS=1
		fi
	done
}

# ---- the table ----

median() { # values...
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2];
		else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Median of a cell, or its FAIL/pending/skip/- mark.
value() { # row system
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

# check VALUE OP LIMIT -> ok / MISS / - (not measurable)
check() {
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

row() { # key title decimals target-text target-verdict
	local key=$1 title=$2 d=$3 j r g b
	j=$(value "$key" jobfs)
	r=$(value "$key" relay)
	g=$(value "$key" gearmand)
	b=$(value "$key" beanstalkd)
	printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$title" \
		"$(fmt "$j" "$d")" "$(fmt "$r" "$d")" "$(fmt "$g" "$d")" "$(fmt "$b" "$d")" \
		"$(ratio "$j" "$r")" "$(ratio "$j" "$g")" "$(ratio "$j" "$b")" "$4 $5"
}

# The RSS row shows empty / queued / drained MiB.
rss_cell() { # system
	local e q d
	e=$(value rss_before "$1")
	q=$(value rss_queued "$1")
	d=$(value rss_drained "$1")
	isnum "$q" || { echo "$q"; return; }
	awk -v e="$e" -v q="$q" -v d="$d" 'BEGIN { printf "%.1f / %.1f / %.1f", e / 1024, q / 1024, d / 1024 }'
}

table() {
	local jt rt gt jl rl jw rw
	jt=$(value tp jobfs)
	rt=$(value tp relay)
	gt=$(value tp gearmand)
	jl=$(value lat_p50 jobfs)
	rl=$(value lat_p50 relay)
	jw=$(value idle jobfs)
	rw=$(value idle relay)
	echo "| workload | jobfs | relay | gearmand | beanstalkd | jobfs/relay | jobfs/gearmand | jobfs/beanstalkd | jobfs target |"
	echo "|---|---|---|---|---|---|---|---|---|"
	wants throughput && row tp "throughput M4 K64 W8 S100 N$N_TP (jobs/s)" 0 "≥0.75 relay, ≥3 gearmand:" \
		"$(both "$(check "$(ratio "$jt" "$rt")" ">=" 0.75)" "$(check "$(ratio "$jt" "$gt")" ">=" 3)")"
	if wants latency; then
	row lat_rate "latency M1 K1 W1 N$N_LAT (jobs/s)" 0 "" ""
	row lat_p50 "latency p50 (µs)" 1 "≤1.2 relay:" "$(check "$(ratio "$jl" "$rl")" "<=" 1.2)"
	row lat_p99 "latency p99 (µs)" 1 "≤2 relay:" \
		"$(check "$(ratio "$(value lat_p99 jobfs)" "$(value lat_p99 relay)")" "<=" 2)"
	fi
	wants idle && row idle "idle workers M1 K64 W512 N$N_IDLE (jobs/s)" 0 "≥0.7 relay:" \
		"$(check "$(ratio "$jw" "$rw")" ">=" 0.7)"
	if wants queue; then
	row mem "queue $N_MEM jobs, no worker (RSS bytes/job)" 0 "≤300:" \
		"$(check "$(value mem jobfs)" "<=" 300)"
	row drain "queue drain, W8 (jobs/s)" 0 "" ""
	printf '| %s | %s | %s | %s | %s | - | - | - | |\n' \
		"queue RSS MiB empty / queued / drained" \
		"$(rss_cell jobfs)" "$(rss_cell relay)" "$(rss_cell gearmand)" "$(rss_cell beanstalkd)"
	fi
	if wants tree; then
	row tree_bash "tree: bash echo loop N$N_BASH (jobs/s)" 0 "≥2000:" \
		"$(check "$(value tree_bash jobfs)" ">=" 2000)"
	row tree_handle "tree: one handle N$N_HANDLE (jobs/s)" 0 "≥100000:" \
		"$(check "$(value tree_handle jobfs)" ">=" 100000)"
	fi
	local jm jd ji bf
	jm=$(value dur_mem jobfs)
	jd=$(value dur_always jobfs)
	ji=$(value dur_50 jobfs)
	bf=$(value dur_always beanstalkd)
	if wants durable; then
	row dur_mem "durable shape N$N_DUR: jobfs in memory (jobs/s)" 0 "" ""
	row dur_always "durable: jobfs --sync always / beanstalkd -b -f0 (jobs/s)" 0 \
		"≥0.5 in memory ($(ratio "$jd" "$jm")), ≥10 beanstalkd -f0:" \
		"$(both "$(check "$(ratio "$jd" "$jm")" ">=" 0.5)" "$(check "$(ratio "$jd" "$bf")" ">=" 10)")"
	row dur_50 "durable: jobfs --sync interval:50 / beanstalkd -b, 50 ms (jobs/s)" 0 \
		"in memory: $(ratio "$ji" "$jm")" ""
	fi
	if wants restart; then
	row restart_secs "restart, $N_RESTART queued 100-byte jobs: start to serving (s)" 2 "≤3 s:" \
		"$(check "$(value restart_secs jobfs)" "<=" 3)"
	row restart_bytes "restart: journal bytes per queued job" 1 "" ""
	fi
	wants bodies || return 0
	row body10k "bodies M4 K64 W8 S10240 N$N_BODY10K (jobs/s)" 0 "≥0.9 relay:" \
		"$(check "$(ratio "$(value body10k jobfs)" "$(value body10k relay)")" ">=" 0.9)"
	row body1m "bodies M4 K16 W8 S1048576 N$N_BODY1M (jobs/s)" 0 "≥0.9 relay:" \
		"$(check "$(ratio "$(value body1m jobfs)" "$(value body1m relay)")" ">=" 0.9)"
}

# Which daemon was measured: the commit the tree is at and when the binary
# was built (it may hold uncommitted work).
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

ensure_packages || { echo "package installation failed" >&2; exit 1; }
make -s -C "$HERE" all || exit 1
mkdir -p "$LOGDIR"
cp "$OUT/loadgen" "$OUT/relay" "$WORK/" || exit 1
[ -x "$JOBFS_SRC" ] && cp "$JOBFS_SRC" "$JOBFS"
[ -x "$(dirname "$JOBFS_SRC")/jobctl" ] && cp "$(dirname "$JOBFS_SRC")/jobctl" "$JOBCTL"
rm -rf "$OUT/logs"
: >"$WORK/results.txt"
: >"$LOGDIR/loadgen.err"

N_TP=$(scaled 200000 1000)
N_LAT=$(scaled 20000 500)
N_IDLE=$(scaled 100000 1000)
N_MEM=$(scaled 100000 1000)
N_BASH=$(scaled 5000 100)
N_HANDLE=$(scaled 200000 1000)
N_DUR=$(scaled 100000 1000)
N_DUR_F0=$(scaled 10000 200)
N_RESTART=$(scaled 1000000 10000)
N_BODY10K=$(scaled 50000 500)
N_BODY1M=$(scaled 2000 50)
available jobfs || note "$JOBFS_SRC not built: jobfs columns are pending"
START=$(date +%s)
LOAD=$(cut -d' ' -f1 /proc/loadavg)

# Unpinned: both CPUs shared by the server and loadgen.
wants throughput && shape "throughput: M=4 K=64 W=8 S=100 N=$N_TP" "${SYSTEMS[*]}" \
	"-M 4 -K 64 -W 8 -S 100 -N $N_TP --timeout 120" tp=jobs_per_sec

# Pinned to one CPU: on a small VM a cross-CPU wakeup costs tens of µs and
# the scheduler flips between placements from run to run, which would
# drown the broker's own path length (see README).
PIN=(taskset -c "$LAT_CPU")
wants latency && shape "latency: M=1 K=1 W=1 N=$N_LAT (pinned to CPU $LAT_CPU)" "${SYSTEMS[*]}" \
	"-M 1 -K 1 -W 1 -S 100 -N $N_LAT --timeout 120" \
	lat_rate=jobs_per_sec lat_p50=p50_us lat_p99=p99_us
PIN=()

# gearman needs a process per worker: 512 of them is not this shape.
wants idle && shape "idle workers: M=1 K=64 W=512 N=$N_IDLE" "jobfs relay beanstalkd" \
	"-M 1 -K 64 -W 512 -S 100 -N $N_IDLE --timeout 120" idle=jobs_per_sec
mark idle gearmand skip

wants queue && shape "queue memory: $N_MEM jobs of 100 bytes with no worker, then W=8 drain" \
	"${SYSTEMS[*]}" "--hold -M 1 -W 8 -S 100 -N $N_MEM --timeout 180" \
	mem=bytes_per_job drain=jobs_per_sec rss_before=rss_before_kb \
	rss_queued=rss_queued_kb rss_drained=rss_drained_kb

wants tree && tree_shapes
for s in relay gearmand beanstalkd; do
	mark tree_bash "$s" -
	mark tree_handle "$s" -
done

wants durable && durable_shape
for s in relay gearmand; do
	mark dur_mem "$s" -
	mark dur_always "$s" -
	mark dur_50 "$s" -
done
mark dur_mem beanstalkd -
wants restart && restart_shape
for s in relay gearmand beanstalkd; do
	mark restart_secs "$s" -
	mark restart_bytes "$s" -
done

# Large bodies against the relay (beanstalkd's jobs are at most 64 KiB by
# default, and gearmand's column is of the small-job shapes).
wants bodies && shape "bodies: M=4 K=64 W=8 S=10240 N=$N_BODY10K" "jobfs relay" \
	"-M 4 -K 64 -W 8 -S 10240 -N $N_BODY10K --timeout 300" body10k=jobs_per_sec
wants bodies && shape "bodies: M=4 K=16 W=8 S=1048576 N=$N_BODY1M" "jobfs relay" \
	"-M 4 -K 16 -W 8 -S 1048576 -N $N_BODY1M --timeout 300" body1m=jobs_per_sec
for s in gearmand beanstalkd; do
	mark body10k "$s" -
	mark body1m "$s" -
done

{
	echo "jobfs benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, Linux $(uname -r)," \
		"load average $LOAD at start, BENCH_SCALE=$SCALE, medians of $REPS," \
		"$(($(date +%s) - START)) s;" \
		"jobfs $(jobfs_version)"
	echo
	table
	if [ ${#NOTES[@]} -gt 0 ]; then
		echo
		printf -- '- %s\n' "${NOTES[@]}" | awk '!seen[$0]++' # once each
	fi
} | tee "$WORK/table.md"
exit "$STATUS"
