#!/usr/bin/env bats
# life_fail_log.bats — failed attempts do not flood the log: a type's first
# few failures of a window are logged one by one, the rest counted in one
# summary line when the window ends.  JOBFS_LOG_INTERVAL shortens the
# window (10 s by default) so that the test waits on the summary, not on
# the clock.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'

# fail_jobs N TYPE: a master submits N jobs of TYPE without retries and a
# worker fails each; returns once the master has all N job_failed endings.
fail_jobs() {
	python3 - "$JOBFS_MASTER_PORT" "$JOBFS_WORKER_PORT" "$1" "$2" <<'PY'
import json, socket, struct, sys

mport, wport, n, jtype = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def send(s, obj):
    data = json.dumps(obj).encode()
    s.sendall(struct.pack(">I", len(data)) + data)

def recv(s):
    def exact(k):
        b = b""
        while len(b) < k:
            c = s.recv(k - len(b))
            if not c:
                sys.exit("the daemon closed the connection")
            b += c
        return b
    return json.loads(exact(struct.unpack(">I", exact(4))[0]))

w = socket.create_connection(("127.0.0.1", wport))
send(w, {"type": "join", "job_type": jtype, "capacity": 1})
m = socket.create_connection(("127.0.0.1", mport))
for i in range(n):
    send(m, {"type": "job", "job_type": jtype, "id": "f%d" % i, "body": i, "retries": 0})
for i in range(n):
    job = recv(w)
    assert job.get("type") == "job", job
    send(w, {"type": "fail", "body": {"exit": 1, "job": job["id"]}})
ends = [recv(m) for _ in range(n)]
assert all(e.get("error") == "job_failed" for e in ends), ends[:3]
PY
}

# fail_lines: the failures logged one by one (f0, f1 ...).
fail_lines() {
	grep -c 'job f[0-9]*: attempt 1 failed' "$DAEMON_LOG"
}

# summed_summaries TYPE: the failures the summary lines of TYPE count.
summed_summaries() {
	sed -n "s/.*type $1: \([0-9]*\) more failed attempt(s) in the last .*/\1/p" \
		"$DAEMON_LOG" | awk '{ n += $1 } END { print n + 0 }'
}

# all_counted N: the lines and the summaries account for N failures.
all_counted() {
	[ "$(($(fail_lines) + $(summed_summaries flood)))" = "$1" ]
}

@test "many failing jobs: a bounded number of failure lines, and a summary line with the right count" {
	JOBFS_LOG_INTERVAL=3 start_daemon
	fail_jobs 300 flood
	wait_until 30 stat_is .fails 300
	# Once the window of the last failures ends, its summary counts them.
	wait_until 30 all_counted 300
	summaries=$(grep -c 'type flood: [0-9]* more failed attempt(s) in the last 3 s (last: job f[0-9]* attempt 1: {"exit":1' "$DAEMON_LOG")
	[ "$summaries" -ge 1 ]
	# At most 5 lines a window, and a summary for each window that had more.
	[ "$(fail_lines)" -le $((5 * summaries + 5)) ]
	assert_daemon_healthy
}
