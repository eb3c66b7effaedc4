#!/usr/bin/env bash
# The web face's benchmark rows, beside the TCP latency shape:
#
#   http round trip   one client, one worker: keep-alive POST /types/T/jobs
#                     then GET /jobs/ID/response, p50 and p99, and the same
#                     round trip over TCP (target: HTTP p50 <= 2x TCP p50)
#   --http-route      requests/s with 8 workers and 64 keep-alive clients
#   SSE fan-out       1 publisher, 1000 /sub/C subscribers: every subscriber
#                     gets every message; messages delivered per second
#   https round trip  the http round trip with --tls-cert: the web face in
#                     HTTPS, and the worker and the TCP master over TLS
#                     (--tls-cert makes every port TLS); beside it the same
#                     daemon with --http-plain (TCP ports TLS, the web face
#                     plain): their ratio is the web face's own TLS, the
#                     worker's legs equal (target: <= 1.5); and the plain
#                     daemon's.  Two rounds, plain first in each.
#   idle /events      the throughput shape (loadgen M=4 K=64 W=8 S=100,
#                     TCP) with no stream, then with 1,000 /events streams
#                     that read nothing: jobs/s both, and their ratio
#                     (target >= 0.8); needs out/loadgen (make -C
#                     tests/bench), else the row says skip
#
#   tests/bench/web.sh                 # small (BENCH_SCALE=0.1)
#   BENCH_SCALE=1 tests/bench/web.sh   # full sizes (10,000 messages)
#
# Environment: BENCH_SCALE (default 0.1 here), JOBFS (default build/jobfs).
# Prints a table; exits non-zero if a run failed verification.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SCALE=${BENCH_SCALE:-0.1}
WORK=$(mktemp -d /tmp/jobfs-webbench.XXXXXX)
JOBFS=${JOBFS:-$ROOT/build/jobfs}
PID=
STATUS=0

cleanup() {
	[ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

n() { awk -v s="$SCALE" -v n="$1" 'BEGIN { v = int(n * s); print (v < 1 ? 1 : v) }'; }

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() {
	MP=$(port) WP=$(port) HP=$(port)
	"$JOBFS" -f -q --master-port "$MP" --worker-port "$WP" --http "127.0.0.1:$HP" \
		--http-route /r=route --http-max-conn 5000 --keep 5 "$@" >"$WORK/jobfs.log" 2>&1 &
	PID=$!
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$HP") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "jobfs did not start" >&2
	cat "$WORK/jobfs.log" >&2
	exit 1
}

stop() {
	kill -TERM "$PID" 2>/dev/null
	wait "$PID" 2>/dev/null || { echo "jobfs exited badly" >&2; STATUS=1; }
	PID=
}

cc -std=gnu11 -O2 -D_GNU_SOURCE -o "$WORK/webload" "$HERE/webload.c" -lssl -lcrypto \
	-lpthread || exit 1
# The HTTPS rows' certificate: a CA of their own, a certificate for 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/ca.key" \
	-out "$WORK/ca.pem" -days 2 -subj /CN=bench-ca 2>/dev/null &&
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/srv.key" \
	-out "$WORK/srv.csr" -subj /CN=localhost 2>/dev/null &&
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$WORK/san.ext" &&
openssl x509 -req -in "$WORK/srv.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
	-CAcreateserial -days 2 -extfile "$WORK/san.ext" -out "$WORK/srv.pem" 2>/dev/null || exit 1
TLS=(--tls-cert "$WORK/srv.pem" --tls-key "$WORK/srv.key")

run() { # [--tls|--tls-tcp CA] mode args...
	local out
	out=$(timeout 600 "$WORK/webload" "$@") || { echo "$*: failed: $out" >&2; STATUS=1; }
	sed -n 's/^RESULT //p' <<<"$out"
}

start
RT=$(run rt "$HP" "$MP" "$WP" "$(n 20000)")
stop
for round in 1 2; do
	start "${TLS[@]}" --http-plain
	RTP[$round]=$(run --tls-tcp "$WORK/ca.pem" rt "$HP" "$MP" "$WP" "$(n 20000)")
	stop
	start "${TLS[@]}"
	RTS[$round]=$(run --tls "$WORK/ca.pem" rt "$HP" "$MP" "$WP" "$(n 20000)")
	stop
done
start
ROUTE=$(run route "$HP" "$WP" 8 64 "$(n 200000)")
stop
start
SSE=$(run sse "$HP" "$MP" 1000 "$(n 10000)")
stop

# The idle /events row: loadgen against a daemon with 0, then 1,000
# streams that read nothing (tests/helpers/web_peer.py idlesse).
LOADGEN=$HERE/out/loadgen
[ -x "$LOADGEN" ] || make -C "$HERE" out/loadgen >/dev/null 2>&1
IDLE0=skip IDLE1=skip IDLERATIO=
if [ -x "$LOADGEN" ]; then
	ulimit -n 8192 2>/dev/null
	tp() {
		timeout 600 "$LOADGEN" -M 4 -K 64 -W 8 -S 100 -N "$(n 200000)" \
			--master-port "$MP" --worker-port "$WP" --timeout 300 |
			sed -n 's/^RESULT .*jobs_per_sec=\([0-9]*\).*/\1/p'
	}
	start
	IDLE0=$(tp)
	stop
	start
	mkdir -p "$WORK/idle"
	python3 "$ROOT/tests/helpers/web_peer.py" idlesse "$HP" /events 1000 "$WORK/idle" &
	PEER=$!
	for _ in $(seq 1200); do
		[ -e "$WORK/idle/ready" ] && break
		kill -0 "$PEER" 2>/dev/null || break
		sleep 0.05
	done
	if [ -e "$WORK/idle/ready" ]; then
		IDLE1=$(tp)
	else
		echo "idle /events: the streams did not open" >&2
		STATUS=1
	fi
	touch "$WORK/idle/go"
	wait "$PEER"
	stop
	[ -n "$IDLE0" ] && [ -n "$IDLE1" ] && [ "$IDLE1" != skip ] &&
		IDLERATIO=$(awk -v a="$IDLE1" -v b="$IDLE0" 'BEGIN { printf "%.2f", a / b }')
fi

get() { sed -n "s/.*$2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }'; }
echo
echo "| row (BENCH_SCALE=$SCALE) | jobfs |"
echo "|---|---|"
echo "| http round trip p50 / p99 (us) | $(get "$RT" http_p50_us) / $(get "$RT" http_p99_us) |"
echo "| tcp round trip p50 / p99 (us), same run | $(get "$RT" tcp_p50_us) / $(get "$RT" tcp_p99_us) |"
echo "| http p50 / tcp p50 (target <= 2) | $(get "$RT" ratio_p50) |"
for round in 1 2; do
	echo "| round $round: https round trip p50 / p99 (us), TLS on every port | $(get "${RTS[$round]}" http_p50_us) / $(get "${RTS[$round]}" http_p99_us) |"
	echo "| round $round: http round trip p50 / p99 (us), --http-plain, TCP ports TLS | $(get "${RTP[$round]}" http_p50_us) / $(get "${RTP[$round]}" http_p99_us) |"
	echo "| round $round: https p50 / http p50, the worker over TLS in both (target <= 1.5) | $(ratio "$(get "${RTS[$round]}" http_p50_us)" "$(get "${RTP[$round]}" http_p50_us)") |"
done
echo "| https p50 (TLS on every port, round 1) / plain daemon's http p50 | $(ratio "$(get "${RTS[1]}" http_p50_us)" "$(get "$RT" http_p50_us)") |"
echo "| --http-route req/s (8 workers, 64 clients) | $(get "$ROUTE" route_rps) |"
echo "| SSE fan-out msgs/s delivered (1000 subscribers) | $(get "$SSE" sse_msgs_per_s) (missed $(get "$SSE" missed)) |"
echo "| throughput jobs/s, no stream / 1000 idle /events streams (target ratio >= 0.8) | $IDLE0 / $IDLE1${IDLERATIO:+ ($IDLERATIO)} |"
exit "$STATUS"
