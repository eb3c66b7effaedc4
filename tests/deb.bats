#!/usr/bin/env bats
# deb.bats — the Debian package (debian/, `make deb`): built (or reused,
# when build/ holds one newer than the sources), installed with dpkg -i,
# its daemon started the way jobfs.service would start it (the unit's
# User=, RuntimeDirectory= and ExecStart= with /etc/default/jobfs: there is
# no systemd as PID 1 here), a job through the tree and through a worker
# started from jobfs-worker@.service's command line, then purged.
#
# One test, so that two installs never overlap; the other tests run the
# binaries of $JOBFS_BIN, never /usr/bin/jobfs.  The package also ships
# /sbin/mount.fuse.jobfs, which mount_helper.bats links to its build for a
# while: both hold $BATS_RUN_TMPDIR/sbin-helper.lock meanwhile.

load 'helpers/daemon'
load 'helpers/fs'

TOP=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
INSTALLED=
WORKER_PID=
TREE=
CONF=

setup() {
	[ "$(id -u)" = 0 ] || skip "dpkg -i needs root"
	command -v dpkg-buildpackage >/dev/null ||
		skip "dpkg-buildpackage is not installed (make test installs it: DEB_DEPS)"
	command -v dh >/dev/null || skip "debhelper is not installed (make test installs it: DEB_DEPS)"
	command -v lintian >/dev/null || skip "lintian is not installed (make test installs it: DEB_DEPS)"
	require_fuse
	if dpkg -s jobfs >/dev/null 2>&1; then
		skip "a jobfs package is installed on this machine: not replacing it"
	fi
}

teardown() {
	local status=0
	[ -z "$WORKER_PID" ] || kill -TERM "$WORKER_PID" 2>/dev/null
	[ -z "$WORKER_PID" ] || wait "$WORKER_PID" 2>/dev/null
	daemon_teardown || status=1
	if [ -n "$TREE" ] && tree_mounted; then
		echo "the tree is still mounted" >&2
		fusermount3 -u -z "$TREE" 2>/dev/null || umount -l "$TREE"
		status=1
	fi
	[ -z "$CONF" ] || rm -f "$CONF"
	if [ -n "$INSTALLED" ]; then
		dpkg --purge jobfs >&2 || status=1
	fi
	return "$status"
}

# unit_keys UNIT KEY: the values of KEY= in the unit file, one a line.
unit_keys() {
	sed -n "s/^$2=//p" "$1"
}

# unit_key UNIT KEY: the value of KEY= in the unit file (the last one).
unit_key() {
	unit_keys "$@" | tail -n 1
}

# unit_cmd LINE INSTANCE: the command line LINE (of ExecStart= ...), one
# word per line, as systemd would run it: its "-" prefix dropped, %i
# replaced by INSTANCE, $VAR split into words and ${VAR} kept whole, the
# variables taken from the environment (see env_file).
unit_cmd() {
	local line=$1 w v
	line=${line#-}
	line=${line//%i/$2}
	read -ra words <<<"$line"
	for w in "${words[@]}"; do
		if [[ $w =~ ^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$ ]]; then
			printf '%s\n' "${!BASH_REMATCH[1]}"
		elif [[ $w =~ ^\$([A-Za-z_][A-Za-z0-9_]*)$ ]]; then
			v=${!BASH_REMATCH[1]}
			read -ra split <<<"$v"
			[ ${#split[@]} -eq 0 ] || printf '%s\n' "${split[@]}"
		else
			printf '%s\n' "$w"
		fi
	done
}

# env_file FILE: export FILE's assignments (EnvironmentFile=), as systemd
# reads them: KEY=VALUE lines, VALUE in optional double quotes.
env_file() {
	local k v
	while IFS='=' read -r k v; do
		[[ $k =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
		v=${v#\"}
		v=${v%\"}
		export "$k=$v"
	done <"$1"
}

# as_jobfs CMD...: CMD as the jobfs user (root may not enter its tree).
as_jobfs() {
	setpriv --reuid=jobfs --regid=jobfs --init-groups -- "$@"
}

tree_mounted() {
	awk -v t="$TREE" '$5 == t { found = 1 } END { exit !found }' /proc/self/mountinfo
}

process_user() {
	[ "$(ps -o user= -p "$1" | tr -d ' ')" = "$2" ]
}

worker_joined() {
	grep -q '^workers 1$' <(as_jobfs cat "$TREE/types/debtest/stats" 2>/dev/null)
}

@test "make deb builds a package whose daemon and worker run as jobfs from their units' command lines; purge leaves only the jobfs user" {
	local lock ver arch deb unit wunit user mp wp hp cmd wcmd id line

	# Build it (make reuses build/jobfs_*.deb when it is newer than every
	# source); make deb fails on any lintian error.
	run make -C "$TOP" --no-print-directory deb
	echo "$output" | tail -n 20
	[ "$status" -eq 0 ]
	ver=$(sed -n 's/^#define JOBFS_VERSION "\(.*\)"/\1/p' "$TOP/src/base/base.h")
	arch=$(dpkg --print-architecture)
	deb=$TOP/build/jobfs_${ver}_$arch.deb
	[ -s "$deb" ]

	exec {lock}>"$BATS_RUN_TMPDIR/sbin-helper.lock"
	flock -w 600 "$lock"
	INSTALLED=1
	run dpkg -i "$deb"
	echo "$output"
	[ "$status" -eq 0 ]
	# The user, its data directory, the conffile.
	getent passwd jobfs
	[ "$(stat -c %U:%a /var/lib/jobfs)" = jobfs:750 ]
	grep -qx /etc/default/jobfs /var/lib/dpkg/info/jobfs.conffiles
	[ -x /sbin/mount.fuse.jobfs ]
	bash -n /usr/share/bash-completion/completions/jobctl
	bash -n /usr/share/bash-completion/completions/jobfs

	# Free ports through the defaults file; installing the package again
	# (an upgrade to the same version) keeps the administrator's change.
	mp=$(random_port)
	wp=$(random_port)
	hp=$(random_port)
	printf 'JOBFS_OPTS="--master-port %s --worker-port %s --http 127.0.0.1:%s"\n' \
		"$mp" "$wp" "$hp" >/etc/default/jobfs
	run dpkg -i "$deb"
	[ "$status" -eq 0 ]
	grep -q "^JOBFS_OPTS=\"--master-port $mp " /etc/default/jobfs

	# Start the daemon as the unit would: its directories, owned by its
	# user; its ExecStartPre= and ExecStart= as that user.
	unit=/lib/systemd/system/jobfs.service
	user=$(unit_key "$unit" User)
	[ "$user" = jobfs ]
	[ "$(unit_key "$unit" Type)" = notify ]
	env_file "$(unit_key "$unit" EnvironmentFile | sed 's/^-//')"
	install -d -o "$user" -g "$user" -m "$(unit_key "$unit" RuntimeDirectoryMode)" \
		"/run/$(unit_key "$unit" RuntimeDirectory)"
	[ "$(unit_key "$unit" StateDirectory)" = jobfs ]
	# ExecStartPre=: a "-" one may fail (the unmount of a stale tree).
	while read -r line; do
		mapfile -t cmd < <(unit_cmd "$line")
		if [ "${line:0:1}" = - ]; then
			setpriv --reuid="$user" --regid="$user" --init-groups -- "${cmd[@]}" || true
		else
			setpriv --reuid="$user" --regid="$user" --init-groups -- "${cmd[@]}"
		fi
	done < <(unit_keys "$unit" ExecStartPre)
	mapfile -t cmd < <(unit_cmd "$(unit_key "$unit" ExecStart)")
	[ "${cmd[0]}" = /usr/bin/jobfs ]
	TREE=${cmd[-1]}
	[ "$TREE" = /run/jobfs/tree ]
	DAEMON_LOG=$BATS_TEST_TMPDIR/daemon.log
	setpriv --reuid="$user" --regid="$user" --init-groups -- \
		"${cmd[@]}" >"$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	wait_until 30 grep -q ' workers on ' "$DAEMON_LOG"
	wait_until 30 tree_mounted
	wait_until 10 as_jobfs test -e "$TREE/README"
	process_user "$DAEMON_PID" jobfs
	grep -q "127.0.0.1:$mp" "$DAEMON_LOG"
	# The packaged defaults' web face answers.
	run curl -sf "http://127.0.0.1:$hp/"
	[ "$status" -eq 0 ]

	# A worker from jobfs-worker@.service's command line and a test conf.
	wunit=/lib/systemd/system/jobfs-worker@.service
	[ -z "$(unit_key "$wunit" User)" ]
	[ -d /etc/jobfs/workers ]
	CONF=/etc/jobfs/workers/debtest.conf
	cat >"$CONF" <<-EOF
		TYPE=debtest
		COMMAND="tr a-z A-Z"
		WORK_OPTS="--name debtest-1"
		JOBCTL_OPTS="-w $wp"
	EOF
	mapfile -t wcmd < <(unit_cmd "$(unit_key "$wunit" ExecStart)" debtest)
	[ "${wcmd[*]}" = "/usr/libexec/jobfs/jobfs-worker debtest" ]
	"${wcmd[@]}" >"$BATS_TEST_TMPDIR/worker.log" 2>&1 &
	WORKER_PID=$!
	as_jobfs mkdir "$TREE/types/debtest"
	wait_until 30 worker_joined
	process_user "$WORKER_PID" jobfs

	# A job through the tree (as the jobfs user, its owner) ...
	as_jobfs sh -c "echo '\"through the tree\"' >$TREE/types/debtest/queue"
	id=$(as_jobfs ls "$TREE/jobs")
	[ -n "$id" ]
	wait_until 30 as_jobfs grep -qx done "$TREE/jobs/$id/status"
	[ "$(as_jobfs cat "$TREE/jobs/$id/response")" = '"THROUGH THE TREE"' ]
	# ... and one through TCP, with the packaged jobctl.
	run timeout 30 /usr/bin/jobctl -m "$mp" submit debtest '"over tcp"'
	[ "$status" -eq 0 ]
	[ "$output" = '"OVER TCP"' ]

	# A conf may name another user; a conf missing its command is refused
	# with status 2, which the unit does not restart.
	[ "$(unit_key "$wunit" RestartPreventExitStatus)" = 2 ]
	printf 'TYPE=debtest\n' >/etc/jobfs/workers/debtest-bad.conf
	run /usr/libexec/jobfs/jobfs-worker debtest-bad
	rm /etc/jobfs/workers/debtest-bad.conf
	[ "$status" -eq 2 ]
	[[ $output == *"no COMMAND"* ]]
	cat "$BATS_TEST_TMPDIR/worker.log"
	kill -TERM "$WORKER_PID"
	wait "$WORKER_PID" || true
	WORKER_PID=
	cat >"$CONF" <<-EOF
		TYPE=debtest
		COMMAND="rev"
		USER=nobody
		JOBCTL_OPTS="-w $wp"
	EOF
	"${wcmd[@]}" >"$BATS_TEST_TMPDIR/worker.log" 2>&1 &
	WORKER_PID=$!
	# (the submit below waits for it, should the daemon still count the
	# first worker)
	wait_until 30 process_user "$WORKER_PID" nobody
	run timeout 30 /usr/bin/jobctl -m "$mp" submit debtest '"abc"'
	[ "$status" -eq 0 ]
	[ "$output" = '"cba"' ]

	# Stop both (teardown checks the daemon's clean exit), then purge.
	kill -TERM "$WORKER_PID"
	wait "$WORKER_PID" || true
	WORKER_PID=
	stop_daemon
	DAEMON_PID=
	wait_until 10 sh -c '! awk -v t="$1" "\$5 == t { f = 1 } END { exit !f }" /proc/self/mountinfo' - "$TREE"
	rm "$CONF"
	CONF=
	run dpkg --purge jobfs
	echo "$output"
	[ "$status" -eq 0 ]
	INSTALLED=
	run dpkg -s jobfs
	[ "$status" -ne 0 ]
	# Nothing left but the jobfs user (Debian keeps system users).
	[ ! -e /etc/default/jobfs ]
	[ ! -e /etc/jobfs ]
	[ ! -e /var/lib/jobfs ]
	[ ! -e /run/jobfs ]
	[ ! -e /usr/bin/jobfs ]
	[ ! -e /usr/bin/jobctl ]
	[ ! -e /usr/libexec/jobfs ]
	[ ! -e /lib/systemd/system/jobfs.service ]
	[ ! -e /lib/systemd/system/jobfs-worker@.service ]
	[ ! -e /etc/systemd/system/multi-user.target.wants/jobfs.service ]
	[ ! -e /var/lib/systemd/deb-systemd-helper-enabled/jobfs.service.dsh-also ]
	run ls /var/lib/dpkg/info/jobfs.list
	[ "$status" -ne 0 ]
	getent passwd jobfs
}
