#!/usr/bin/env bats
# stats_scale.bats — "stats" does not grow with the number of job types:
# at most 100 types in a reply, a count of them all and
# a flag when some were left out; one type on request; the tree's stats
# file has no per-type lines.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/ext'

# many_types N: N detached jobs, each of its own type tN, from one quick
# master that waits for its pong (all handled) before it leaves.
many_types() {
	python3 - "$JOBFS_MASTER_PORT" "$1" <<'PY'
import json, socket, struct, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
def frame(o):
    b = json.dumps(o, separators=(",", ":")).encode()
    return struct.pack(">I", len(b)) + b
out = bytearray()
for i in range(n):
    out += frame({"type": "job", "job_type": "t%d" % i, "id": "j%d" % i,
                  "body": i, "detach": True})
out += frame({"type": "ping"})
s.sendall(out)
buf = b""
while True:
    d = s.recv(65536)
    if not d:
        sys.exit("closed before the pong")
    buf += d
    while len(buf) >= 4:
        ln = struct.unpack(">I", buf[:4])[0]
        if len(buf) < 4 + ln:
            break
        m = json.loads(buf[4:4 + ln]); buf = buf[4 + ln:]
        if m.get("type") == "pong":
            sys.exit(0)
        sys.exit("unexpected reply: %r" % m)
PY
}

@test "stats with 20,000 types stays small: 100 types, a count and a cut flag; one type on request" {
	start_daemon_mounted
	many_types 20000
	out=$(request '{"type":"stats"}')
	# Bounded: 100 types of about 150 bytes, and the counters.
	[ "${#out}" -lt 32768 ]
	[ "$(jq -c '.stats | [.ntypes, .types_cut, (.types | length), .queued]' <<<"$out")" = '[20000,true,100,20000]' ]
	# One type, in either dialect; an unknown one gives no counters.
	[ "$(request '{"type":"stats","job_type":"t19999"}' | jq -c '.stats.types')" = \
		'{"t19999":{"queued":1,"running":0,"done":0,"failed":0,"cancelled":0,"timeout":0,"workers":0,"submitted":1,"requeued":0,"dead":0,"delayed":0,"waiting":0,"retried":0,"kicked":0,"paused":false,"limit":0}}' ]
	[ "$(request '{"action":"stats","type":"t7"}' | jq -c '.stats.types | keys')" = '["t7"]' ]
	[ "$(request '{"type":"stats","job_type":"nosuch"}' | jq -c '[.stats.types, .stats.ntypes]')" = '[{},20000]' ]
	[ "$(request '{"type":"stats","job_type":"a/b"}' | jq -r .error)" = invalid_type ]
	# jobctl stats TYPE prints that type's counters.
	"$JOBCTL" stats t42 | grep -qx 'types.t42.queued 1'
	[ "$("$JOBCTL" stats | grep -c '^types\.[^.]*\.queued ')" = 100 ]
	"$JOBCTL" stats | grep -qx 'ntypes 20000'
	# The tree's stats file: daemon-wide counters only.
	grep -qx 'ntypes 20000' "$MNT/stats"
	[ "$(wc -l <"$MNT/stats")" -lt 40 ]
	# Other clients' jobs still complete.
	assert_daemon_healthy
}

@test "a small daemon's stats still list every type" {
	start_daemon
	many_types 3
	[ "$(request '{"type":"stats"}' | jq -c '.stats | [.ntypes, .types_cut, (.types | keys)]')" = \
		'[3,false,["t0","t1","t2"]]' ]
	assert_daemon_healthy
}
