#!/usr/bin/env bats
# tree_listing.bats — listings of the tree: every
# listing prints an id exactly as its file name under jobs/, control
# characters percent-encoded, so that a line is always one job; and jobs/
# is read with a cursor, not a copy of the whole listing per open handle.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/fs'

setup() {
	require_fuse
	start_daemon_mounted
}

@test "an id with a newline is one line in queue, named as under jobs/, and the cancel loop spares other types" {
	mkdir "$MNT/types/t1" "$MNT/types/t2"
	gloom submit t1 '"x\nvictim"' '{"n":1}' --detach
	gloom submit t1 '"tab\there\r\u0001\u007f\u0085end"' '{"n":2}' --detach
	gloom submit t2 '"victim"' '{"n":3}' --detach
	gloom submit t2 '"x"' '{"n":4}' --detach
	[ "$(grep -c '' "$MNT/types/t1/queue")" = 2 ]
	grep -qxF 'x%0Avictim' "$MNT/types/t1/queue"
	grep -qxF 'tab%09here%0D%01%7F%C2%85end' "$MNT/types/t1/queue"
	# Exactly the names under jobs/, and each one opens its job.
	[ "$(LC_ALL=C sort "$MNT/types/t1/queue")" = "$(ls "$MNT/jobs" | LC_ALL=C sort | grep -v -x -e victim -e x)" ]
	[ "$(cat "$MNT/jobs/x%0Avictim/body")" = '{"n":1}' ]
	[ "$(cat "$MNT/jobs/x%0Avictim/type")" = t1 ]
	# jobfs(5)'s loop that cancels every queued job of t1.
	while IFS= read -r id; do
		rmdir "$MNT/jobs/$id"
	done <"$MNT/types/t1/queue"
	[ "$(cat "$MNT/types/t2/queue" | LC_ALL=C sort)" = 'victim
x' ]
	[ -z "$(cat "$MNT/types/t1/queue")" ]
	# The raw spelling is not a name; %41 is not A either.
	[ ! -e "$MNT/jobs/x"$'\n'"victim" ]
	[ ! -e "$MNT/jobs/vi%63tim" ]
	assert_tree_healthy
}

@test "workers lists a running id with control characters, and a worker name with a newline, on one line" {
	mkdir "$MNT/types/w"
	gloom worker w --name $'evil\nname busy' --hold "$BATS_TEST_TMPDIR/go" >/dev/null &
	BG_PIDS+=("$!")
	gloom submit w '"run\nning\u001b"' '{}' --detach
	wait_until 10 grep -q busy "$MNT/types/w/workers"
	[ "$(grep -c '' "$MNT/types/w/workers")" = 1 ]
	[[ "$(cat "$MNT/types/w/workers")" =~ ^'evil%0Aname busy 127.0.0.1:'[0-9]+' busy run%0Aning%1B'$ ]]
	[ "$(cat "$MNT/jobs/run%0Aning%1B/status")" = running ]
	touch "$BATS_TEST_TMPDIR/go"
	wait_until 10 file_is "$MNT/jobs/run%0Aning%1B/status" done
	assert_tree_healthy
}

@test "ids read back from a read-write queue are one per line" {
	mkdir "$MNT/types/rw"
	exec {fd}<>"$MNT/types/rw/queue"
	echo '{"a":1}' >&$fd
	id=$(read_line "$fd")
	[ "$(cat "$MNT/jobs/$id/status")" = queued ]
	exec {fd}>&-
	assert_tree_healthy
}

# rss_kb: the daemon's resident set size in kB.
rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status"
}

# submit_interleaved N: N jobs in types/stable and N in types/churn,
# submitted alternately in blocks of 10, so their ids interleave in jobs/.
submit_interleaved() {
	mkdir -p "$MNT/types/stable" "$MNT/types/churn"
	python3 - "$MNT" "$1" <<'PY'
import os, sys
mnt, n = sys.argv[1], int(sys.argv[2])
a = os.open(mnt + "/types/stable/queue", os.O_WRONLY)
b = os.open(mnt + "/types/churn/queue", os.O_WRONLY)
block = b'{"k":1}\n' * 10
for _ in range(n // 10):
    os.write(a, block)
    os.write(b, block)
PY
}

@test "open handles on jobs/ cost little memory each, however many jobs there are" {
	submit_interleaved 100000
	[ "$(grep -x 'queued 100000' "$MNT/types/churn/stats")" ]
	local before after
	before=$(rss_kb)
	# 8 handles on jobs/, each having read a little of its listing, kept open.
	python3 - "$MNT" "$BATS_TEST_TMPDIR/ready" "$BATS_TEST_TMPDIR/done" <<'PY' &
import os, sys, time
mnt, ready, done = sys.argv[1:]
its = [os.scandir(mnt + "/jobs") for _ in range(8)]
for it in its:
    for _ in range(10):
        next(it)
open(ready, "w").close()
while not os.path.exists(done):
    time.sleep(0.05)
PY
	BG_PIDS+=("$!")
	wait_until 60 test -e "$BATS_TEST_TMPDIR/ready"
	after=$(rss_kb)
	touch "$BATS_TEST_TMPDIR/done"
	echo "RSS with 200000 jobs: $before kB; with 8 open handles on jobs/: $after kB" >&3
	# A copy of the listing is 200000 entries of 40 bytes, 8 MB per handle.
	[ $((after - before)) -lt 4096 ]
	assert_tree_healthy
}

@test "a slow listing of jobs/ lists each job that exists throughout exactly once while jobs come and go" {
	submit_interleaved 20000
	run python3 - "$MNT" <<'PY'
import collections, os, sys
mnt = sys.argv[1]
def ids(t):
    return open("%s/types/%s/queue" % (mnt, t)).read().split()
stable, churn = ids("stable"), ids("churn")
assert len(stable) == 20000 and len(churn) == 20000, (len(stable), len(churn))
stable_set = set(stable)
churn_left = list(churn)          # in submission order, as jobs/ lists them
q = os.open(mnt + "/types/churn/queue", os.O_WRONLY)
seen = collections.Counter()
handles = [os.scandir(mnt + "/jobs") for _ in range(3)]
names = [[] for _ in handles]
live = list(range(len(handles)))
step = 0
while live:
    for i in list(live):
        for _ in range(300):
            try:
                names[i].append(next(handles[i]).name)
            except StopIteration:
                live.remove(i)
                break
    step += 1
    # Forget the churn jobs just ahead of the furthest reader (the cursors
    # sit among them), and add new jobs at the end.
    last = max((n[-1] for n in names if n), default="")
    ahead = [c for c in churn_left if c > last][:1500]
    for c in ahead:
        os.rmdir(mnt + "/jobs/" + c)
    gone = set(ahead)
    churn_left = [c for c in churn_left if c not in gone]
    os.write(q, b'{"new":1}\n' * 200)
for i, n in enumerate(names):
    c = collections.Counter(n)
    dups = [k for k, v in c.items() if v > 1]
    assert not dups, ("handle %d listed twice" % i, dups[:5])
    missing = stable_set - set(n)
    assert not missing, ("handle %d missed" % i, sorted(missing)[:5])
    assert n == sorted(n), "handle %d: not in submission order" % i
print("steps", step, "listed", [len(n) for n in names])
PY
	echo "$output" >&3
	[ "$status" = 0 ]
	assert_tree_healthy
}

@test "rewinddir and a reader with a small buffer see the whole of jobs/" {
	mkdir "$MNT/types/few"
	python3 -c 'import sys; sys.stdout.write("{}\n" * 3000)' >"$MNT/types/few/queue"
	run python3 - "$MNT" <<'PY'
import ctypes, os, sys
mnt = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(mnt + "/jobs", os.O_RDONLY | os.O_DIRECTORY)
def listing(bufsize):
    buf = ctypes.create_string_buffer(bufsize)
    out = []
    while True:
        n = libc.syscall(217, fd, buf, bufsize)   # getdents64
        assert n >= 0, ctypes.get_errno()
        if n == 0:
            return out
        p = 0
        while p < n:
            reclen = int.from_bytes(buf.raw[p + 16:p + 18], "little")
            name = buf.raw[p + 19:p + reclen].split(b"\0")[0].decode()
            out.append(name)
            p += reclen
a = listing(100)          # a buffer smaller than one reply: entries kept a few at a time
os.lseek(fd, 0, os.SEEK_SET)
b = listing(32768)
want = sorted(open(mnt + "/types/few/queue").read().split())
for l in (a, b):
    names = [x for x in l if x not in (".", "..")]
    assert names == want, (len(names), len(want))
    assert l[:2] == [".", ".."], l[:2]
print(len(a), len(b))
PY
	echo "$output" >&3
	[ "$status" = 0 ]
	assert_tree_healthy
}
