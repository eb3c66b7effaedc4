#!/usr/bin/env bash
# tls.sh — jobfs over TLS beside plain TCP, same run, same
# client (tlsbench.c): throughput (4 masters x 64 in flight, 4 workers)
# and latency (1 job in flight).  Alternates plain and TLS, REPS times,
# a fresh daemon each run, and prints the medians and the ratios.
#
#   tests/bench/tls.sh [JOBFS] [REPS]      (JOBFS default build/jobfs)
#   TLS_BENCH_JOBS=100000 TLS_BENCH_LAT_JOBS=5000
set -eu
here=$(cd "$(dirname "$0")" && pwd)
JOBFS=${1:-$here/../../build/jobfs}
REPS=${2:-3}
NT=${TLS_BENCH_JOBS:-100000}
NL=${TLS_BENCH_LAT_JOBS:-5000}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
pid=
cc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$work/tlsbench" "$here/tlsbench.c" \
	-lssl -lcrypto -lpthread
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
	-days 2 -subj "/CN=localhost" -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null

run() {   # run TRANSPORT SHAPE N
	# Ports below the ephemeral range, so no client socket holds them.
	local mp=$((12000 + RANDOM % 10000)) wp=$((22000 + RANDOM % 10000)) tls=() opt=()
	if [ "$1" = tls ]; then
		tls=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem")
		opt=(--tls "$work/cert.pem")
	fi
	"$JOBFS" -f -q --keep 0 --master-port "$mp" --worker-port "$wp" "${tls[@]}" \
		>"$work/log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$wp) 2>/dev/null && break; sleep 0.05; done
	out=$("$work/tlsbench" "${opt[@]}" "$mp" "$wp" "$2" "$3") || { cat "$work/log" >&2; exit 1; }
	# The daemon's CPU time per job: steadier than wall time on a busy box.
	local ticks
	ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
	echo "$out daemon_cpu_us_per_job=$(awk -v t="$ticks" -v n="$3" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.1f", t / hz * 1e6 / n }')"
	kill "$pid"
	wait "$pid" || true
}

for ((r = 0; r < REPS; r++)); do
	for t in plain tls; do
		run "$t" throughput "$NT"
		run "$t" latency "$NL"
	done
done | tee "$work/results"
python3 - "$work/results" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    kv = dict(re.findall(r'(\w+)=(\S+)', line))
    rows.setdefault((kv['shape'], kv['transport']), []).append(kv)
def med(shape, t, k):
    return statistics.median(float(r[k]) for r in rows[(shape, t)])
tp, tt = med('throughput', 'plain', 'jobs_s'), med('throughput', 'tls', 'jobs_s')
lp, lt = med('latency', 'plain', 'p50_us'), med('latency', 'tls', 'p50_us')
qp, qt = med('latency', 'plain', 'p99_us'), med('latency', 'tls', 'p99_us')
print(f"| shape | plain | TLS | TLS/plain | target |")
print(f"|---|---|---|---|---|")
print(f"| throughput, jobs/s | {tp:.0f} | {tt:.0f} | {tt/tp:.2f}x | >= 0.7x |")
print(f"| latency p50, us | {lp:.0f} | {lt:.0f} | {lt/lp:.2f}x | <= 1.5x |")
print(f"| latency p99, us | {qp:.0f} | {qt:.0f} | {qt/qp:.2f}x | |")
cp, ct = med('throughput', 'plain', 'daemon_cpu_us_per_job'), med('throughput', 'tls', 'daemon_cpu_us_per_job')
print(f"| daemon CPU per job (throughput shape), us | {cp:.1f} | {ct:.1f} | {ct/cp:.2f}x | |")
PY
