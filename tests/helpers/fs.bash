# fs.bash — helpers for the file-tree tests (fs_*.bats, mount_helper.bats).
#
# load 'helpers/fs' after helpers/daemon.  A small python3 client speaks the
# protocol directly, so that these tests need nothing but the daemon:
#
# (as `gloom ARGS`, or `"$GLOOM" ARGS &` in the background)
#
#   gloom worker TYPE [--count N] [--partials N] [--hold FILE] [--name W] [--die]
#       join TYPE; answer each job with its own body (after N partial
#       results {"part":i}; after FILE exists, with --hold); print each job
#       id as it arrives; exit after N jobs with --count, or at the first
#       job without answering it with --die.
#   gloom submit TYPE ID BODY [--wait] [--stream] [--priority P] [--timeout MS]
#       [--detach]
#       submit one job (ID and BODY are JSON texts); print every frame
#       received, one per line; with --wait, until the job's final frame.
#       Without --wait it disconnects at once: use --detach to keep the job.
#   gloom cancel ID                 cancel job ID; print the frame that answers
#   gloom subscribe CHANNEL COUNT   print COUNT messages of CHANNEL
#   gloom publish CHANNEL BODY      publish BODY (a JSON text)
#   gloom poll FILE SECONDS [OPENED] print "ready" or "timeout": select(2) on FILE
#                                   (creates the file OPENED once FILE is open)
#   gloom nonblock FILE             one O_NONBLOCK read: print the bytes or EAGAIN

GLOOM_PY=$(cat <<'PY'
import errno, json, os, select, socket, struct, sys, time

def conn(port):
    for _ in range(100):
        try:
            return socket.create_connection(("127.0.0.1", int(port)))
        except OSError:
            time.sleep(0.05)
    sys.exit("cannot connect to port %s" % port)

def send(s, obj):
    b = json.dumps(obj).encode()
    s.sendall(struct.pack(">I", len(b)) + b)

def readn(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            return None
        out += chunk
    return out

def recv(s):
    h = readn(s, 4)
    if h is None:
        return None
    return json.loads(readn(s, struct.unpack(">I", h)[0]))

def opt(name, default=None):
    if name in sys.argv:
        i = sys.argv.index(name)
        return sys.argv[i + 1] if i + 1 < len(sys.argv) and not sys.argv[i + 1].startswith("--") else True
    return default

def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()

cmd = sys.argv[1]
wport = os.environ.get("JOBFS_WORKER_PORT")
mport = os.environ.get("JOBFS_MASTER_PORT")

if cmd == "worker":
    s = conn(wport)
    join = {"type": "join", "job_type": sys.argv[2]}
    if opt("--name"):
        join["worker"] = opt("--name")
    send(s, join)
    count, partials, hold = int(opt("--count", 0)), int(opt("--partials", 0)), opt("--hold")
    done = 0
    while True:
        f = recv(s)
        if f is None:
            break
        if f.get("type") == "ping":
            send(s, {"type": "pong"})
            continue
        if f.get("type") != "job":
            continue
        out(str(f["id"]))
        if opt("--die"):
            os._exit(0)
        for i in range(partials):
            send(s, {"type": "partial", "body": {"part": i}})
            time.sleep(0.05)
        while hold and not os.path.exists(hold):
            time.sleep(0.02)
        send(s, {"type": "response", "body": f["body"]})
        done += 1
        if count and done >= count:
            time.sleep(0.1)
            break
elif cmd == "submit":
    s = conn(mport)
    msg = {"type": "job", "job_type": sys.argv[2], "id": json.loads(sys.argv[3]),
           "body": json.loads(sys.argv[4])}
    if opt("--stream"):
        msg["stream"] = True
    if opt("--detach"):
        msg["detach"] = True
    if opt("--priority"):
        msg["priority"] = int(opt("--priority"))
    if opt("--timeout"):
        msg["timeout"] = int(opt("--timeout"))
    send(s, msg)
    if opt("--wait"):
        while True:
            f = recv(s)
            if f is None:
                break
            out(json.dumps(f, separators=(",", ":")))
            if not f.get("partial") and ("body" in f or "error" in f):
                break
    else:
        send(s, {"type": "ping"})
        while True:
            f = recv(s)
            if f is None or f.get("type") == "pong":
                break
            out(json.dumps(f, separators=(",", ":")))
elif cmd == "cancel":
    s = conn(mport)
    send(s, {"type": "cancel", "id": sys.argv[2]})
    out(json.dumps(recv(s), separators=(",", ":")))
elif cmd == "subscribe":
    s = conn(mport)
    send(s, {"type": "subscribe", "channel": sys.argv[2]})
    send(s, {"type": "ping"})
    recv(s)
    out("subscribed")
    for _ in range(int(sys.argv[3])):
        f = recv(s)
        out(json.dumps(f["body"], separators=(",", ":")))
elif cmd == "publish":
    s = conn(mport)
    send(s, {"type": "publish", "channel": sys.argv[2], "body": json.loads(sys.argv[3])})
    send(s, {"type": "ping"})
    recv(s)
elif cmd == "poll":
    fd = os.open(sys.argv[2], os.O_RDONLY)
    if len(sys.argv) > 4:
        open(sys.argv[4], "w").close()  # the file is open: tell the test
    r, _, _ = select.select([fd], [], [], float(sys.argv[3]))
    out("ready" if r else "timeout")
elif cmd == "nonblock":
    fd = os.open(sys.argv[2], os.O_RDONLY | os.O_NONBLOCK)
    try:
        out(os.read(fd, 65536).decode().rstrip("\n"))
    except OSError as e:
        out(errno.errorcode[e.errno])
PY
)

# The client is a file, so that `"$GLOOM" ... &` makes $! the client itself.
GLOOM=${BATS_TEST_TMPDIR:-${TMPDIR:-/tmp}}/gloom
printf '#!/usr/bin/env python3\n%s\n' "$GLOOM_PY" >"$GLOOM"
chmod +x "$GLOOM"

gloom() {
	"$GLOOM" "$@"
}

# require_fuse: skip, with the reason, where no FUSE tree can be mounted.
require_fuse() {
	[ -c /dev/fuse ] || skip "no /dev/fuse on this machine"
	[ -r /dev/fuse ] && [ -w /dev/fuse ] || skip "/dev/fuse is not usable by $(id -un)"
	command -v fusermount3 >/dev/null || [ "$(id -u)" = 0 ] ||
		skip "fusermount3 is needed to mount as $(id -un)"
}

# job_ids: the names in $MNT/jobs, one per line.
job_ids() {
	ls "$MNT/jobs"
}

# tree_njobs: how many jobs the tree lists.
tree_njobs() {
	ls "$MNT/jobs" | wc -l
}

# file_is PATH TEXT: PATH reads exactly TEXT (one line, or several); for
# wait_until, which expands its arguments once: this reads PATH each time.
file_is() {
	[ "$(cat "$1")" = "$2" ]
}

# read_line FD: print one line read from FD, consuming no more, within 30 s
# (bash's `read -t` ignores its timeout on anything but a tty or a pipe).
# The bound only ends a hung run: a loaded machine may take seconds.
read_line() {
	timeout 30 bash -c 'IFS= read -r l && printf "%s\n" "$l"' <&"$1"
}

# dir_empty DIR: DIR lists nothing.
dir_empty() {
	[ -z "$(ls -A "$1")" ]
}

# has_open PID PATH: process PID has PATH open.
has_open() {
	ls -l "/proc/$1/fd" 2>/dev/null | grep -qF -- "-> $2"
}

# file_has_lines FILE N: FILE has N lines (for wait_until: it reads FILE each time).
file_has_lines() {
	[ -f "$1" ] && [ "$(wc -l <"$1")" = "$2" ]
}

# assert_tree_healthy: a job submitted through the tree is answered by a
# fresh worker and its response read back.  Bad-input tests end with this.
assert_tree_healthy() {
	local type=health$RANDOM body id out wpid fd
	body="{\"check\":$RANDOM}"
	mkdir "$MNT/types/$type" || return 1
	"$GLOOM" worker "$type" --count 1 >/dev/null &
	wpid=$!
	exec {fd}<>"$MNT/types/$type/queue"
	echo "$body" >&$fd
	id=$(read_line "$fd")
	exec {fd}>&-
	# The bound only ends a hung run: the worker is a Python process
	# that a loaded machine may take seconds to start.
	out=$(timeout 30 cat "$MNT/jobs/$id/response")
	wait "$wpid"
	if [ "$out" != "$body" ]; then
		echo "tree unhealthy: job '$id' answered '$out', expected '$body'" >&2
		return 1
	fi
	if command -v "$JOBCTL" >/dev/null 2>&1 && [ -x "$JOBCTL" ]; then
		assert_daemon_healthy
	fi
}

# on_free_ports FUNC: set P and Q to free ports and run FUNC, again with
# fresh ports if one was taken meanwhile (other daemons run on this host).
on_free_ports() {
	local attempt
	for attempt in 1 2 3 4 5; do
		P=$(random_port) Q=$(random_port)
		[ "$P" != "$Q" ] || continue
		run "$1"
		[[ $output == *"cannot listen"* ]] || break
	done
	[ "$status" = 0 ] || { echo "$output" >&2; return 1; }
	export JOBFS_MASTER_PORT=$P JOBFS_WORKER_PORT=$Q
}

# listener_pid PORT: the pid of the process listening on PORT.
listener_pid() {
	ss -Hltnp "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2
}

# pid_gone PID: no process PID (kill -0 fails).
pid_gone() {
	! kill -0 "$1" 2>/dev/null
}

# stop_detached: SIGTERM the daemon in $DETACHED_PID (one that detached, so
# not our child) and wait until it is gone.  (Not stop_daemon: that one
# reaps its child and checks its exit status.)
DETACHED_PID=
stop_detached() {
	[ -n "$DETACHED_PID" ] || return 0
	kill -TERM "$DETACHED_PID" 2>/dev/null
	if ! wait_until 10 pid_gone "$DETACHED_PID" 2>/dev/null; then
		echo "detached jobfs $DETACHED_PID did not exit within 10s of SIGTERM" >&2
		kill -KILL "$DETACHED_PID"
		DETACHED_PID=
		return 1
	fi
	DETACHED_PID=
}
