#!/usr/bin/env bats
# durable_crash.bats — the journal against kill -9 under load and against
# damage: every acknowledged job survives exactly once; a torn
# tail is cut at the last whole record; damage elsewhere stops the start
# (exit status 6, naming the segment and the offset) until --repair.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'
load 'helpers/durable'

nacked() {
	local n
	n=$(cat "$OUT/acked" 2>/dev/null | wc -l)
	echo $((n))
}

acked_at_least() {
	[ "$(nacked)" -ge "$1" ]
}

drained() {
	[ "$(daemon_stat .queued)" = 0 ] && [ "$(daemon_stat .running)" = 0 ]
}

@test "kill -9 under load, 3 rounds: every acknowledged job is there after restart, exactly once" {
	local round target pid check dups rerun
	for round in 1 2 3; do
		rm -rf "$DATA"
		OUT=$BATS_TEST_TMPDIR/out$round
		mkdir -p "$OUT"
		start_durable
		# 4 masters x 2000 jobs, 200 unacknowledged each, an echo worker.
		load_py load "$JOBFS_MASTER_PORT" "$JOBFS_WORKER_PORT" t 4 2000 200 "$OUT" &
		pid=$!
		target=$((500 + RANDOM % 6000))
		wait_until 60 acked_at_least "$target"
		crash_daemon
		wait "$pid" || true
		[ ! -e "$OUT/finished" ]
		echo "# round $round: killed after $(nacked) acknowledgements" >&3
		start_durable
		check=$(load_py check "$JOBFS_MASTER_PORT" "$OUT")
		echo "# round $round: $check" >&3
		[ "$(jq .nmissing <<<"$check")" = 0 ]
		[ "$(jq .acked <<<"$check")" = "$(nacked)" ]
		# Only queued and done jobs: what ran was queued again.
		[ "$(jq -c '.states | keys - ["done","queued"]' <<<"$check")" = '[]' ]
		# A result a master got stays that job's result.
		while read -r id body; do
			[ "$(job_status "\"$id\"")" = done ] || { echo "result of $id lost" >&2; return 1; }
		done < <(shuf -n 20 "$OUT/results" 2>/dev/null || true)
		# The rest runs once each: no id twice, none that had finished.
		load_py drain "$JOBFS_WORKER_PORT" t "$OUT/drained" &
		BG_PIDS+=("$!")
		wait_until 60 drained
		dups=$(sort "$OUT/drained" | uniq -d | wc -l)
		[ "$dups" = 0 ]
		rerun=$(cut -d' ' -f1 "$OUT/results" | sed 's/.*/"&"/' | sort |
			comm -12 - <(sort "$OUT/drained") | wc -l)
		[ "$rerun" = 0 ]
		stop_daemon
	done
	start_durable
	assert_daemon_healthy
}

# record_ends SEGMENT: the offset just past each record, one a line, with
# its kind: "END KIND".
record_ends() {
	python3 - "$1" <<'EOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
o = 32
while o + 9 <= len(d):
    n = struct.unpack("<I", d[o:o + 4])[0]
    if o + 9 + n > len(d):
        break
    print(o + 9 + n, d[o + 8])
    o += 9 + n
EOF
}

# fill50: 50 queued detached jobs, ids 1..50, then a clean stop.
fill50() {
	local i
	start_durable
	conn_open M
	for ((i = 1; i <= 50; i++)); do
		send M "{\"action\":\"submit\",\"id\":$i,\"type\":\"t\",\"detach\":true,\"body\":{\"n\":$i,\"pad\":\"$(printf '%*s' $((i * 3)) '')\"}}"
	done
	wait_lines M 50
	stop_daemon
}

@test "a journal cut at random offsets starts, cut at the last whole record, and keeps every job before the cut" {
	local seg size cut k i ends
	fill50
	seg=$(segments | tail -n 1)
	cp "$seg" "$BATS_TEST_TMPDIR/pristine"
	size=$(stat -c %s "$seg")
	ends=$(record_ends "$seg")
	for i in 1 2 3 4 5 6; do
		cut=$((33 + RANDOM * 32768 % (size - 33)))
		[ "$i" != 6 ] || cut=$((size - 1))
		cp "$BATS_TEST_TMPDIR/pristine" "$seg"
		truncate -s "$cut" "$seg"
		# Jobs whose submission record ends at or before the cut.
		k=$(awk -v c="$cut" '$1 <= c && $2 == 1' <<<"$ends" | wc -l)
		start_durable
		echo "# cut at $cut of $size: $k jobs before it" >&3
		[ "$(( $(daemon_stat .queued) + $(daemon_stat .retained) ))" = "$k" ]
		[ "$k" -lt 1 ] || [ "$(job_status "$k")" != unknown_id ]
		[ "$(job_status $((k + 1)))" = unknown_id ]
		if ! awk -v c="$cut" '$1 == c' <<<"$ends" | grep -q .; then
			grep -q "torn tail cut at offset" "$DAEMON_LOG"
		fi
		stop_daemon
	done
	start_durable
	assert_daemon_healthy
}

@test "a byte flipped in the middle stops the start naming segment and offset; --repair starts and says what it dropped" {
	local seg off name
	fill50
	seg=$(segments | tail -n 1)
	name=$(basename "$seg")
	# The middle of the 20th record.
	off=$(record_ends "$seg" | sed -n 20p | cut -d' ' -f1)
	off=$((off - 30))
	python3 -c 'import sys
f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2])); b = f.read(1)
f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0x55]))' "$seg" "$off"
	# (bounded: a daemon that did start would serve until killed)
	run timeout 20 "$JOBFS" -f --master-port 0 --worker-port 0 --data "$DATA"
	echo "$output" >&3
	[ "$status" = 6 ]
	[[ "$output" == *"$name"* ]]
	[[ "$output" == *"offset"* ]]
	start_durable --repair
	grep -q -- '--repair dropped' "$DAEMON_LOG"
	# One job record was lost with the damage; the others are there.
	[ "$(( $(daemon_stat .queued) + $(daemon_stat .retained) ))" = 49 ]
	stop_daemon
	# The repair lasts: a plain start works now.
	start_durable
	[ "$(( $(daemon_stat .queued) + $(daemon_stat .retained) ))" = 49 ]
	assert_daemon_healthy
}
