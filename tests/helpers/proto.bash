# proto.bash — fast workers and exact frame checks for the protocol tests
# (framing, master, worker, dialect_action, limits, jobctl).
#
# load 'helpers/daemon'; load 'helpers/frames'; load 'helpers/proto'
#
# Connections (conn_open, send, settle, wait_lines, line, received,
# conn_kill ...) and daemon state (daemon_stat PATH, job_status ID) come from
# helpers/conn.bash.
#
# Workers: join_worker W TYPE (a raw seed worker, joined), jobs_of W (the
# job frames it got, as sent), serve W N / respond W BODY (answer them),
# echo_worker TYPE [CAPACITY] (a fast worker in the background).
# Checks: same_json, same_lines, is_error FRAME CODE [ID].  Daemon: rss_kb.
# Checks print what they expected and what they got.

source "$BATS_TEST_DIRNAME/helpers/conn.bash"

# How many jobs each connection has answered, by the pid of its jobctl
# raw (so a connection opened again under the same name starts at 0).
declare -gA CONN_SERVED=()

# jobs_of NAME: the job frames NAME received (either dialect), in order,
# as the daemon sent them.
# The daemon writes a job frame as {"type":"job","id":... (or "action" in
# the action dialect), so a grep finds them without starting jq, which
# costs tens of milliseconds a start and is polled for by wait_jobs.
jobs_of() {
	grep -E '^\{"(type|action)":"job",' "$(conn_file "$1")" || true
}

# conn_njobs NAME: how many jobs worker connection NAME has been given.
conn_njobs() {
	local n
	n=$(jobs_of "$1" | wc -l)
	echo $((n))
}

has_jobs() {
	[ "$(conn_njobs "$1")" -ge "$2" ]
}

# wait_jobs NAME N [SECONDS]: until NAME has received N jobs.
wait_jobs() {
	wait_until "${3:-10}" has_jobs "$1" "$2"
}

# serve NAME N: a seed worker NAME answers N more of its jobs, one at a
# time, in the order they came, each with {"done":ID} (ID as jq reads it:
# integers beyond 2^53 are rounded).
serve() {
	local name=$1 n=$2 i k id pid
	pid=${CONN_PID[$name]}
	for ((i = 1; i <= n; i++)); do
		k=$((CONN_SERVED[$pid] + 1))
		wait_jobs "$name" "$k" || return 1
		id=$(jobs_of "$name" | sed -n "${k}p")
		# A plain string or a short integer id is read in place; jq reads
		# the rest (and rounds integers beyond 2^53 as it does).
		if [[ $id =~ ^\{\"(type|action)\":\"job\",\"id\":(\"[^\"\\]*\"|-?[0-9]{1,15})[,}] ]]; then
			id=${BASH_REMATCH[2]}
		else
			id=$(jq -c .id <<<"$id")
		fi
		send "$name" "{\"type\":\"response\",\"body\":{\"done\":$id}}"
		CONN_SERVED[$pid]=$k
	done
}

# respond NAME BODY: seed worker NAME answers its oldest unanswered job,
# once that job has come (an answer sent before would answer nothing).
respond() {
	local pid=${CONN_PID[$1]} k
	k=$((CONN_SERVED[$pid] + 1))
	wait_jobs "$1" "$k" || return 1
	send "$1" "{\"type\":\"response\",\"body\":$2}"
	CONN_SERVED[$pid]=$k
}

# join_worker NAME TYPE: a seed worker on TYPE whose join has been handled.
join_worker() {
	conn_open "$1" --worker
	send "$1" "{\"type\":\"join\",\"job_type\":\"$2\"}"
	settle "$1"
}

# --------------------------------------------------------------- checks

# same_json A B: equal JSON values, key order aside; prints both if not.
same_json() {
	local a b
	# One jq compares them; only a mismatch starts it again to print both.
	[ "$(jq -n --argjson a "$1" --argjson b "$2" '$a == $b' 2>/dev/null)" != true ] ||
		return 0
	if ! a=$(jq -cS . <<<"$1" 2>/dev/null) || [ -z "$a" ]; then
		printf 'not JSON: %s\n' "$1" >&2
		return 1
	fi
	b=$(jq -cS . <<<"$2")
	if [ "$a" != "$b" ]; then
		printf 'expected: %s\nactual:   %s\n' "$b" "$a" >&2
		return 1
	fi
}

# same_lines ACTUAL EXPECTED: each line is the same JSON (as same_json).
same_lines() {
	local a b
	a=$(jq -cS . <<<"$1" 2>/dev/null) || { printf 'not JSON lines:\n%s\n' "$1" >&2; return 1; }
	b=$(jq -cS . <<<"$2")
	if [ "$a" != "$b" ]; then
		printf 'expected:\n%s\nactual:\n%s\n' "$b" "$a" >&2
		return 1
	fi
}

# is_error FRAME CODE [ID]: FRAME is {"error":CODE,"reason":STRING} plus
# "id":ID when ID (JSON text) is given, and nothing else.
is_error() {
	local frame=$1 code=$2 id=${3-} got want
	if ! got=$(jq -c '[keys, .error, (.reason | type), .id]' <<<"$frame" 2>/dev/null) ||
		[ -z "$got" ]; then
		printf 'not JSON: %s\n' "$frame" >&2
		return 1
	fi
	want="[[\"error\",\"reason\"],\"$code\",\"string\",null]"
	[ -z "$id" ] ||
		want="[[\"error\",\"id\",\"reason\"],\"$code\",\"string\",$(jq -c . <<<"$id")]"
	if [ "$got" != "$want" ]; then
		printf 'expected error %s%s, got: %s\n' "$code" "${id:+ with id $id}" "$frame" >&2
		return 1
	fi
}

# --------------------------------------------------------------- daemon

# rss_kb: the daemon's resident set size in kB.
rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status"
}

# asan_build: the daemon under test runs with AddressSanitizer.
asan_build() {
	nm -D "$JOBFS" 2>/dev/null | grep -q __asan_init ||
		ldd "$JOBFS" 2>/dev/null | grep -q libasan
}

# frame_bytes PAYLOAD: the 4-byte big-endian length and PAYLOAD, as bytes.
frame_bytes() {
	local LC_ALL=C
	local p=$1 n
	n=${#p}
	printf "\\$(printf %03o $((n >> 24 & 255)))\\$(printf %03o $((n >> 16 & 255)))"
	printf "\\$(printf %03o $((n >> 8 & 255)))\\$(printf %03o $((n & 255)))"
	printf '%s' "$p"
}

# frames_from_lines < LINES: each line of input as one frame, bytes exactly.
frames_from_lines() {
	perl -ne 'chomp; print pack("N/a*", $_)'
}

# echo_worker TYPE [CAPACITY]: a fast seed worker (one perl, no process per
# job) that answers every job with its own body, or with a string of
# $ECHO_BYTES bytes if that is set.  With CAPACITY it joins with that
# capacity and names the job in each response.  Ids must not contain the
# text ,"body": for this.
echo_worker() {
	local type=$1 cap=${2:-} dir=$BATS_TEST_TMPDIR fifo join pids
	fifo=$dir/echo_worker.$type.$RANDOM
	mkfifo "$fifo"
	join="{\"type\":\"join\",\"job_type\":\"$type\"${cap:+,\"capacity\":$cap}}"
	(
		conn_close_inherited
		mkfifo "$fifo.out"
		"$JOBCTL" raw --worker -t 600000 <"$fifo" >"$fifo.out" 2>"$fifo.err" &
		pids=$!
		# (perl opens its output first: the other end is opening it to read.)
		JOIN=$join CAP=$cap BYTES=${ECHO_BYTES:-} perl -e '
			$| = 1;
			print "$ENV{JOIN}\n";
			my $fixed = $ENV{BYTES} eq "" ? undef : "\"" . ("a" x $ENV{BYTES}) . "\"";
			while (<STDIN>) {
				next unless /^\{"type":"job","id":(.*?),"body":(.*)\}$/;
				my $body = defined $fixed ? $fixed : $2;
				print $ENV{CAP} eq "" ?
				    "{\"type\":\"response\",\"body\":$body}\n" :
				    "{\"type\":\"response\",\"id\":$1,\"body\":$body}\n";
			}' >"$fifo" <"$fifo.out" &
		pids="$pids $!"
		trap 'kill $pids 2>/dev/null; exit 0' TERM
		wait
	) 3>&- &
	BG_PIDS+=("$!")
}
