#!/usr/bin/env bats
# large_body.bats — bodies stored once: a 4 MiB body,
# submitted over TCP or written to the tree, reaches its worker and the
# journal byte for byte (it is written to the socket from the job's blob,
# among the plain bytes of the frame), survives kill -9 of the daemon, and
# so does a 4 MiB result.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'
load 'helpers/durable'

BODY=
# make_body: a compact JSON body of 4 MiB with escapes, non-ASCII text and
# numbers among long plain runs, in $BODY (a file).
make_body() {
	BODY=$BATS_TEST_TMPDIR/body.json
	python3 - "$BODY" <<'EOF'
import json, random, sys
random.seed(9)
parts, n = [], 0
while n < 4 * 1024 * 1024:
    k = random.randrange(1, 20000)
    s = "x" * k + random.choice(['"q"', "back\\slash", "é€😀", "tab\there", "\u0001", "plain"])
    parts.append(s)
    n += k + 12
body = {"chunks": parts, "n": [1, -2.5, 3e10, 12345678901234567890]}
with open(sys.argv[1], "w", encoding="utf-8") as f:
    f.write(json.dumps(body, separators=(",", ":"), ensure_ascii=False))
EOF
}

# body_of_line CONN L: "same" if the frame at line L of what CONN received
# carries exactly the bytes of $BODY after ,"body": (up to its final }).
body_of_line() {
	python3 - "$(conn_file "$1")" "$2" "$BODY" <<'EOF'
import sys
lines = open(sys.argv[1], "rb").read().split(b"\n")
want = open(sys.argv[3], "rb").read()
line = lines[int(sys.argv[2]) - 1]
i = line.index(b',"body":') + len(b',"body":')
got = line[i:-1]
print("same" if got == want else "differ: %d bytes vs %d" % (len(got), len(want)))
EOF
}

# journal_holds FILE: the journal's segments hold FILE's bytes verbatim.
journal_holds() {
	python3 - "$1" "$DATA" <<'EOF'
import glob, sys
want = open(sys.argv[1], "rb").read()
data = b"".join(open(p, "rb").read() for p in sorted(glob.glob(sys.argv[2] + "/*.log")))
sys.exit(0 if data.find(want) >= 0 else 1)
EOF
}

# first_job_line W: the line number of W's first job frame.
first_job_line() {
	grep -n '"job"' "$(conn_file "$1")" | head -1 | cut -d: -f1
}

@test "a 4 MiB body over TCP reaches its worker and the journal byte for byte, and survives kill -9" {
	make_body
	start_durable --keep 600
	# Detached: the submitting master hangs up once acknowledged.
	printf '{"action":"submit","id":"big","type":"t","detach":true,"body":%s}\n' "$(cat "$BODY")" |
		"$JOBCTL" raw -n 1 -t 20000 >"$BATS_TEST_TMPDIR/ack"
	[ "$(jq -c . "$BATS_TEST_TMPDIR/ack")" = '{"ok":true,"id":"big"}' ]
	journal_holds "$BODY"

	join_worker W t
	wait_jobs W 1 30
	[ "$(body_of_line W "$(first_job_line W)")" = same ]

	# It was running: after kill -9 it is queued again, body intact.
	crash_daemon
	start_durable --keep 600
	journal_holds "$BODY"
	join_worker W2 t
	wait_jobs W2 1 30
	[ "$(body_of_line W2 "$(first_job_line W2)")" = same ]

	# A 4 MiB result (the body itself) reaches a master waiting for it,
	# byte for byte, and survives another kill -9.
	respond W2 "$(cat "$BODY")"
	wait_until 30 status_is '"big"' done
	crash_daemon
	start_durable --keep 600
	printf '{"type":"wait","id":"big"}\n' | "$JOBCTL" raw -n 1 -t 20000 \
		>"$(conn_file WAIT)"
	[ "$(body_of_line WAIT 1)" = same ]
	assert_daemon_healthy
}

@test "a 4 MiB body written to the tree reaches its worker byte for byte, and survives kill -9" {
	make_body
	start_durable_mounted
	mkdir "$MNT/types/t"
	{ cat "$BODY"; echo; } >"$MNT/types/t/queue"
	wait_until 10 stat_is .queued 1
	journal_holds "$BODY"
	crash_daemon
	start_durable_mounted
	join_worker W t
	wait_jobs W 1 30
	[ "$(body_of_line W "$(first_job_line W)")" = same ]
	assert_daemon_healthy
}
