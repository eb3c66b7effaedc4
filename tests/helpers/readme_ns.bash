# readme_ns.bash — the machine the README speaks to, in private namespaces.
#
# Sourced by bash as the first process of new mount, network and PID
# namespaces (tests/readme.bats: in_ns), with S (a scratch directory),
# JOBFS_BIN and HELPERS set.  So that the README's blocks run as written
# (fixed ports, /mnt/jobs, /tmp/a, /etc/jobfs, ~/.jobfs-token) without
# touching the host or other tests: loopback is private, /mnt and /tmp are
# fresh tmpfs, /etc is an overlay whose writes land in $S, HOME is in $S,
# and the working directory stands for the top of the source tree (its
# build/ is the build under test).  When this shell exits, the kernel ends
# every process left in the namespace.

set -u
ip link set lo up
mount -t tmpfs tmpfs /mnt
mkdir /mnt/jobs
# The tree under test may itself live under /tmp (a clone there): the old
# /tmp stays reachable under $S/oldtmp, and paths into it are moved there.
mkdir -p "$S/oldtmp"
mount --bind /tmp "$S/oldtmp"
mount -t tmpfs tmpfs /tmp
case $JOBFS_BIN in /tmp/*) JOBFS_BIN=$S/oldtmp/${JOBFS_BIN#/tmp/} ;; esac
case $HELPERS in /tmp/*) HELPERS=$S/oldtmp/${HELPERS#/tmp/} ;; esac
mkdir -p "$S/etc.up" "$S/etc.work" "$S/home" "$S/top" "$S/san"
mount -t overlay overlay \
	-o "lowerdir=/etc,upperdir=$S/etc.up,workdir=$S/etc.work" /etc
export HOME=$S/home
ln -s "$JOBFS_BIN" "$S/top/build"
# curl draws no progress meter on a terminal; here its output is a file.
echo no-progress-meter >"$HOME/.curlrc"
cd "$S/top"
unset JOBFS_MASTER_PORT JOBFS_WORKER_PORT JOBFS_TOKEN
# Sanitizer reports of every process, detached daemons too, land in $S/san.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:exitcode=86}:log_path=$S/san/asan"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=87}:log_path=$S/san/ubsan"

# readme_wait SECONDS CMD...: poll CMD every 50 ms until it succeeds.
readme_wait() {
	local limit=$1 i
	shift
	for ((i = 0; i < limit * 20; i++)); do
		"$@" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "timed out after ${limit}s waiting for: $*" >&2
	return 1
}

port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# readme_wait_port PORT: until something listens on PORT (loopback here is
# this namespace's own, so it can only be the daemon just started).
readme_wait_port() {
	readme_wait 20 port_open "$1"
}

# readme_block KEY: the file holding the block KEY ("HEADING#N").
readme_block() {
	local f
	f=$(awk -F '\t' -v k="$1" '$3 == k { print $1 }' "$S/blocks/list")
	[ -n "$f" ] || { echo "no README block $1" >&2; return 1; }
	echo "$S/blocks/$f.body"
}

# readme_sh KEY: run sh block KEY as written, as a script under set -e,
# from the top of the tree; its output goes to $S/NAME.out, shown if it
# fails.
readme_sh() {
	local body out status
	body=$(readme_block "$1") || return 1
	out=$S/$(basename "$body" .body).out
	status=0
	(set -e; . "$body") >"$out" 2>&1 </dev/null || status=$?
	if [ "$status" != 0 ]; then
		echo "README block \"$1\" failed (status $status):" >&2
		cat "$out" >&2
	fi
	return "$status"
}

# readme_console KEY: run console block KEY, each command in one shell as
# if typed, and compare what each prints with what the README shows.
# What it leaves in the background (its terminals, its "&" commands) runs
# on, for the blocks after it, until stop_bg.
readme_console() {
	local body dir status
	body=$(readme_block "$1") || return 1
	dir=$S/$(basename "$body" .body).console
	mkdir -p "$dir"
	python3 "$HELPERS/readme.py" console "$body" "$dir" || return 1
	(set +e; READMEOUT=$dir; . "$dir/script.sh") </dev/null
	status=0
	python3 "$HELPERS/readme.py" check "$dir" || status=$?
	[ "$status" = 0 ] || echo "README block \"$1\" printed otherwise" >&2
	[ ! -e "$dir/pids" ] || cat "$dir/pids" >>"$S/bg.pids"
	return "$status"
}

# stop_bg: stop what the console blocks so far left in the background.
stop_bg() {
	[ -e "$S/bg.pids" ] || return 0
	# shellcheck disable=SC2046
	readme_stop $(cat "$S/bg.pids") || return 1
	rm "$S/bg.pids"
}

# jobfs_pids: the daemons running in this namespace.
jobfs_pids() {
	pgrep -x jobfs
}

no_jobfs() {
	! pgrep -x jobfs >/dev/null
}

# readme_stop PID...: SIGTERM each and wait until it is gone.
readme_stop() {
	local p
	for p in "$@"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "$@"; do
		readme_wait 10 test ! -e "/proc/$p" || return 1
	done
}

MAKE_RUN_PID=
# make_run: what `make run` runs as root (its tree on /mnt/jobs, the web
# face on 9997, jobs kept in a data directory), ready once its tree is
# mounted and its ports answer.
make_run() {
	build/jobfs -f --data "$S/data" --http 9997 /mnt/jobs >"$S/make_run.log" 2>&1 &
	MAKE_RUN_PID=$!
	readme_wait 20 test -e /mnt/jobs/README || { cat "$S/make_run.log" >&2; return 1; }
	readme_wait_port 9997
	readme_wait_port 9998
}

# make_run_stop: Ctrl-C, and the daemon exits 0.
make_run_stop() {
	local status=0
	kill -INT "$MAKE_RUN_PID"
	wait "$MAKE_RUN_PID" || status=$?
	[ "$status" = 0 ] || { echo "jobfs exited with $status" >&2; cat "$S/make_run.log" >&2; }
	return "$status"
}

# sanitizers_clean: no process reported anything.
sanitizers_clean() {
	local f
	for f in "$S"/san/*; do
		[ -e "$f" ] || continue
		echo "sanitizer report $f:" >&2
		cat "$f" >&2
		return 1
	done
	! grep -rlE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$S" --include='*.out' --include='*.log' >&2
}
