#!/usr/bin/env bash
# rejoin.sh — how long after a restarted daemon serves again every
# jobctl work is joined again.
#
#   tests/bench/rejoin.sh [BUILD_DIR] [WORKERS] [ROUNDS] [OUTAGE_SECONDS]
#
# Starts a daemon with --data and WORKERS workers (default 8), then ROUNDS
# times (default 10): kill -9, wait OUTAGE_SECONDS (default 0), start the
# daemon again on the same ports.  Each round prints the milliseconds from
# the daemon's "replayed" log line (it serves from then on) to its last
# "joined" line, both stamped by the daemon's clock, then checks with
# stats that all WORKERS are joined.  Ends with the median and the worst.
set -euo pipefail

BUILD=${1:-build}
N=${2:-8}
ROUNDS=${3:-10}
OUTAGE=${4:-0}
JOBFS=$BUILD/jobfs
JOBCTL=$BUILD/jobctl
DIR=$(mktemp -d)
JOBFS_MASTER_PORT=$((20000 + RANDOM % 10000))
JOBFS_WORKER_PORT=$((JOBFS_MASTER_PORT + 1))
export JOBFS_MASTER_PORT JOBFS_WORKER_PORT
pids=()
daemon=

cleanup() {
	[ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$DIR"
}
trap cleanup EXIT

start() {
	: >"$DIR/log"
	"$JOBFS" -f --master-port "$JOBFS_MASTER_PORT" --worker-port "$JOBFS_WORKER_PORT" \
		--data "$DIR/data" >"$DIR/log" 2>&1 &
	daemon=$!
	until grep -q 'replayed in' "$DIR/log"; do sleep 0.01; done
}

joined() {
	"$JOBCTL" stats 2>/dev/null | grep -qx "workers $N"
}

# ms HH:MM:SS.mmm: milliseconds since midnight.
ms() {
	local h m s
	IFS=: read -r h m s <<<"$1"
	echo $(((10#$h * 3600 + 10#$m * 60) * 1000 + 10#${s%.*} * 1000 + 10#${s#*.}))
}

start
for ((i = 0; i < N; i++)); do
	"$JOBCTL" work rejoin -- cat 2>/dev/null &
	pids+=("$!")
done
until joined; do sleep 0.01; done

results=()
for ((r = 1; r <= ROUNDS; r++)); do
	kill -9 "$daemon"
	wait "$daemon" 2>/dev/null || true
	sleep "$OUTAGE"
	start
	until [ "$(grep -c 'joined rejoin' "$DIR/log")" -ge "$N" ]; do sleep 0.01; done
	joined
	t0=$(ms "$(grep 'replayed in' "$DIR/log" | awk '{print $1}')")
	t1=$(ms "$(grep 'joined rejoin' "$DIR/log" | tail -n 1 | awk '{print $1}')")
	results+=($((t1 - t0)))
	echo "round $r: all $N workers joined $((t1 - t0)) ms after the daemon served"
done
sorted=$(printf '%s\n' "${results[@]}" | sort -n)
echo "median $(sed -n "$(((ROUNDS + 1) / 2))p" <<<"$sorted") ms, worst $(tail -n 1 <<<"$sorted") ms ($N workers, $ROUNDS rounds, outage ${OUTAGE}s)"
