#!/usr/bin/env bats
# redis_functions.bats — the jobfs_1 Redis function library
# (src/store/redis_scripts.lua) loaded into a real redis-server and
# driven with FCALL as the daemon drives it (notes/redis_api.md): replies,
# key contents, and the events published on P:d:N and P:x, caught by a
# PSUBSCRIBE of P:* running beside the test.

load 'helpers/daemon'
load 'helpers/redis'

P=t
INT64_MAX=9223372036854775807
INT64_MIN=$((-9223372036854775807 - 1))

setup() {
	redis_start
	redis_load_functions
	EV=$BATS_TEST_TMPDIR/events
	EV_FROM=0
	SYNC=0
	redis-cli -p "$REDIS_PORT" PSUBSCRIBE "$P:*" >"$EV" 2>&1 &
	BG_PIDS+=("$!")
	wait_until 5 numpat_is 1
}

teardown() {
	daemon_teardown
	redis_teardown
}

numpat_is() {
	[ "$(rcli PUBSUB NUMPAT)" = "$1" ]
}

# fc NAME N ARGS...: FCALL jobfs_NAME 0 P N ARGS...
fc() {
	local name=$1 n=$2
	shift 2
	rcli FCALL "jobfs_$name" 0 "$P" "$n" "$@"
}

# p16 PRIO: the member's priority part, as the daemon computes it:
# 16 lowercase hex of (uint64)(INT64_MAX - PRIO) (bash wraps like C).
p16() {
	printf '%016x' $((INT64_MAX - ($1)))
}

# submit N SPEC...: one jobfs_submit from daemon N with a group per SPEC,
# "KEY [TYPE [PRIO [FLAGS [TIMEOUT [TARGET [SRC]]]]]]" ('-': empty).
# The id JSON is "KEY", the body body-KEY, the owner empty.
submit() {
	local n=$1 spec key T pr fl to tg src a=()
	shift
	for spec; do
		read -r key T pr fl to tg src <<<"$spec"
		T=${T:-echo} pr=${pr:-0} to=${to:-0} src=${src:-src-$key}
		[ "${fl:--}" != - ] || fl=
		[ "${tg:--}" != - ] || tg=
		a+=("$key" "$(p16 "$pr")" "$T" "\"$key\"" "body-$key" "$pr" "$fl" "$to" "$tg" "$src" "")
	done
	fc submit "$n" "${a[@]}"
}

# dispatch N T WNAME SLOTS...: the reply's keys (field 2 of each group of 14).
dispatch_keys() {
	local n=$1 T=$2
	shift 2
	fc dispatch "$n" "$T" "$@" | awk 'NR % 14 == 2' | tr '\n' ' '
}

# hget KEY FIELD: a field of the job KEY.
hget() {
	rcli HGET "$P:j:$1" "$2"
}

# tstat T FIELD: a counter of type T (0 when absent).
tstat() {
	local v
	v=$(rcli HGET "$P:t:$1" "$2")
	echo "${v:-0}"
}

# Events: the subscriber's output as "CHANNEL MESSAGE" lines.
ev_all() {
	awk '$0 == "pmessage" && s == 0 { s = 1; next }
		s == 1 { s = 2; next }
		s == 2 { ch = $0; s = 3; next }
		s == 3 { print ch " " $0; s = 0; next }' "$EV"
}

ev_has() {
	ev_all | grep -qxF -- "$1"
}

# ev_sync: every message published so far has reached the file (one
# connection, one subscriber: messages arrive in publishing order).
ev_sync() {
	SYNC=$((SYNC + 1))
	rcli PUBLISH "$P:sync" "$SYNC" >/dev/null
	wait_until 10 ev_has "$P:sync $SYNC"
}

# ev_mark: later ev_on calls show only what is published after this.
ev_mark() {
	ev_sync
	EV_FROM=$(ev_all | wc -l)
}

# ev_on CHANNEL: the messages on P:CHANNEL since the last ev_mark, one a line.
ev_on() {
	ev_sync
	ev_all | tail -n +$((EV_FROM + 1)) | awk -v c="$P:$1" \
		'substr($0, 1, length(c) + 1) == c " " { print substr($0, length(c) + 2) }'
}

lines() {
	printf '%s\n' "$@"
}

# hello N INFO LEASE [EPOCH]: jobfs_hello's number and fresh flag, a line
# each (without the epoch it answers last).
hello() {
	fc hello "$@" | head -n 2
}

@test "the library loads as jobfs_1 with every function of the contract" {
	run rcli FUNCTION LIST LIBRARYNAME jobfs_1
	[ "$status" -eq 0 ]
	local f
	for f in hello submit dispatch complete partial requeue end forget watch worker leases pin reap \
		list workers_put workers submit_life fail due kick dead config configs; do
		echo "$output" | grep -qx "jobfs_$f"
	done
	[ "$(echo "$output" | grep -cx 'jobfs_[a-z_]*')" -eq 23 ]
	echo "$output" | grep -qx no-cluster
	# Loading again replaces it (the daemon loads it on every connection).
	redis_load_functions
}

@test "hello: a new daemon gets a number, a known one keeps it, a dead or unknown one gets a new one" {
	run hello 0 'host-a 101 1700000000 1.0' 5000
	[ "$output" = "$(lines 1 1)" ]
	[ "$(rcli HGET $P:daemons 1)" = 'host-a 101 1700000000 1.0' ]
	[ "$(rcli GET $P:hb:1)" = 'host-a 101 1700000000 1.0' ]
	local ttl
	ttl=$(rcli PTTL $P:hb:1)
	[ "$ttl" -gt 0 ]
	[ "$ttl" -le 5000 ]

	run hello 0 'host-b 102 1700000000 1.0' 5000
	[ "$output" = "$(lines 2 1)" ]
	# Known: same number, info and lease refreshed.
	run hello 1 'host-a 101 1700000001 1.0' 60000
	[ "$output" = "$(lines 1 0)" ]
	[ "$(rcli HGET $P:daemons 1)" = 'host-a 101 1700000001 1.0' ]
	[ "$(rcli PTTL $P:hb:1)" -gt 5000 ]
	# A number this Redis never gave (e.g. after a wipe): a fresh one.
	run hello 9 'host-c 103 1700000000 1.0' 5000
	[ "$output" = "$(lines 3 1)" ]
	[ -z "$(rcli HGET $P:daemons 9)" ]
	# Dead (being reclaimed): a fresh one; the dead record is left to the reaper.
	rcli HSET $P:daemons 2 dead
	run hello 2 'host-b 102 1700000000 1.0' 5000
	[ "$output" = "$(lines 4 1)" ]
	[ "$(rcli HGET $P:daemons 2)" = dead ]
	[ "$(rcli GET $P:nd)" = 4 ]
}

@test "hello: the first writes P:epoch; one that saw another (the data was lost) gets a new number" {
	local e e2
	run fc hello 0 'host-a 1 0 v' 5000
	e=$(rcli GET $P:epoch)
	[ -n "$e" ]
	[ "$output" = "$(lines 1 1 "$e")" ]
	# The epoch it saw: a known daemon keeps its number.
	[ "$(fc hello 1 'host-a 1 0 v' 5000 "$e")" = "$(lines 1 0 "$e")" ]
	# The data goes; another daemon says hello first and is number 1.
	rcli FLUSHALL >/dev/null
	run fc hello 0 'host-b 2 0 v' 5000
	e2=$(rcli GET $P:epoch)
	[ -n "$e2" ]
	[ "$e2" != "$e" ]
	[ "$output" = "$(lines 1 1 "$e2")" ]
	# Number 1 of the old data is not number 1 of the new one.
	[ "$(fc hello 1 'host-a 1 0 v' 5000 "$e")" = "$(lines 2 1 "$e2")" ]
	[ "$(rcli HGET $P:daemons 1)" = 'host-b 2 0 v' ]
	[ "$(rcli GET $P:epoch)" = "$e2" ]
}

@test "submit: ok writes the job, its member, counters and t+; exists; a re-send answers ok and writes nothing" {
	run submit 1 "a echo 7 on 0 - tok-1"
	[ "$output" = ok ]
	[ "$(hget a t)" = echo ]
	[ "$(hget a id)" = '"a"' ]
	[ "$(hget a b)" = body-a ]
	[ "$(hget a pr)" = 7 ]
	[ "$(hget a st)" = queued ]
	[ "$(hget a fl)" = on ]
	[ "$(hget a o)" = 1 ]
	[ "$(hget a src)" = tok-1 ]
	[ "$(hget a att)" = 0 ]
	[ "$(hget a ls)" = 0 ]
	[ "$(hget a np)" = 0 ]
	[ "$(hget a tg)" = '' ]
	[ "$(hget a m)" = "$(p16 7)0000000000000001a" ]
	[ "$(rcli ZRANGE $P:q:echo 0 -1)" = "$(p16 7)0000000000000001a" ]
	[ "$(rcli ZSCORE $P:all a)" = 1 ]
	[ "$(rcli SMEMBERS $P:own:1)" = a ]
	[ "$(rcli SMEMBERS $P:types)" = echo ]
	[ "$(tstat echo queued)" = 1 ]
	[ "$(tstat echo submitted)" = 1 ]
	[ "$(rcli HGET $P:stats submitted)" = 1 ]
	[ "$(ev_on x)" = 't+ echo' ]

	# Same key, another submission: exists. The same submission again
	# (its reply was lost): ok, and nothing written.
	ev_mark
	run submit 2 "a echo 7 - 0 - tok-2" "a echo 7 on 0 - tok-1"
	[ "$output" = "$(lines exists ok)" ]
	[ "$(rcli GET $P:seq)" = 1 ]
	[ "$(hget a src)" = tok-1 ]
	[ "$(tstat echo submitted)" = 1 ]
	[ "$(rcli ZCARD $P:q:echo)" = 1 ]
	[ -z "$(ev_on x)" ]
	# Flag i: the id is the key, no id field.
	run fc submit 1 b "$(p16 0)" echo '' body-b 0 i 0 '' tok-b ''
	[ "$output" = ok ]
	[ "$(rcli HEXISTS $P:j:b id)" = 0 ]
	[ "$(rcli SCARD $P:own:1)" = 1 ]
}

@test "submit: a finished job's key is taken again: its old record is forgotten first, without events" {
	submit 1 "k echo 0 - 0 - tok-1"
	fc dispatch 2 echo w 1 >/dev/null
	fc partial 2 k 1 1 '"p1"' >/dev/null
	[ "$(fc complete 2 k 1 done '"r1"')" = ok ]
	[ "$(rcli LLEN $P:p:k)" = 1 ]
	[ "$(tstat echo kept)" = 1 ]
	ev_mark
	# Its old submission re-sent still answers ok (nothing written) ...
	[ "$(submit 1 "k echo 0 - 0 - tok-1")" = ok ]
	[ "$(hget k st)" = done ]
	# ... a new one replaces it.
	run submit 3 "k echo 5 - 0 - tok-2"
	[ "$output" = ok ]
	[ "$(hget k st)" = queued ]
	[ "$(hget k o)" = 3 ]
	[ "$(hget k src)" = tok-2 ]
	[ "$(hget k r)" = '' ]
	[ "$(hget k fd)" = '' ]
	[ "$(hget k att)" = 0 ]
	[ "$(rcli EXISTS $P:p:k)" = 0 ]
	[ "$(rcli ZSCORE $P:done k)" = '' ]
	[ "$(rcli ZSCORE $P:all k)" = 2 ]
	[ "$(hget k m)" = "$(p16 5)0000000000000002k" ]
	[ "$(tstat echo kept)" = 0 ]
	[ "$(tstat echo submitted)" = 2 ]
	[ -z "$(ev_on d:1)" ]
	[ -z "$(ev_on d:2)" ]
}

@test "dispatch order: higher priority first, then submission order, across submits and daemons" {
	# The daemon's PRIO16 at the int64 edges.
	[ "$(p16 $INT64_MAX)" = 0000000000000000 ]
	[ "$(p16 0)" = 7fffffffffffffff ]
	[ "$(p16 $INT64_MIN)" = ffffffffffffffff ]
	[ "$(p16 1)" = 7ffffffffffffffe ]
	[ "$(p16 -1)" = 8000000000000000 ]

	submit 1 "z0 echo 0" "min echo $INT64_MIN"
	submit 2 "m1 echo -1" "one echo 1"
	submit 1 "max echo $INT64_MAX" "z1 echo 0"
	submit 2 "min2 echo $INT64_MIN" "max2 echo $INT64_MAX" "m1b echo -1"
	[ "$(hget max pr)" = $INT64_MAX ]
	[ "$(hget min pr)" = $INT64_MIN ]
	local order='' k
	for _ in 1 2 3 4 5 6 7 8 9; do
		k=$(dispatch_keys 3 echo w 1)
		order+=$k
	done
	[ "$order" = 'max max2 one z0 z1 m1 m1b min min2 ' ]
	[ "$(dispatch_keys 3 echo w 1)" = '' ]
	[ "$(tstat echo queued)" = 0 ]
	[ "$(tstat echo running)" = 9 ]
}

@test "dispatch: a targeted queue merges with the untargeted one by member; P:tg follows" {
	submit 1 "a echo 0" "b echo 5 - 0 w1" "c echo 9 - 0 w2" "d echo 0" "e echo 0 - 0 w1"
	[ "$(rcli ZRANGE $P:qt:4:echo:w1 0 -1 | tr '\n' ' ')" = "$(p16 5)0000000000000002b $(p16 0)0000000000000005e " ]
	[ "$(rcli SMEMBERS $P:tg:echo | sort | tr '\n' ' ')" = 'w1 w2 ' ]
	[ "$(hget b tg)" = w1 ]
	# w1 takes its own b first (priority 5), then the untargeted ones and its
	# own e in submission order; never w2's c.
	[ "$(dispatch_keys 1 echo w1 4)" = 'b a d e ' ]
	[ "$(rcli EXISTS $P:qt:4:echo:w1)" = 0 ]
	[ "$(rcli SMEMBERS $P:tg:echo)" = w2 ]
	[ "$(dispatch_keys 1 echo w3 1)" = '' ]
	[ "$(dispatch_keys 2 echo w2 1)" = 'c ' ]
	[ "$(hget c wk)" = w2@2 ]
	[ "$(rcli EXISTS $P:tg:echo)" = 0 ]
	# A type holding ':' keeps targeted queues apart (LEN prefix).
	submit 1 "x a:b 0 - 0 w"
	[ "$(rcli ZCARD $P:qt:3:a:b:w)" = 1 ]
	[ "$(dispatch_keys 1 a:b w 1)" = 'x ' ]
}

@test "dispatch: the reply's 14 fields, leases, slots and the idle set" {
	local lines
	submit 1 "a echo 3 sn 60000"
	mapfile -t lines < <(fc dispatch 2 echo w1 2 w2 1)
	[ "${#lines[@]}" -eq 14 ]
	[ "${lines[0]}" = 1 ]      # widx
	[ "${lines[1]}" = a ]      # key
	[ "${lines[2]}" = 1 ]      # att
	[ "${lines[3]}" = '"a"' ]  # id JSON
	[ "${lines[4]}" = body-a ] # body
	[ "${lines[5]}" = 3 ]      # priority
	[ "${lines[6]}" = sn ]     # flags
	[ "${lines[7]}" = 60000 ]  # timeout ms
	[ "${lines[8]}" = '' ]     # target
	[ "${lines[9]}" = 1 ]      # origin
	[ "${lines[10]}" = "$(hget a sub)" ]
	[ "${lines[11]}" = 0 ]     # losses
	[ "${lines[12]}" = '' ]    # owner
	[ "${lines[13]}" = 0 ]     # reserved
	[ "$(hget a st)" = running ]
	[ "$(hget a d)" = 2 ]
	[ "$(hget a wk)" = w1@2 ]
	[ -n "$(hget a sta)" ]
	[ "$(rcli SMEMBERS $P:run:2)" = a ]
	[ "$(fc leases 2)" = "$(lines a 1)" ]
	[ -z "$(fc leases 1)" ]
	# Flag n: the origin hears where it runs.
	[ "$(ev_on d:1)" = 'r 1 a w1@2' ]
	# 1 given of 3 asked: daemon 2 idles.
	[ -n "$(rcli ZSCORE $P:idle:echo 2)" ]

	# A second worker: widx counts pairs; all slots used: no longer idle.
	submit 1 "b" "c"
	mapfile -t lines < <(fc dispatch 2 echo w1 0 w2 1 w3 1)
	[ "${#lines[@]}" -eq 28 ]
	[ "${lines[0]}" = 2 ]
	[ "${lines[1]}" = b ]
	[ "${lines[14]}" = 3 ]
	[ "${lines[15]}" = c ]
	[ "$(rcli ZSCORE $P:idle:echo 2)" = '' ]
	# Without n and watchers: no r event.
	[ "$(ev_on d:1)" = 'r 1 a w1@2' ]
}

@test "submit wakes the longest-idle other daemon with n T; targeted jobs wake every idle daemon" {
	fc dispatch 2 echo w 1 >/dev/null
	fc dispatch 3 echo w 1 >/dev/null
	fc dispatch 4 echo w 1 >/dev/null
	[ "$(rcli ZRANGE $P:idle:echo 0 -1 | tr '\n' ' ')" = '2 3 4 ' ]
	ev_mark
	# From 2 itself: 2 is skipped (its reply tells it), 3 is popped and woken.
	submit 2 a
	[ "$(ev_on d:3)" = 'n echo' ]
	[ -z "$(ev_on d:2)" ]
	[ -z "$(ev_on d:4)" ]
	[ "$(rcli ZRANGE $P:idle:echo 0 -1 | tr '\n' ' ')" = '2 4 ' ]
	# Two jobs: two daemons.
	ev_mark
	submit 1 b c
	[ "$(ev_on d:2)" = 'n echo' ]
	[ "$(ev_on d:4)" = 'n echo' ]
	[ "$(rcli ZCARD $P:idle:echo)" = 0 ]
	# Targeted: everyone idle hears it, nobody is popped.
	fc dispatch 5 echo w 9 >/dev/null # takes a b c, idles
	fc dispatch 6 echo w 1 >/dev/null
	ev_mark
	submit 5 "t echo 0 - 0 w"
	[ -z "$(ev_on d:5)" ]
	[ "$(ev_on d:6)" = 'n echo' ]
	[ "$(rcli ZCARD $P:idle:echo)" = 2 ]
	# A dispatch that leaves jobs queued wakes the next idle daemon.
	ev_mark
	submit 9 u v
	[ "$(ev_on d:5)" = 'n echo' ]
	[ "$(ev_on d:6)" = 'n echo' ]
	[ "$(rcli ZCARD $P:idle:echo)" = 0 ]
	# A dispatch that leaves jobs queued wakes the next idle daemon (8, as
	# its own empty dispatch would have left it).
	rcli ZADD $P:idle:echo 1 8 >/dev/null
	ev_mark
	[ "$(dispatch_keys 7 echo x 1)" = 'u ' ]
	[ "$(ev_on d:8)" = 'n echo' ]
	[ -z "$(ev_on d:7)" ]
}

@test "complete: ok finishes and tells the origin; late for another daemon or attempt; a re-send is ok" {
	submit 1 "a echo 0 - 60000" b
	fc dispatch 2 echo w 2 >/dev/null
	fc watch 3 a >/dev/null
	ev_mark
	run fc complete 3 a 1 done '"r"'
	[ "$output" = late ]
	run fc complete 2 a 2 done '"r"'
	[ "$output" = late ]
	run fc complete 2 a 1 done '{"sum":3}' b 1 failed 'boom'
	[ "$output" = "$(lines ok ok)" ]
	[ "$(hget a st)" = done ]
	[ "$(hget a r)" = '{"sum":3}' ]
	[ "$(hget a fd)" = 2 ]
	[ "$(hget a fa)" = 1 ]
	[ "$(hget a wd)" = '' ]
	[ "$(rcli HEXISTS $P:j:a d)" = 0 ]
	[ -n "$(hget a fin)" ]
	[ "$(rcli SCARD $P:run:2)" = 0 ]
	[ "$(rcli ZCARD $P:dl)" = 0 ]
	[ "$(rcli ZRANGE $P:done 0 -1 | sort | tr '\n' ' ')" = 'a b ' ]
	[ "$(tstat echo running)" = 0 ]
	[ "$(tstat echo done)" = 1 ]
	[ "$(tstat echo failed)" = 1 ]
	[ "$(tstat echo kept)" = 2 ]
	[ "$(rcli HGET $P:stats done)" = 1 ]
	[ "$(rcli HGET $P:stats failed)" = 1 ]
	[ "$(ev_on d:1)" = "$(lines 'f done 1 a {"sum":3}' 'f failed 1 b boom')" ]
	[ "$(ev_on d:3)" = 'f done 1 a {"sum":3}' ]
	[ -z "$(ev_on d:2)" ]
	# Re-sent (the reply was lost): ok, nothing counted twice. Another
	# state or attempt, or another daemon: late.
	ev_mark
	run fc complete 2 a 1 done '{"sum":3}' a 1 failed x a 2 done x
	[ "$output" = "$(lines ok late late)" ]
	[ "$(fc complete 3 a 1 done x)" = late ]
	[ "$(tstat echo done)" = 1 ]
	[ "$(rcli HGET $P:stats done)" = 1 ]
	[ -z "$(ev_on d:1)" ]
	# A result over 8192 bytes travels as '-'.
	submit 1 c
	fc dispatch 2 echo w 1 >/dev/null
	local big
	big=$(printf '"%09000d"' 0)
	ev_mark
	[ "$(fc complete 2 c 1 done "$big")" = ok ]
	[ "$(ev_on d:1)" = 'f done 1 c -' ]
	[ "$(hget c r)" = "$big" ]
	# Keys with spaces are length-prefixed.
	fc submit 1 'my job' "$(p16 0)" echo '"my job"' x 0 '' 0 '' s '' >/dev/null
	fc dispatch 2 echo w 1 >/dev/null
	ev_mark
	[ "$(fc complete 2 'my job' 1 done 1)" = ok ]
	[ "$(ev_on d:1)" = 'f done 6 my job 1' ]
}

@test "partial: ok keeps and publishes it, dup for an index already kept, late without the lease" {
	submit 1 "a echo 0 s"
	fc dispatch 2 echo w 1 >/dev/null
	ev_mark
	run fc partial 2 a 1 1 '{"p":1}' a 1 2 '{"p":2}'
	[ "$output" = "$(lines ok ok)" ]
	[ "$(rcli LRANGE $P:p:a 0 -1)" = "$(lines '{"p":1}' '{"p":2}')" ]
	[ "$(hget a np)" = 2 ]
	[ "$(hget a pb)" = 14 ]
	[ "$(rcli HGET $P:stats partials)" = 2 ]
	[ "$(ev_on d:1)" = "$(lines 'p 1 1 a {"p":1}' 'p 2 1 a {"p":2}')" ]
	run fc partial 2 a 1 2 '{"p":2}' a 1 1 '{"p":1}'
	[ "$output" = "$(lines dup dup)" ]
	[ "$(rcli LLEN $P:p:a)" = 2 ]
	[ "$(fc partial 3 a 1 3 x)" = late ]
	[ "$(fc partial 2 a 2 3 x)" = late ]
	# Over 8192 bytes: '-' in the event, the text in the list.
	local big
	big=$(printf '"%09000d"' 0)
	ev_mark
	[ "$(fc partial 2 a 1 3 "$big")" = ok ]
	[ "$(ev_on d:1)" = 'p 3 1 a -' ]
	[ "$(rcli LINDEX $P:p:a 2)" = "$big" ]
	fc complete 2 a 1 done '"r"' >/dev/null
	[ "$(fc partial 2 a 1 4 x)" = late ]
	[ "$(rcli LLEN $P:p:a)" = 3 ]
}

@test "requeue: the same place in the queue; losses counted; the 4th loss fails the job" {
	submit 1 a b
	[ "$(dispatch_keys 2 echo w 1)" = 'a ' ]
	# Not lost (a worker's own refusal): back first in line, no loss.
	run fc requeue 2 a 1 0
	[ "$output" = ok ]
	[ "$(hget a st)" = queued ]
	[ "$(hget a ls)" = 0 ]
	[ "$(rcli HEXISTS $P:j:a d)" = 0 ]
	[ "$(rcli SCARD $P:run:2)" = 0 ]
	[ "$(tstat echo requeued)" = 0 ]
	[ "$(tstat echo queued)" = 2 ]
	[ "$(tstat echo running)" = 0 ]
	[ "$(fc requeue 2 a 1 0)" = late ]
	local att
	for att in 2 3 4; do
		[ "$(dispatch_keys 2 echo w 1)" = 'a ' ]
		[ "$(fc requeue 3 a $att 1)" = late ]
		[ "$(fc requeue 2 a $((att - 1)) 1)" = late ]
		[ "$(fc requeue 2 a $att 1)" = ok ]
		[ "$(hget a ls)" = $((att - 1)) ]
	done
	[ "$(tstat echo requeued)" = 3 ]
	[ "$(rcli HGET $P:stats requeued)" = 3 ]
	[ "$(dispatch_keys 2 echo w 1)" = 'a ' ]
	ev_mark
	run fc requeue 2 a 5 1
	[ "$output" = failed ]
	[ "$(hget a st)" = failed ]
	[ "$(hget a ls)" = 4 ]
	[ "$(hget a r)" = '{"error":"lost","losses":4}' ]
	[ "$(rcli ZSCORE $P:done a)" != '' ]
	[ "$(tstat echo failed)" = 1 ]
	[ "$(tstat echo requeued)" = 3 ]
	[ "$(tstat echo running)" = 0 ]
	[ "$(tstat echo queued)" = 1 ]
	[ "$(rcli HGET $P:stats failed)" = 1 ]
	[ "$(ev_on d:1)" = 'f failed 1 a {"error":"lost","losses":4}' ]
	[ "$(dispatch_keys 2 echo w 1)" = 'b ' ]
}

@test "requeue wakes another idle daemon, never the caller" {
	submit 1 a
	fc dispatch 2 echo w 2 >/dev/null # a, then idle
	fc dispatch 3 echo w 1 >/dev/null # idle
	ev_mark
	[ "$(fc requeue 2 a 1 1)" = ok ]
	[ "$(ev_on d:3)" = 'n echo' ]
	[ -z "$(ev_on d:2)" ]
	[ "$(rcli ZRANGE $P:idle:echo 0 -1)" = 2 ]
}

@test "end: queued, running (c to its daemon), finished, unknown; if_queued leaves a running job alone" {
	submit 1 "q echo 0 o 60000" "r1 echo 0 - 60000" "r2" "t echo 0 - 0 w9"
	fc dispatch 2 echo w 2 >/dev/null # q r1
	submit 1 q2
	[ "$(fc complete 2 q 1 done 1)" = ok ]
	[ "$(dispatch_keys 3 echo w 1)" = 'r2 ' ]
	[ "$(tstat echo queued)" = 2 ]
	ev_mark
	run fc end 2 q2 cancelled 1 r1 timeout 1 r1 cancelled 0 q cancelled 0 nope cancelled 0
	[ "$output" = "$(lines ok running ok finished unknown)" ]
	[ "$(hget q2 st)" = cancelled ]
	[ "$(hget q2 r)" = '' ]
	[ "$(rcli ZCARD $P:q:echo)" = 0 ]
	[ "$(hget r1 st)" = cancelled ]
	[ "$(rcli HEXISTS $P:j:r1 d)" = 0 ]
	[ "$(rcli SISMEMBER $P:run:2 r1)" = 0 ]
	[ "$(rcli ZCARD $P:dl)" = 0 ]
	[ "$(ev_on d:1)" = "$(lines 'f cancelled 2 q2 ' 'f cancelled 2 r1 ')" ]
	# The runner is told even when it is the caller.
	[ "$(ev_on d:2)" = 'c 1 2 r1' ]
	# Running elsewhere, ended by 1 (its origin): c to 3, no f to the caller.
	ev_mark
	[ "$(fc end 1 r2 timeout 0)" = ok ]
	[ "$(hget r2 st)" = timeout ]
	[ "$(ev_on d:3)" = 'c 1 2 r2' ]
	[ -z "$(ev_on d:1)" ]
	# A targeted queued job: its queue and the P:tg entry go.
	[ "$(fc end 1 t failed 1)" = ok ]
	[ "$(rcli EXISTS $P:qt:4:echo:w9)" = 0 ]
	[ "$(rcli EXISTS $P:tg:echo)" = 0 ]
	[ "$(tstat echo queued)" = 0 ]
	[ "$(tstat echo running)" = 0 ]
	[ "$(tstat echo cancelled)" = 2 ]
	[ "$(tstat echo timeout)" = 1 ]
	[ "$(tstat echo failed)" = 1 ]
	[ "$(tstat echo done)" = 1 ]
	[ "$(tstat echo kept)" = 5 ]
	[ "$(rcli HGET $P:stats cancelled)" = 2 ]
	[ "$(rcli ZCARD $P:done)" = 5 ]
	[ "$(rcli SCARD $P:own:1)" = 0 ]
	[ "$(rcli SCARD $P:run:2)" = 0 ]
	[ "$(rcli SCARD $P:run:3)" = 0 ]
}

@test "forget: ends an unfinished job, tells its origin and watchers (g), drops its keys" {
	submit 1 a "b echo 0 - 60000"
	fc dispatch 2 echo w 1 >/dev/null # a
	fc partial 2 a 1 1 '"p"' >/dev/null
	fc watch 3 a >/dev/null
	ev_mark
	run fc forget 4 a
	[ "$output" = ok ]
	[ "$(rcli EXISTS $P:j:a $P:p:a)" = 0 ]
	[ "$(rcli ZSCORE $P:all a)" = '' ]
	[ "$(rcli ZSCORE $P:done a)" = '' ]
	[ "$(rcli SCARD $P:run:2)" = 0 ]
	[ "$(tstat echo running)" = 0 ]
	[ "$(tstat echo cancelled)" = 1 ]
	[ "$(tstat echo kept)" = 0 ]
	[ "$(ev_on d:1)" = "$(lines 'f cancelled 1 a ' 'g 1 a')" ]
	[ "$(ev_on d:3)" = "$(lines 'f cancelled 1 a ' 'g 1 a')" ]
	[ "$(ev_on d:2)" = 'c 1 1 a' ]
	[ -z "$(ev_on d:4)" ]
	# Queued: out of its queue and deadlines.
	[ "$(fc forget 1 b)" = ok ]
	[ "$(rcli ZCARD $P:q:echo)" = 0 ]
	[ "$(rcli ZCARD $P:dl)" = 0 ]
	[ "$(tstat echo queued)" = 0 ]
	# Finished: kept goes down.
	submit 1 c
	fc dispatch 2 echo w 1 >/dev/null
	fc complete 2 c 1 done 1 >/dev/null
	[ "$(tstat echo kept)" = 1 ]
	ev_mark
	[ "$(fc forget 2 c)" = ok ]
	[ "$(tstat echo kept)" = 0 ]
	[ "$(tstat echo done)" = 1 ]
	[ "$(rcli ZCARD $P:all)" = 0 ]
	[ "$(ev_on d:1)" = 'g 1 c' ]
	[ "$(fc forget 2 c)" = unknown ]
}

@test "watch: a snapshot with its partials, registers the daemon, which then gets r p f" {
	run fc watch 3 nope
	[ "$output" = '' ]
	submit 1 a
	run fc watch 3 a
	echo "$output" | grep -qx queued
	[ "$(fc watch 3 a | tr '\0' @ | tail -n 1)" = @partials ]
	[ "$(hget a wd)" = ,3, ]
	fc watch 3 a >/dev/null
	fc watch 4 a >/dev/null
	fc watch 1 a >/dev/null
	[ "$(hget a wd)" = ,3,4,1, ]
	ev_mark
	fc dispatch 2 echo w 1 >/dev/null
	fc partial 2 a 1 1 '"x"' >/dev/null
	[ "$(fc watch 5 a | tr '\0' @ | tail -n 2)" = "$(lines @partials '"x"')" ]
	fc complete 2 a 1 done '"r"' >/dev/null
	local want
	want=$(lines 'r 1 a w@2' 'p 1 1 a "x"' 'f done 1 a "r"')
	[ "$(ev_on d:3)" = "$want" ]
	[ "$(ev_on d:4)" = "$want" ]
	# Origin 1 is also a watcher: once each.
	[ "$(ev_on d:1)" = "$want" ]
	[ "$(ev_on d:5)" = "$(lines 'f done 1 a "r"')" ]
	# Finished: a snapshot, nobody registered.
	[ "$(hget a wd)" = '' ]
	run fc watch 6 a
	echo "$output" | grep -qx done
	[ "$(hget a wd)" = '' ]
}

@test "worker: counts per type and per daemon; a new type is announced" {
	run fc worker 1 echo 2
	[ "$output" = 2 ]
	[ "$(fc worker 2 echo 1)" = 3 ]
	[ "$(rcli HGET $P:wn:1 echo)" = 2 ]
	[ "$(rcli HGET $P:wn:2 echo)" = 1 ]
	[ "$(fc worker 1 echo -2)" = 1 ]
	[ "$(rcli HEXISTS $P:wn:1 echo)" = 0 ]
	[ "$(tstat echo workers)" = 1 ]
	[ "$(rcli SMEMBERS $P:types)" = echo ]
	[ "$(ev_on x)" = 't+ echo' ]
}

@test "worker set: a daemon's whole count replaces what Redis held for it" {
	[ "$(fc worker 1 echo 2)" = 2 ]
	[ "$(fc worker 2 echo 1)" = 3 ]
	# A +1 counted twice (sent again over a reconnect): the count mends it.
	fc worker 1 echo 1 >/dev/null
	[ "$(fc worker 1 echo 2 set)" = 3 ]
	[ "$(rcli HGET $P:wn:1 echo)" = 2 ]
	# After the data was lost: counted from nothing, the type listed again.
	rcli FLUSHALL >/dev/null
	[ "$(fc worker 1 echo 2 set)" = 2 ]
	[ "$(rcli SISMEMBER $P:types echo)" = 1 ]
	# A count of 0 that Redis already holds writes nothing.
	[ "$(fc worker 1 other 0 set)" = 0 ]
	[ "$(rcli EXISTS $P:t:other $P:wn:1)" = 1 ]
	[ "$(rcli SISMEMBER $P:types other)" = 0 ]
	run fc worker 1 echo -1 set
	[[ "$output" == *"negative count"* ]]
	run fc worker 1 echo 1 sett
	[[ "$output" == *"worker takes T delta [set]"* ]]
}

@test "pin: a pinned empty type stays; unpinned, the reaper removes it (t-)" {
	[ "$(fc pin 1 keep on)" = ok ]
	[ "$(tstat keep pinned)" = 1 ]
	fc worker 1 gone 1 >/dev/null
	fc worker 1 gone -1 >/dev/null
	fc worker 1 busy 1 >/dev/null
	submit 1 "q queued"
	run fc reap 1 600000 100000
	[ "$output" = "$(lines 0 0 0 0 0 0 0)" ]
	[ "$(rcli SMEMBERS $P:types | sort | tr '\n' ' ')" = 'busy keep queued ' ]
	[ "$(ev_on x)" = "$(lines 't+ keep' 't+ gone' 't+ busy' 't+ queued' 't- gone')" ]
	[ "$(rcli EXISTS $P:t:gone)" = 0 ]
	ev_mark
	[ "$(fc pin 2 keep off)" = ok ]
	fc reap 1 600000 100000 >/dev/null
	[ "$(ev_on x)" = 't- keep' ]
	[ "$(rcli SMEMBERS $P:types | sort | tr '\n' ' ')" = 'busy queued ' ]
}

# redis_ms: Redis's clock in ms (the functions' `now`).
redis_ms() {
	local t
	t=($(rcli TIME))
	echo $((t[0] * 1000 + t[1] / 1000))
}

# hb_gone N: daemon N's heartbeat (lease) expired.
hb_gone() {
	[ "$(rcli EXISTS "$P:hb:$1")" = 0 ]
}

# after_ms MS: Redis's clock has passed MS.
after_ms() {
	[ "$(redis_ms)" -gt "$1" ]
}

@test "reap: a daemon whose heartbeat expired loses its leases, its owned queued jobs, its workers, then itself" {
	[ "$(hello 0 'host-a 1 0 v' 60000)" = "$(lines 1 1)" ]
	[ "$(hello 0 'host-b 2 0 v' 300)" = "$(lines 2 1)" ]
	fc worker 2 echo 3 >/dev/null
	fc worker 1 echo 1 >/dev/null
	fc worker 2 other 1 >/dev/null
	submit 2 "run2 echo 0 n" "own2r echo 0 o" "own2 echo 0 o" "det2"
	[ "$(dispatch_keys 2 echo w 1)" = 'run2 ' ]
	[ "$(dispatch_keys 1 echo w 1)" = 'own2r ' ]
	fc dispatch 2 other w 1 >/dev/null # 2 idles for other
	[ -n "$(rcli ZSCORE $P:idle:other 2)" ]
	rcli ZADD $P:idle:echo 1 3 2 2 >/dev/null # 3 (and 2) idle for echo
	[ "$(rcli SMEMBERS $P:own:2 | sort | tr '\n' ' ')" = 'own2 own2r ' ]
	wait_until 10 hb_gone 2
	ev_mark
	run fc reap 1 600000 100000
	# daemons requeued failed cancelled timedout forgotten more
	[ "$output" = "$(lines 1 1 0 1 0 0 0)" ]
	# Its running job: queued again in its place, a loss counted.
	[ "$(hget run2 st)" = queued ]
	[ "$(hget run2 ls)" = 1 ]
	[ "$(rcli HEXISTS $P:j:run2 d)" = 0 ]
	[ "$(rcli ZRANGE $P:q:echo 0 -1 | cut -c 33- | tr '\n' ' ')" = 'run2 det2 ' ]
	[ "$(tstat echo requeued)" = 1 ]
	[ "$(tstat echo queued)" = 2 ]
	[ "$(tstat echo running)" = 1 ]
	# Its owned queued job cancelled; the owned one running on 1 left to
	# finish; the detached one stays queued.
	[ "$(hget own2 st)" = cancelled ]
	[ "$(hget own2r st)" = running ]
	[ "$(hget det2 st)" = queued ]
	# Its workers and idle entries gone; then the daemon itself.
	[ "$(tstat echo workers)" = 1 ]
	[ "$(tstat other workers)" = 0 ]
	[ "$(rcli ZSCORE $P:idle:other 2)" = '' ]
	[ "$(rcli ZSCORE $P:idle:echo 2)" = '' ]
	[ "$(rcli EXISTS $P:wn:2 $P:run:2 $P:own:2)" = 0 ]
	[ "$(rcli HEXISTS $P:daemons 2)" = 0 ]
	[ "$(rcli HGET $P:daemons 1)" = 'host-a 1 0 v' ]
	# ... and type other, now without workers, is gone too.
	[ "$(ev_on x)" = "$(lines 'd- 2' 't- other')" ]
	[ "$(ev_on d:3)" = 'n echo' ]
	[ "$(ev_on d:2)" = 'f cancelled 4 own2 ' ]
	# A second reap finds nothing; own2r still completes on 1.
	run fc reap 1 600000 100000
	[ "$output" = "$(lines 0 0 0 0 0 0 0)" ]
	[ "$(fc complete 1 own2r 1 done 1)" = ok ]
	# A daemon that comes back under its old number gets a new one.
	[ "$(hello 2 'host-b 2 0 v' 5000)" = "$(lines 3 1)" ]
}

@test "reap: the 4th loss fails the job, and the reaper's events reach the caller too" {
	fc hello 0 a 60000 >/dev/null
	fc hello 0 b 300 >/dev/null
	submit 1 "x echo 0 n"
	[ "$(dispatch_keys 2 echo w 1)" = 'x ' ]
	rcli HSET $P:j:x ls 3 >/dev/null
	# A stale lease entry (the job is not running on 2) is only dropped.
	rcli SADD $P:run:2 ghost >/dev/null
	wait_until 10 hb_gone 2
	ev_mark
	run fc reap 1 600000 100000
	[ "$output" = "$(lines 1 0 1 0 0 0 0)" ]
	[ "$(hget x st)" = failed ]
	[ "$(hget x r)" = '{"error":"lost","losses":4}' ]
	[ "$(tstat echo failed)" = 1 ]
	[ "$(tstat echo running)" = 0 ]
	[ "$(ev_on d:1)" = 'f failed 1 x {"error":"lost","losses":4}' ]
	[ "$(rcli EXISTS $P:run:2)" = 0 ]
	[ "$(ev_on x)" = 'd- 2' ]
}

@test "reap: jobs past their deadline (P:dl) end as timeout, queued or running anywhere" {
	fc hello 0 a 60000 >/dev/null
	submit 1 "run echo 0 - 1" "que echo 0 - 1" "far echo 0 - 600000"
	[ "$(dispatch_keys 2 echo w 1)" = 'run ' ]
	rcli ZADD $P:dl 0 ghost >/dev/null
	wait_until 10 after_ms "$(rcli ZSCORE $P:dl que)"
	ev_mark
	run fc reap 1 600000 100000
	[ "$output" = "$(lines 0 0 0 0 2 0 0)" ]
	[ "$(hget run st)" = timeout ]
	[ "$(hget que st)" = timeout ]
	[ "$(hget far st)" = queued ]
	[ "$(rcli ZRANGE $P:dl 0 -1)" = far ]
	[ "$(rcli SCARD $P:run:2)" = 0 ]
	[ "$(tstat echo timeout)" = 2 ]
	[ "$(tstat echo queued)" = 1 ]
	[ "$(tstat echo running)" = 0 ]
	[ "$(rcli HGET $P:stats timeout)" = 2 ]
	[ "$(ev_on d:2)" = 'c 1 3 run' ]
	# The caller is the origin: the reaper's reply has no verdicts, so it
	# gets the events like anyone.
	# (Equal deadlines come due in member order.)
	[ "$(ev_on d:1)" = "$(lines 'f timeout 3 que ' 'f timeout 3 run ')" ]
}

@test "reap: retention by keep_ms and keep_max, 500 per call, g to the origin" {
	submit 1 a b c d
	fc dispatch 2 echo w 4 >/dev/null
	local k
	for k in a b c d; do
		[ "$(fc complete 2 $k 1 done 1)" = ok ]
	done
	ev_mark
	run fc reap 1 600000 2
	[ "$output" = "$(lines 0 0 0 0 0 2 0)" ]
	[ "$(rcli EXISTS $P:j:a $P:j:b)" = 0 ]
	[ "$(rcli ZRANGE $P:done 0 -1 | tr '\n' ' ')" = 'c d ' ]
	[ "$(rcli ZRANGE $P:all 0 -1 | tr '\n' ' ')" = 'c d ' ]
	[ "$(tstat echo kept)" = 2 ]
	[ "$(ev_on d:1)" = "$(lines 'g 1 a' 'g 1 b')" ]
	wait_until 10 after_ms "$(rcli ZSCORE $P:done d)"
	run fc reap 1 0 100000
	[ "$output" = "$(lines 0 0 0 0 0 2 0)" ]
	[ "$(rcli EXISTS $P:j:c $P:j:d $P:done $P:all)" = 0 ]
	[ "$(tstat echo kept)" = 0 ]
	# More than 500 due: 500 now, `more`, the rest next time.
	local a=() c=() i
	for ((i = 0; i < 501; i++)); do
		a+=("k$i" "$(p16 0)" echo '' b 0 i 0 '' "s$i" '')
		c+=("k$i" 1 done 1)
	done
	[ "$(fc submit 1 "${a[@]}" | sort -u)" = ok ]
	[ "$(fc dispatch 2 echo w 600 | awk 'NR % 14 == 2' | wc -l)" = 501 ]
	[ "$(fc complete 2 "${c[@]}" | sort -u)" = ok ]
	wait_until 10 after_ms "$(rcli ZSCORE $P:done k500)"
	run fc reap 1 0 100000
	[ "$output" = "$(lines 0 0 0 0 0 500 1)" ]
	ev_mark
	run fc reap 1 0 100000
	[ "$output" = "$(lines 0 0 0 0 0 1 0)" ]
	[ "$(rcli ZCARD $P:all)" = 0 ]
	# Nothing kept, queued, running or working any more: the type goes.
	[ "$(ev_on x)" = 't- echo' ]
}

@test "WRONGTYPE: a key of another type refuses the whole call before anything is written" {
	rcli SET $P:q:echo x >/dev/null
	run submit 1 "a echo"
	[ "$output" = 'WRONGTYPE jobfs: t:q:echo holds a string, expected zset' ]
	[ "$(rcli EXISTS $P:seq $P:all $P:j:a $P:types $P:stats $P:t:echo $P:own:1)" = 0 ]
	# The check covers every group before the first write.
	run submit 1 "b other" "c echo"
	[ "$output" = 'WRONGTYPE jobfs: t:q:echo holds a string, expected zset' ]
	[ "$(rcli EXISTS $P:seq $P:all $P:j:b $P:types $P:t:other)" = 0 ]
	[ "$(submit 1 "b other")" = ok ]
	rcli DEL $P:q:echo >/dev/null
	[ "$(submit 1 "a echo")" = ok ]
	[ "$(rcli GET $P:seq)" = 2 ]

	# A job hash planted as a string.
	rcli SET $P:j:z x >/dev/null
	run submit 1 z
	[ "$output" = 'WRONGTYPE jobfs: t:j:z holds a string, expected hash' ]
	[ "$(rcli GET $P:seq)" = 2 ]

	# complete: the job stays running, its lease kept.
	[ "$(dispatch_keys 2 echo w 1)" = 'a ' ]
	rcli SET $P:done x >/dev/null
	run fc complete 2 a 1 done 1
	[ "$output" = 'WRONGTYPE jobfs: t:done holds a string, expected zset' ]
	[ "$(hget a st)" = running ]
	[ "$(rcli SMEMBERS $P:run:2)" = a ]
	[ "$(tstat echo running)" = 1 ]
	# reap, end, forget: the same.
	run fc reap 1 0 0
	[ "$output" = 'WRONGTYPE jobfs: t:done holds a string, expected zset' ]
	run fc end 1 a cancelled 0
	[ "$output" = 'WRONGTYPE jobfs: t:done holds a string, expected zset' ]
	run fc forget 1 a
	[ "$output" = 'WRONGTYPE jobfs: t:done holds a string, expected zset' ]
	[ "$(hget a st)" = running ]
	rcli DEL $P:done >/dev/null
	[ "$(fc complete 2 a 1 done 1)" = ok ]

	# dispatch: a targeted queue of another type; nothing taken.
	submit 1 "q other"
	rcli LPUSH $P:qt:5:other:w x >/dev/null
	run fc dispatch 2 other w 1
	[ "$output" = 'WRONGTYPE jobfs: t:qt:5:other:w holds a list, expected zset' ]
	[ "$(hget q st)" = queued ]
	[ "$(rcli ZCARD $P:q:other)" = 2 ]
	# A malformed call is refused the same way.
	run fc complete 2 a 1 finished 1
	[ "$output" = 'ERR jobfs: complete: state must be done or failed: finished' ]
	run fc submit 1 a b c
	[ "$output" = 'ERR jobfs: submit takes groups of 11 arguments' ]
}

@test "WRONGTYPE in reap: found before its first write, for jobs it would finish and then forget too" {
	fc hello 0 a 60000 >/dev/null
	submit 1 "old" "due echo 0 - 1"
	fc dispatch 2 echo w 1 >/dev/null # old
	[ "$(fc complete 2 old 1 done 1)" = ok ]
	wait_until 10 after_ms "$(rcli ZSCORE $P:dl due)"
	# Retention would forget old (keep_ms 0): its partials key is a string.
	rcli SET $P:p:old x >/dev/null
	run fc reap 1 0 100000
	[ "$output" = 'WRONGTYPE jobfs: t:p:old holds a string, expected list' ]
	[ "$(hget due st)" = queued ]
	[ "$(rcli ZCARD $P:dl)" = 1 ]
	# keep_max 1: due times out in this call and so pushes old out of
	# P:done in the same call; old is checked before the first write too.
	run fc reap 1 600000 1
	[ "$output" = 'WRONGTYPE jobfs: t:p:old holds a string, expected list' ]
	[ "$(hget due st)" = queued ]
	rcli DEL $P:p:old >/dev/null
	# keep_max 0: due times out in this call and is forgotten in the same
	# call, so its keys are checked before the first write as well.
	rcli SET $P:p:due x >/dev/null
	run fc reap 1 600000 0
	[ "$output" = 'WRONGTYPE jobfs: t:p:due holds a string, expected list' ]
	[ "$(hget due st)" = queued ]
	[ "$(hget old st)" = done ]
	rcli DEL $P:p:due >/dev/null
	run fc reap 1 600000 0
	[ "$output" = "$(lines 0 0 0 0 1 2 0)" ]
	[ "$(rcli EXISTS $P:j:due $P:j:old)" = 0 ]
}

@test "redis_restart: the AOF brings back the jobs and the functions" {
	submit 1 a b
	[ "$(dispatch_keys 2 echo w 1)" = 'a ' ]
	redis_restart
	[ "$(hget a st)" = running ]
	[ "$(rcli GET $P:seq)" = 2 ]
	# The library was in the AOF too; the daemon loads it again anyway.
	[ "$(fc complete 2 a 1 done 1)" = ok ]
	redis_load_functions
	[ "$(dispatch_keys 2 echo w 1)" = 'b ' ]
}

@test "one job's whole life through the functions, after which the type is gone" {
	[ "$(hello 0 h 5000)" = "$(lines 1 1)" ]
	[ "$(fc worker 1 echo 1)" = 1 ]
	[ "$(submit 1 "life echo 0 sn")" = ok ]
	[ "$(dispatch_keys 1 echo w 1)" = 'life ' ]
	[ "$(fc partial 1 life 1 1 '"half"')" = ok ]
	[ "$(fc complete 1 life 1 done '"all"')" = ok ]
	[ "$(hget life r)" = '"all"' ]
	[ "$(fc forget 1 life)" = ok ]
	[ "$(fc worker 1 echo -1)" = 0 ]
	[ "$(fc reap 1 600000 100000)" = "$(lines 0 0 0 0 0 0 0)" ]
	[ "$(rcli EXISTS $P:t:echo $P:types $P:j:life $P:p:life)" = 0 ]
}

@test "list: every job in submission order; a type's queue in dispatch order, targeted ones merged" {
	submit 1 "lo t 0" "hi t 5" "tg t 3 - 0 bee" >/dev/null
	[ "$(rcli FCALL jobfs_list 0 "$P" 1 all - 10 | tr '\n' ' ')" = "lo hi tg " ]
	[ "$(rcli FCALL jobfs_list 0 "$P" 1 queue t 10 | tr '\n' ' ')" = "hi tg lo " ]
	[ "$(rcli FCALL jobfs_list 0 "$P" 1 queue t 2 | tr '\n' ' ')" = "hi tg " ]
	run rcli FCALL jobfs_list 0 "$P" 1 nonsense - 10
	[[ "$output" == *"ERR jobfs"* ]]
}

@test "workers_put / workers: each daemon's lines, a dead daemon's dropped" {
	rcli FCALL jobfs_hello 0 "$P" 0 "h 1 0 v" 60000 >/dev/null
	rcli FCALL jobfs_hello 0 "$P" 0 "h 2 0 v" 60000 >/dev/null
	rcli FCALL jobfs_workers_put 0 "$P" 1 t 'a@1 idle' >/dev/null
	rcli FCALL jobfs_workers_put 0 "$P" 2 t 'b@2 busy 7' >/dev/null
	[ "$(rcli FCALL jobfs_workers 0 "$P" 1 t | sort | tr '\n' ' ')" = "a@1 idle b@2 busy 7 " ]
	rcli DEL "$P:hb:2" >/dev/null
	[ "$(rcli FCALL jobfs_workers 0 "$P" 1 t | tr '\n' ' ')" = "a@1 idle " ]
	[ -z "$(rcli HGET "$P:wk:t" 2)" ]
	rcli FCALL jobfs_workers_put 0 "$P" 1 t '' >/dev/null
	[ -z "$(rcli FCALL jobfs_workers 0 "$P" 1 t)" ]
}
