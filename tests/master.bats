#!/usr/bin/env bats
# master.bats — the master port of the seed dialect (gloom.txt, SPEC 1.1):
# submitting and results, bodies, ids, priorities, duplicate ids, a
# master's disconnect, and malformed master messages.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/proto'

setup() {
	start_daemon
}

@test "seed master and worker exchange exactly the frames of gloom.txt" {
	join_worker W echo
	conn_open M
	send M '{"type": "job", "job_type": "echo", "id": "message_id", "body": {"text": "hello", "n": [1, 2.5, null]}}'
	wait_lines W 2
	[ "$(line W 1)" = "$PONG" ]
	same_json "$(line W 2)" '{"type":"job","id":"message_id","body":{"text":"hello","n":[1,2.5,null]}}'
	send W '{"type": "response", "body": {"echo": "hello"}}'
	wait_lines M 1
	same_json "$(line M 1)" '{"id":"message_id","body":{"echo":"hello"}}'
	# One job, one result: nothing else on either side.
	settle W M
	[ "$(received W | wc -l)" = 1 ]
	[ "$(received M | wc -l)" = 1 ]
	[ "$(job_status '"message_id"')" = done ]
}

@test "bodies of every JSON kind reach the worker and come back intact" {
	local bodies=(
		'{"a":1,"b":{"c":[1,2,{"d":null}]},"e":""}'
		'[1,"two",3.5,[true,false],{},[]]'
		'"a string with \"quotes\", a \\ backslash, a\ttab and a\nnewline"'
		'42' '-7' '0' '3.25' '-0.5' '12345678901234'
		'true' 'false' 'null' '{}' '[]' '""'
		'"héllo wörld ☃ 日本語 𝄞"'
		'"\u00e9\u2603\ud834\udd1e"'
		'{"ключ":"значение","emoji":"😀","nested":{"ü":["ß",{"€":1}]}}'
		'[[[[[[[[[[[[[[[[[[[[{"deep":[[[[[[[[[[1]]]]]]]]]]}]]]]]]]]]]]]]]]]]]]]'
	)
	local i body
	join_worker W kinds
	conn_open M
	for i in "${!bodies[@]}"; do
		body=${bodies[$i]}
		send M "{\"type\":\"job\",\"job_type\":\"kinds\",\"id\":\"k$i\",\"body\":$body}"
		wait_jobs W $((i + 1))
		same_json "$(jobs_of W | tail -n 1)" "{\"type\":\"job\",\"id\":\"k$i\",\"body\":$body}"
		send W "{\"type\":\"response\",\"body\":$body}"
		wait_lines M $((i + 1))
		same_json "$(line M $((i + 1)))" "{\"id\":\"k$i\",\"body\":$body}"
	done
}

@test "bodies of several MiB round-trip intact" {
	local dir=$BATS_TEST_TMPDIR
	{
		printf '{"type":"job","job_type":"big","id":"str","body":"'
		head -c 3145728 /dev/urandom | base64 -w0
		printf '"}\n'
		printf '{"type":"job","job_type":"big","id":"arr","body":'
		awk 'BEGIN { printf "["; for (i = 0; i < 250000; i++) printf "%s{\"n\":%d,\"s\":\"x%d\"}", i ? "," : "", i, i; printf "]" }'
		printf '}\n'
	} >"$dir/big.in"
	[ "$(stat -c %s "$dir/big.in")" -gt $((8 * 1024 * 1024)) ]
	bg "$JOBCTL" work big -- cat
	# -t only bounds a hung run: under ASan on a loaded machine the 8 MiB
	# round trip through the daemon and a worker takes tens of seconds.
	"$JOBCTL" raw -n 2 -t 180000 <"$dir/big.in" >"$dir/big.out"
	[ "$(jq -r .id "$dir/big.out" | sort | tr '\n' ' ')" = "arr str " ]
	for id in str arr; do
		want=$(jq -cS "select(.id == \"$id\") | .body" "$dir/big.in" | sha256sum)
		got=$(jq -cS "select(.id == \"$id\") | .body" "$dir/big.out" | sha256sum)
		[ "$want" = "$got" ]
	done
	# The 4 MiB string is 4 MiB on the way back too.
	[ "$(jq -r 'select(.id == "str") | .body | length' "$dir/big.out")" = 4194304 ]
}

@test "higher priority is dispatched first, equal priority in submission order" {
	# id: priority (none means 0)
	local prios=(0 5 -1 5 10 0 none 5 -1 10 0 5 9223372036854775807 -9223372036854775808)
	local i
	conn_open M
	for i in "${!prios[@]}"; do
		if [ "${prios[$i]}" = none ]; then
			send M "{\"type\":\"job\",\"job_type\":\"prio\",\"id\":\"p$i\",\"body\":$i}"
		else
			send M "{\"type\":\"job\",\"job_type\":\"prio\",\"id\":\"p$i\",\"body\":$i,\"priority\":${prios[$i]}}"
		fi
	done
	settle M
	[ "$(received M)" = "" ]
	join_worker W prio
	serve W 14
	wait_lines M 15
	local order='p12 p4 p9 p1 p3 p7 p11 p0 p5 p6 p10 p2 p8 p13 '
	[ "$(jobs_of W | jq -r .id | tr '\n' ' ')" = "$order" ]
	# Results came back in the same order, each the answer to its own id.
	[ "$(received M | jq -r .id | tr '\n' ' ')" = "$order" ]
	[ "$(received M | jq -c 'select(.body.done != .id)')" = "" ]
}

@test "jobs of one priority are dispatched in submission order" {
	local i ids=
	conn_open M
	for i in $(seq 1 40); do
		send M "{\"type\":\"job\",\"job_type\":\"fifo\",\"id\":\"f$i\",\"body\":null,\"priority\":3}"
		ids+="f$i "
	done
	settle M
	join_worker W fifo
	serve W 40
	wait_lines M 41
	[ "$(jobs_of W | jq -r .id | tr '\n' ' ')" = "$ids" ]
}

@test "an integer id and its decimal string name the same job" {
	conn_open M
	send M '{"type":"job","job_type":"ids","id":7,"body":"int seven"}' \
		'{"type":"job","job_type":"ids","id":"7","body":"string seven"}' \
		'{"type":"job","job_type":"ids","id":"8","body":"string eight"}' \
		'{"type":"job","job_type":"ids","id":8,"body":"int eight"}' \
		'{"type":"job","job_type":"ids","id":-3,"body":"minus three"}' \
		'{"type":"job","job_type":"ids","id":"-3","body":"string minus three"}' \
		'{"type":"job","job_type":"ids","id":"007","body":"not seven"}'
	settle M
	is_error "$(line M 1)" id_exists '"7"'
	is_error "$(line M 2)" id_exists 8
	is_error "$(line M 3)" id_exists '"-3"'
	[ "$(line M 4)" = "$PONG" ]
	join_worker W ids
	serve W 4
	wait_lines M 8
	# The worker and the master see each id as the master first sent it.
	[ "$(jobs_of W)" = '{"type":"job","id":7,"body":"int seven"}
{"type":"job","id":"8","body":"string eight"}
{"type":"job","id":-3,"body":"minus three"}
{"type":"job","id":"007","body":"not seven"}' ]
	same_lines "$(received M | tail -n 4)" '{"id":7,"body":{"done":7}}
{"id":"8","body":{"done":"8"}}
{"id":-3,"body":{"done":-3}}
{"id":"007","body":{"done":"007"}}'
	# Status finds the job by either spelling.
	[ "$(job_status 7)" = done ]
	[ "$(job_status '"7"')" = done ]
}

@test "replies carry the id exactly as the master sent it" {
	conn_open M
	send M '{"type":"job","job_type":"idform","id":123456789012345678,"body":1}' \
		'{"type":"job","job_type":"idform","id":"ü/\"q\" \\ %2F","body":2}' \
		'{"type":"job","job_type":"idform","id":0,"body":3}' \
		'{"type":"job","job_type":"idform","id":".","body":4}'
	settle M
	join_worker W idform
	wait_jobs W 1
	# Compared as text: jq would round an integer this large.
	[ "$(jobs_of W)" = '{"type":"job","id":123456789012345678,"body":1}' ]
	respond W '"big"'
	wait_lines M 2
	[ "$(line M 2)" = '{"id":123456789012345678,"body":"big"}' ]
	serve W 3
	wait_lines M 5
	[ "$(jq -c .id <<<"$(line M 3)")" = '"ü/\"q\" \\ %2F"' ]
	[ "$(jq -c .id <<<"$(line M 4)")" = 0 ]
	[ "$(jq -c .id <<<"$(line M 5)")" = '"."' ]
}

@test "a duplicate id is refused while the job is unfinished and accepted after its result" {
	conn_open M
	conn_open M2
	send M '{"type":"job","job_type":"dup","id":"d","body":"first"}'
	settle M
	send M '{"type":"job","job_type":"dup","id":"d","body":"second"}'
	send M2 '{"type":"job","job_type":"dup","id":"d","body":"other master"}'
	settle M M2
	is_error "$(line M 2)" id_exists '"d"'
	is_error "$(line M2 1)" id_exists '"d"'
	join_worker W dup
	wait_jobs W 1
	# Still unfinished while running.
	send M '{"type":"job","job_type":"dup","id":"d","body":"third"}'
	settle M
	is_error "$(line M 4)" id_exists '"d"'
	send W '{"type":"response","body":"answer one"}'
	wait_lines M 6
	same_json "$(line M 6)" '{"id":"d","body":"answer one"}'
	# The refused submissions never reached the worker.
	settle W
	[ "$(jobs_of W)" = '{"type":"job","id":"d","body":"first"}' ]
	# Finished: the id may be used again, by any master.
	send M2 '{"type":"job","job_type":"dup","id":"d","body":"again"}'
	wait_jobs W 2
	[ "$(jobs_of W | tail -n 1)" = '{"type":"job","id":"d","body":"again"}' ]
	send W '{"type":"response","body":"answer two"}'
	wait_lines M2 3
	same_json "$(line M2 3)" '{"id":"d","body":"answer two"}'
	settle M
	[ "$(received M | wc -l)" = 3 ]
	assert_daemon_healthy
}

@test "a master's queued jobs are cancelled when it disconnects" {
	conn_open M
	send M '{"type":"job","job_type":"gone","id":"q1","body":1}' \
		'{"type":"job","job_type":"gone","id":"q2","body":2,"detach":false}'
	settle M
	[ "$(job_status '"q1"')" = queued ]
	conn_kill M
	wait_until 10 status_is '"q1"' cancelled
	[ "$(job_status '"q2"')" = cancelled ]
	# A worker that joins later gets none of them.
	join_worker W gone
	settle W
	[ "$(received W)" = "" ]
	[ "$(daemon_stat .types.gone.queued)" = 0 ]
	# Their ids are free again.
	conn_open M2
	send M2 '{"type":"job","job_type":"gone","id":"q1","body":"new"}'
	wait_jobs W 1
	[ "$(jobs_of W)" = '{"type":"job","id":"q1","body":"new"}' ]
}

@test "a master's running job finishes after it disconnects" {
	join_worker W run
	conn_open M
	send M '{"type":"job","job_type":"run","id":"r1","body":"work"}'
	wait_jobs W 1
	conn_kill M
	# Only the stats request's own connection is left.
	wait_until 10 stat_is .masters 1
	[ "$(job_status '"r1"')" = running ]
	send W '{"type":"response","body":{"finished":true}}'
	settle W
	# The response was accepted: no error frame, and the job is done.
	[ "$(received W)" = '{"type":"job","id":"r1","body":"work"}' ]
	[ "$(job_status '"r1"')" = done ]
	[ "$(request '{"type":"status","id":"r1"}' | jq -c '[.status, .result_bytes]')" = '["done",17]' ]
	# And the worker goes on to the next job.
	conn_open M2
	send M2 '{"type":"job","job_type":"run","id":"r2","body":"next"}'
	wait_jobs W 2
	send W '{"type":"response","body":"ok"}'
	wait_lines M2 1
	same_json "$(line M2 1)" '{"id":"r2","body":"ok"}'
}

@test "detached queued jobs survive their master's disconnect and run" {
	conn_open M
	send M '{"type":"job","job_type":"det","id":"d1","body":"keep me","detach":true}' \
		'{"type":"job","job_type":"det","id":"d2","body":"drop me"}' \
		'{"type":"job","job_type":"det","id":"d3","body":"keep me too","detach":true}'
	settle M
	conn_kill M
	wait_until 10 status_is '"d2"' cancelled
	[ "$(job_status '"d1"')" = queued ]
	join_worker W det
	serve W 2
	wait_until 10 status_is '"d3"' done
	[ "$(job_status '"d1"')" = done ]
	settle W
	[ "$(jobs_of W)" = '{"type":"job","id":"d1","body":"keep me"}
{"type":"job","id":"d3","body":"keep me too"}' ]
	[ "$(received W | wc -l)" = 2 ]
}

@test "missing fields get missing_field with the name and any usable id" {
	conn_open M
	send M '{"type":"job","id":"mf1","body":1}' \
		'{"type":"job","job_type":"mf","body":1}' \
		'{"type":"job","job_type":"mf","id":"mf3"}' \
		'{"job_type":"mf","id":"mf4","body":1}' \
		'{"type":"job","job_type":"mf","id":5}' \
		'{}' \
		'{"type":"job","job_type":"mf","id":"","body":1}'
	settle M
	same_json "$(line M 1)" '{"error":"missing_field","name":"job_type","id":"mf1"}'
	same_json "$(line M 2)" '{"error":"missing_field","name":"id"}'
	same_json "$(line M 3)" '{"error":"missing_field","name":"body","id":"mf3"}'
	same_json "$(line M 4)" '{"error":"missing_field","name":"type","id":"mf4"}'
	same_json "$(line M 5)" '{"error":"missing_field","name":"body","id":5}'
	same_json "$(line M 6)" '{"error":"missing_field","name":"type"}'
	# An empty id is there but invalid: not missing.
	is_error "$(line M 7)" invalid_type
	[ "$(line M 8)" = "$PONG" ]
	# None of them made a job.
	[ "$(daemon_stat .submitted)" = 0 ]
	# The same connection still submits.
	send M '{"type":"job","job_type":"mf","id":"mf1","body":"good"}'
	join_worker W mf
	serve W 1
	wait_lines M 9
	same_json "$(line M 9)" '{"id":"mf1","body":{"done":"mf1"}}'
	assert_daemon_healthy
}

@test "fields of the wrong JSON type get invalid_type and the connection stays usable" {
	local bad=(
		'{"type":"job","job_type":5,"id":"it1","body":1}'
		'{"type":"job","job_type":["t"],"id":"it2","body":1}'
		'{"type":"job","job_type":null,"id":"it3","body":1}'
		'{"type":"job","job_type":"t","id":"it4","body":1,"priority":"high"}'
		'{"type":"job","job_type":"t","id":"it5","body":1,"priority":1.5}'
		'{"type":"job","job_type":"t","id":"it6","body":1,"detach":"yes"}'
		'{"type":"job","job_type":"t","id":"it7","body":1,"priority":true}'
		'{"type":null,"id":"it8"}'
	)
	local i
	conn_open M
	for i in "${!bad[@]}"; do
		send M "${bad[$i]}"
		settle M
		is_error "$(line M $((2 * i + 1)))" invalid_type "\"it$((i + 1))\""
		[ "$(line M $((2 * i + 2)))" = "$PONG" ]
	done
	send M '{"type":5}' '{"type":{"job":1}}'
	settle M
	is_error "$(line M 17)" invalid_type
	is_error "$(line M 18)" invalid_type
	[ "$(daemon_stat .submitted)" = 0 ]
	send M '{"type":"job","job_type":"t","id":"it1","body":"good","priority":2}'
	join_worker W t
	serve W 1
	wait_lines M 20
	same_json "$(line M 20)" '{"id":"it1","body":{"done":"it1"}}'
	assert_daemon_healthy
}

@test "invalid type names get invalid_type with the id" {
	local x256 e128
	x256=$(printf 'x%.0s' $(seq 256))
	e128=$(printf 'é%.0s' $(seq 128))
	local names=('""' '"a/b"' '"/"' '"."' '".."' '"a\u0001b"' '"tab\there"'
		'"del\u007f"' '"c1\u0085"' '"line\nbreak"' "\"$x256\"" "\"$e128\"")
	local i
	conn_open M
	for i in "${!names[@]}"; do
		send M "{\"type\":\"job\",\"job_type\":${names[$i]},\"id\":\"tn$i\",\"body\":1}"
		settle M
		is_error "$(line M $((2 * i + 1)))" invalid_type "\"tn$i\""
	done
	[ "$(daemon_stat .submitted)" = 0 ]
	[ "$(daemon_stat '.types | length')" = 0 ]
	send M '{"type":"job","job_type":"fine","id":"tn0","body":"good"}'
	join_worker W fine
	serve W 1
	wait_lines M $((2 * ${#names[@]} + 1))
	same_json "$(tail -n 1 "$(conn_file M)")" '{"id":"tn0","body":{"done":"tn0"}}'
	assert_daemon_healthy
}

@test "type names at the edge of validity are accepted" {
	local x255 e127 i
	x255=$(printf 'x%.0s' $(seq 255))
	e127=$(printf 'é%.0s' $(seq 127))
	local names=("$x255" "$e127" '...' '.hidden' 'a b' '日本語' 'a\\b' '-')
	conn_open M
	for i in "${!names[@]}"; do
		join_worker "W$i" "${names[$i]}"
		send M "{\"type\":\"job\",\"job_type\":\"${names[$i]}\",\"id\":\"edge$i\",\"body\":$i}"
		serve "W$i" 1
		wait_lines M $((i + 1))
		same_json "$(line M $((i + 1)))" "{\"id\":\"edge$i\",\"body\":{\"done\":\"edge$i\"}}"
	done
}

@test "invalid ids get invalid_type without an id" {
	local s256
	s256=$(printf 'i%.0s' $(seq 256))
	local ids=('""' "\"$s256\"" 1.5 1e3 -0.0 '{}' '{"id":1}' '[]' '[1]' true false null)
	local i
	conn_open M
	for i in "${!ids[@]}"; do
		send M "{\"type\":\"job\",\"job_type\":\"badid\",\"id\":${ids[$i]},\"body\":1}"
		settle M
		is_error "$(line M $((2 * i + 1)))" invalid_type
	done
	[ "$(daemon_stat .submitted)" = 0 ]
	# At the limits: 255 bytes, and one byte, are fine ids.
	local s255=${s256:1}
	send M "{\"type\":\"job\",\"job_type\":\"badid\",\"id\":\"$s255\",\"body\":1}" \
		'{"type":"job","job_type":"badid","id":"z","body":2}'
	join_worker W badid
	serve W 2
	wait_lines M $((2 * ${#ids[@]} + 2))
	same_json "$(line M $((2 * ${#ids[@]} + 1)))" "{\"id\":\"$s255\",\"body\":{\"done\":\"$s255\"}}"
	same_json "$(line M $((2 * ${#ids[@]} + 2)))" '{"id":"z","body":{"done":"z"}}'
	assert_daemon_healthy
}

@test "unknown and worker-only message types on the master port get unknown_type" {
	conn_open M
	send M '{"type":"frobnicate"}'
	settle M
	send M '{"type":"frobnicate","id":"u2"}'
	settle M
	send M '{"type":"join","job_type":"t"}'
	settle M
	send M '{"type":"response","body":1}'
	settle M
	send M '{"type":"","id":5}'
	settle M
	send M '{"type":"JOB","job_type":"t","id":"u6","body":1}'
	settle M
	is_error "$(line M 1)" unknown_type
	is_error "$(line M 3)" unknown_type '"u2"'
	is_error "$(line M 5)" unknown_type
	is_error "$(line M 7)" unknown_type
	is_error "$(line M 9)" unknown_type 5
	is_error "$(line M 11)" unknown_type '"u6"'
	[ "$(received M | wc -l)" = 6 ]
	send M '{"type":"job","job_type":"t","id":"u6","body":"good"}'
	join_worker W t
	serve W 1
	wait_lines M 13
	same_json "$(line M 13)" '{"id":"u6","body":{"done":"u6"}}'
	assert_daemon_healthy
}

@test "a master may have many jobs outstanding and gets each result once" {
	local i
	conn_open M
	for i in $(seq 1 50); do
		send M "{\"type\":\"job\",\"job_type\":\"many\",\"id\":$i,\"body\":{\"n\":$i}}"
	done
	settle M
	bg "$JOBCTL" work many -- cat
	bg "$JOBCTL" work many -- cat
	bg "$JOBCTL" work many -- cat
	wait_lines M 51 30
	[ "$(received M | jq -c 'select(.body.n != .id)')" = "" ]
	[ "$(received M | jq -r .id | sort -n | tr '\n' ' ')" = "$(seq 1 50 | tr '\n' ' ')" ]
}

@test "escaped keys, ids and type names are read by their meaning" {
	conn_open M
	send M '{"typ\u0065":"job","job_\u0074ype":"esc","\u0069d":"e\u0031","body":"\u00e9\n"}' \
		'{"type":"job","job_type":"esc","id":"e1","body":"duplicate"}' \
		'{"type":"job","job_type":"a\u002fb","id":"e2","body":1}' \
		'{"type":"job","job_type":"\u002e\u002e","id":"e3","body":1}' \
		'{"type":"job","job_type":"\u0065sc","id":"\u0037","body":"seven"}' \
		'{"type":"job","job_type":"esc","id":7,"body":"int seven"}'
	settle M
	is_error "$(line M 1)" id_exists '"e1"'
	is_error "$(line M 2)" invalid_type '"e2"'
	is_error "$(line M 3)" invalid_type '"e3"'
	is_error "$(line M 4)" id_exists 7
	[ "$(line M 5)" = "$PONG" ]
	[ "$(job_status '"e1"')" = queued ]
	join_worker W esc
	serve W 2
	wait_lines M 7
	same_lines "$(jobs_of W)" '{"type":"job","id":"e1","body":"é\n"}
{"type":"job","id":"7","body":"seven"}'
	same_lines "$(received M | tail -n 2)" '{"id":"e1","body":{"done":"e1"}}
{"id":"7","body":{"done":"7"}}'
	assert_daemon_healthy
}
