#!/usr/bin/env bats
# readme.bats — the README's shell blocks, run as written.
#
# Every ```sh and ```console block of README.md is either run here or
# excused by a <!-- not run: REASON --> comment on the line before its
# fence (systemd, make run itself, ...); a block that is neither fails the
# first test, so a new block gets a test or a reason.  Blocks are known by
# their heading and their place under it ("The web face#2").
#
# Each test runs its blocks in private mount, network and PID namespaces
# (helpers/readme_ns.bash), where the README's fixed ports, /mnt/jobs,
# /tmp/a and /etc/jobfs are free and private; a block that says "with make
# run going" gets the daemon make run starts as root, on its ports.  sh
# blocks run under set -e; in console blocks each command's output must be
# what the README shows (helpers/readme.py).

load 'helpers/daemon'

HELPERS=$BATS_TEST_DIRNAME/helpers
README=$BATS_TEST_DIRNAME/../README.md
S=

# The blocks this file runs, by the test that runs them.
RUN_BLOCKS=(
	"The first minute#1"
	"The first minute#2"
	"The web face#1"
	"The web face#2"
	"Job lifecycle: failures, retries, dead jobs, delays, pauses, limits, dependencies#1"
	"Exposing jobfs#1"
	"Exposing jobfs#2"
	"Exposing jobfs#3"
	"Exposing jobfs#4"
	"Several hosts (Redis)#1"
	"Several hosts (Redis)#2"
	"Several hosts (Redis)#3"
)

setup() {
	S=$(mktemp -d /var/tmp/jobfs-readme.XXXXXX)
	mkdir "$S/blocks"
	python3 "$HELPERS/readme.py" blocks "$README" "$S/blocks" >"$S/blocks/list"
}

teardown() {
	# The namespaces' mounts went with them; only files are left.
	[ -z "$S" ] || rm -rf "$S"
}

# in_ns: run the script on stdin in fresh namespaces (see readme_ns.bash),
# bounded so that a hung block fails the test rather than the run.
in_ns() {
	cat >"$S/scenario.sh"
	[ "$(id -u)" = 0 ] || skip "needs root for namespaces and mounts"
	unshare -m -n -p --mount-proc true 2>/dev/null || skip "cannot make namespaces"
	S=$S JOBFS_BIN=$JOBFS_BIN HELPERS=$HELPERS timeout 120 \
		unshare -m -n -p --fork --kill-child --mount-proc --propagation private \
		bash -c 'set -eE; trap "echo \"failed: \$BASH_COMMAND\" >&2" ERR
			. "$HELPERS/readme_ns.bash"; . "$S/scenario.sh"'
}

@test "every shell block of the README is run here or says why not" {
	local name kind key excuse known run=0 excused=0 k
	while IFS=$'\t' read -r name kind key excuse; do
		known=0
		for k in "${RUN_BLOCKS[@]}"; do
			[ "$k" != "$key" ] || known=1
		done
		if [ -n "$excuse" ]; then
			[ "$known" = 0 ] || { echo "\"$key\" is excused but run here" >&2; return 1; }
			excused=$((excused + 1))
		elif [ "$known" = 1 ]; then
			run=$((run + 1))
		else
			echo "README block \"$key\" ($kind) is neither run by tests/readme.bats nor marked <!-- not run: REASON -->" >&2
			return 1
		fi
	done <"$S/blocks/list"
	# Each block this file runs is still there (a renamed heading moves it).
	for k in "${RUN_BLOCKS[@]}"; do
		grep -qF "	$k	" "$S/blocks/list" || { echo "no README block \"$k\"" >&2; return 1; }
	done
	echo "# $run blocks run, $excused excused" >&3
	[ "$run" -eq "${#RUN_BLOCKS[@]}" ]
	[ "$excused" -ge 1 ]
}

@test "README: the first minute, over TCP and in the tree" {
	in_ns <<'EOF'
readme_console "The first minute#1"
stop_bg
no_jobfs
make_run
readme_console "The first minute#2"
stop_bg
make_run_stop
sanitizers_clean
EOF
}

@test "README: the web face, and Tempest's front on a second daemon beside make run's" {
	command -v curl >/dev/null || skip "curl is not installed"
	command -v jq >/dev/null || skip "jq is not installed"
	in_ns <<'EOF'
make_run
readme_console "The web face#1"
# Tempest's daemon takes ports of its own while make run's holds 9998/9999.
readme_console "The web face#2"
# make run's daemon still serves after it.
stop_bg
build/jobctl ping
make_run_stop
sanitizers_clean
EOF
}

@test "README: the job lifecycle walkthrough, in make run's tree" {
	in_ns <<'EOF'
make_run
readme_sh "Job lifecycle: failures, retries, dead jobs, delays, pauses, limits, dependencies#1"
out=$S/$(basename "$(readme_block "Job lifecycle: failures, retries, dead jobs, delays, pauses, limits, dependencies#1")" .body).out
# What the block's comments say it shows.
grep -qx 'jobctl: job_failed: m1' "$out"
grep -qx m1 "$out"
grep -q '"attempts":\[{"worker"' "$out"
grep -qx waiting "$out"
[ "$(cat /mnt/jobs/types/api/limit)" = 5 ]
[ "$(cat /mnt/jobs/types/api/retries)" = "3 500" ]
[ "$(wc -l </mnt/jobs/types/remind/delayed)" = 1 ]
make_run_stop
sanitizers_clean
EOF
}

@test "README: exposing jobfs, tried on one machine" {
	command -v openssl >/dev/null || skip "openssl is not installed"
	in_ns <<'EOF'
export PATH=$PWD/build:$PATH
readme_sh "Exposing jobfs#1"
readme_wait 20 test -e /mnt/jobs/README
# The worker host, as the text sets it up: ca.pem copied, gpu1's token in
# a file only its user reads, and the daemon's host name resolving (here
# to this machine, in this namespace's /etc/hosts).
mkdir "$S/worker"
cp /etc/jobfs/ca.pem "$S/worker/"
(umask 077; awk '$1 == "gpu1" { print $3 }' /etc/jobfs/tokens >~/.jobfs-token)
printf '#!/bin/sh\ntr a-z A-Z\n' >"$S/worker/render.sh"
chmod +x "$S/worker/render.sh"
echo '127.0.0.1 jobs.example.org' >>/etc/hosts
(cd "$S/worker" && . "$(readme_block "Exposing jobfs#2")") >"$S/worker.out" 2>&1 &
worker=$!
# It joined over TLS with its token, by host name.
readme_wait 20 grep -q . /mnt/jobs/types/render/workers || { cat "$S/worker.out" >&2; exit 1; }
readme_stop "$worker"
# The web face's HTTPS, by host name, with the CA and ops's token.
readme_sh "Exposing jobfs#3"
out=$S/$(basename "$(readme_block "Exposing jobfs#3")" .body).out
jq -e '.http.https == true' "$out" >/dev/null || { cat "$out" >&2; exit 1; }
readme_console "Exposing jobfs#4"
stop_bg
readme_wait 20 no_jobfs
sanitizers_clean
EOF
}

@test "README: several hosts on one machine, through one Redis" {
	command -v redis-server >/dev/null || skip "redis-server is not installed"
	command -v redis-cli >/dev/null || skip "redis-cli is not installed"
	in_ns <<'EOF'
readme_sh "Several hosts (Redis)#1"
readme_wait 20 test -e /tmp/a/README
readme_wait 20 test -e /tmp/b/README
readme_console "Several hosts (Redis)#2"
# "A quarter of a second after they change": until tree A lists B's worker.
readme_wait 20 grep -q . /tmp/a/types/echo/workers
readme_console "Several hosts (Redis)#3"
stop_bg
# The README's way to stop it all.
fusermount3 -u /tmp/a; fusermount3 -u /tmp/b; redis-cli -p 6390 shutdown nosave
readme_wait 20 no_jobfs
sanitizers_clean
EOF
}
