#!/usr/bin/env bats
# jobs_by_state.bats — jobs listed by state everywhere: the tree's state/S
# and types/T/state/S (links to jobs/ID), GET /jobs?state= with its
# cursor, the "list" request, and jobctl ls.

load 'helpers/daemon'
load 'helpers/fs'
load 'helpers/web'
load 'helpers/conn'
load 'helpers/frames'

setup() {
	require_fuse
	HTTP_PORT=$(random_port)
	start_daemon_mounted --http "127.0.0.1:$HTTP_PORT" || return 1
	wait_for_port "$HTTP_PORT"
	H=http://127.0.0.1:$HTTP_PORT
}

# listed DIR: the names DIR lists, on one line.
listed() {
	ls "$1" | tr '\n' ' '
}

# listed_is DIR TEXT: for wait_until.
listed_is() {
	[ "$(listed "$1")" = "$2" ]
}

# rest_ids QUERY: the ids of GET /jobs?QUERY, on one line.
rest_ids() {
	hcurl "$H/jobs?$1" | jq -r '[.jobs[].id] | join(" ")'
}

# tcp_list FRAME: the daemon's answer to one request.
tcp_list() {
	printf '%s\n' "$1" | "$JOBCTL" raw -n 1 -t 5000
}

# is_err FRAME CODE TEXT: FRAME is an error CODE whose reason holds TEXT.
is_err() {
	[ "$(jq -r .error <<<"$1")" = "$2" ] || return 1
	[[ "$(jq -r .reason <<<"$1")" == *"$3"* ]]
}

# jobs_in_every_state: q1 queued, d1 delayed, w1 waiting (for q1), c1
# cancelled, t1 timed out (types idle), r1 running (slow), ok1 done (ok),
# f1 failed with no retries left: dead (bad).
jobs_in_every_state() {
	hcurl --json 1 "$H/types/idle/jobs?id=q1" >/dev/null
	hcurl --json 1 "$H/types/idle/jobs?id=d1&delay=600000" >/dev/null
	hcurl --json 1 "$H/types/idle/jobs?id=w1&after=q1" >/dev/null
	hcurl --json 1 "$H/types/idle/jobs?id=c1" >/dev/null
	hcurl -X POST --json '{}' "$H/jobs/c1/cancel" >/dev/null
	hcurl --json 1 "$H/types/idle/jobs?id=t1&timeout=50" >/dev/null
	wait_until 10 http_job_is t1 timeout
	bg "$GLOOM" worker slow --hold "$BATS_TEST_TMPDIR/go"
	hcurl --json 1 "$H/types/slow/jobs?id=r1" >/dev/null
	wait_until 10 http_job_is r1 running
	bg "$JOBCTL" work ok -- cat
	hcurl --json 1 "$H/types/ok/jobs?id=ok1" >/dev/null
	wait_until 10 http_job_is ok1 done
	bg "$JOBCTL" work --fail bad -- sh -c 'echo broken >&2; exit 3'
	hcurl --json 1 "$H/types/bad/jobs?id=f1&retries=0" >/dev/null
	wait_until 10 http_job_is f1 failed
}

@test "the tree lists each state in state/S and types/T/state/S, as links to jobs/ID" {
	jobs_in_every_state
	[ "$(listed "$MNT/state")" = "cancelled dead delayed done failed queued running waiting " ]
	[ "$(listed "$MNT/state/queued")" = "q1 " ]
	[ "$(listed "$MNT/state/delayed")" = "d1 " ]
	[ "$(listed "$MNT/state/waiting")" = "w1 " ]
	[ "$(listed "$MNT/state/cancelled")" = "c1 " ]
	[ "$(listed "$MNT/state/running")" = "r1 " ]
	[ "$(listed "$MNT/state/done")" = "ok1 " ]
	[ "$(listed "$MNT/state/failed")" = "f1 t1 " ]
	[ "$(listed "$MNT/state/dead")" = "f1 " ]
	[ -L "$MNT/state/dead/f1" ]
	[ "$(readlink "$MNT/state/dead/f1")" = ../../jobs/f1 ]
	[ "$(cat "$MNT/state/dead/f1/status")" = failed ]
	# per type
	[ "$(listed "$MNT/types/idle/state/failed")" = "t1 " ]
	[ "$(listed "$MNT/types/idle/state/queued")" = "q1 " ]
	[ "$(listed "$MNT/types/idle/state/done")" = "" ]
	[ "$(listed "$MNT/types/bad/state/dead")" = "f1 " ]
	[ "$(readlink "$MNT/types/bad/state/dead/f1")" = ../../../../jobs/f1 ]
	[ "$(cat "$MNT/types/bad/state/dead/f1/type")" = bad ]
	[ ! -e "$MNT/state/queued/f1" ]
	[ ! -e "$MNT/types/idle/state/dead/f1" ]
	# A job moves as its state changes: r1 ends, d1 is cancelled.
	touch "$BATS_TEST_TMPDIR/go"
	wait_until 10 listed_is "$MNT/state/done" "ok1 r1 "
	[ "$(listed "$MNT/state/running")" = "" ]
	[ ! -e "$MNT/state/running/r1" ]
	hcurl -X POST --json '{}' "$H/jobs/d1/cancel" >/dev/null
	wait_until 10 listed_is "$MNT/state/cancelled" "c1 d1 "
	[ "$(listed "$MNT/types/idle/state/delayed")" = "" ]
	[ "$(readlink "$MNT/state/done/r1")" = ../../jobs/r1 ]
	assert_tree_healthy
}

@test "GET /jobs?state= pages with its cursor; the list request and jobctl ls say the same" {
	jobs_in_every_state
	[ "$(hcurl "$H/jobs?state=dead" | jq -c '[.jobs[] | [.id, .type, .state, .error.status, .attempts_total]], .next')" = '[["f1","bad","dead",3,1]]
null' ]
	[ "$(hcurl "$H/jobs?state=failed" | jq -c '[.jobs[] | [.id, .state, .status]]')" = '[["f1","dead","failed"],["t1","failed","timeout"]]' ]
	[ "$(rest_ids 'state=running')" = r1 ]
	[ "$(rest_ids 'state=failed&type=idle')" = t1 ]
	[ "$(rest_ids 'state=queued&type=nosuch')" = "" ]
	# Pages of two through q1 (type idle) and p1..p5 (type page): types
	# in the order of their names, each type's jobs as they were queued.
	for i in 1 2 3 4 5; do
		hcurl --json 1 "$H/types/page/jobs?id=p$i" >/dev/null
	done
	all=
	after=
	for i in 1 2 3 4 5; do
		page=$(hcurl -G "$H/jobs" --data-urlencode state=queued --data-urlencode limit=2 \
			${after:+--data-urlencode "after=$after"})
		all="$all $(jq -r '[.jobs[].id] | join(" ")' <<<"$page")"
		after=$(jq -r '.next // empty' <<<"$page")
		[ -n "$after" ] || break
	done
	[ "$all" = " q1 p1 p2 p3 p4 p5" ]
	[ "$i" = 3 ]
	# A page goes on where it was even if its last job left the state.
	page=$(hcurl "$H/jobs?state=queued&type=page&limit=2")
	[ "$(jq -r '[.jobs[].id] | join(" ")' <<<"$page")" = "p1 p2" ]
	hcurl -X POST --json '{}' "$H/jobs/p2/cancel" >/dev/null
	hcurl -X POST --json '{}' "$H/jobs/p3/cancel" >/dev/null
	[ "$(rest_ids "state=queued&type=page&limit=2&after=$(jq -r .next <<<"$page")")" = "p4 p5" ]
	# The same over TCP, in both dialects, and from jobctl ls.
	[ "$(tcp_list '{"type":"list","state":"dead"}' | jq -c '[.jobs[].id], .next')" = '["f1"]
null' ]
	out=$(tcp_list '{"action":"list","type":"page","state":"queued","limit":1}')
	[ "$(jq -c '[.jobs[].id]' <<<"$out")" = '["p1"]' ]
	next=$(jq -c .next <<<"$out")
	[ "$(tcp_list "{\"action\":\"list\",\"type\":\"page\",\"state\":\"queued\",\"cursor\":$next}" | jq -c '[.jobs[].id]')" = '["p4","p5"]' ]
	run "$JOBCTL" ls --state dead --plain
	[ "$status" = 0 ]
	[ "$(cut -f1-3,5 <<<"$output")" = "f1	bad	dead	1" ]
	[[ "$(cut -f6 <<<"$output")" == *'"stderr":"broken\n"'* ]]
	run "$JOBCTL" ls --state failed
	[ "$status" = 0 ]
	[ "${#lines[@]}" = 3 ]
	[[ "${lines[0]}" == ID*TYPE*STATE*AGE*ATTEMPTS* ]]
	[[ "${lines[1]}" == "f1 "*bad*dead*'"status":3'* ]]
	[[ "${lines[2]}" == "t1 "*idle*failed* ]]
	[ "$("$JOBCTL" ls --type idle --plain | cut -f1,3 | tr '\t\n' ': ')" = "q1:queued d1:delayed w1:waiting t1:failed c1:cancelled " ]
	[ "$("$JOBCTL" ls --state running --plain | cut -f1,6)" = "r1	$(jq -r .worker <<<"$(hcurl "$H/jobs/r1")")" ]
	[ "$("$JOBCTL" ls --plain --limit 3 | wc -l)" = 3 ]
	# Every job once without --state: those 8 and p1..p5.
	[ "$("$JOBCTL" ls --plain --limit 0 | wc -l)" = 13 ]
	[ "$("$JOBCTL" ls --json --state done | jq -r .id)" = ok1 ]
	other_clients_ok
}

@test "bad parameters are refused with a reason; other clients go on" {
	hcurl --json 1 "$H/types/idle/jobs?id=q1" >/dev/null
	run hcurl -w ' %{http_code}' "$H/jobs?state=sleeping"
	[[ "$output" == *'"error":"invalid_type"'*'must be one of queued, running, delayed, waiting, done, failed, cancelled, dead"}'*' 400' ]]
	run hcurl -w ' %{http_code}' "$H/jobs"
	[[ "$output" == *'"state\" must be one of'*' 400' ]]
	run hcurl -w ' %{http_code}' "$H/jobs?state=queued&limit=0"
	[[ "$output" == *'"limit\" must be an integer'*' 400' ]]
	run hcurl -w ' %{http_code}' "$H/jobs?state=queued&limit=1001"
	[[ "$output" == *'"limit\" must be 1 to 1000'*' 400' ]]
	run hcurl -w ' %{http_code}' "$H/jobs?state=queued&after=nonsense"
	[[ "$output" == *'"after\" must be the \"next\" of a page'*' 400' ]]
	run hcurl -w ' %{http_code}' "$H/jobs?state=queued&page=2"
	[[ "$output" == *'unknown query parameter \"page\" (GET /jobs takes state, type, limit, after)'*' 400' ]]
	run hcurl -w ' %{http_code}' "$H/jobs?state=queued&type=a/b"
	[[ "$output" == *'"type\" is not a type name'*' 400' ]]
	run hcurl -w ' %{http_code}' -X POST --json '{}' "$H/jobs?state=queued"
	[[ "$output" == *'method_not_allowed'*' 405' ]]
	# A cursor of one type's listing is not one of another's.
	next=$(hcurl "$H/jobs?state=queued&limit=1" | jq -r .next)
	[ "$next" = null ]
	hcurl --json 1 "$H/types/idle/jobs?id=q2" >/dev/null
	next=$(hcurl "$H/jobs?state=queued&limit=1" | jq -r .next)
	[ "$(hstatus "$H/jobs?state=queued&type=other&after=$next")" = 200 ]
	hcurl --json 1 "$H/types/other/jobs?id=o1" >/dev/null
	[ "$(hstatus "$H/jobs?state=queued&type=other&after=$next")" = 400 ]
	# TCP
	is_err "$(tcp_list '{"type":"list","state":"sleeping"}')" invalid_type 'must be one of'
	[ "$(tcp_list '{"type":"list"}')" = '{"error":"missing_field","name":"state"}' ]
	is_err "$(tcp_list '{"type":"list","state":"queued","limit":0}')" invalid_type '"limit" must be 1 to 1000'
	is_err "$(tcp_list '{"type":"list","state":"queued","limit":"x"}')" invalid_type limit
	is_err "$(tcp_list '{"type":"list","state":"queued","cursor":"1-zz-zz"}')" invalid_type '"cursor" must be'
	is_err "$(tcp_list '{"type":"list","state":"queued","job_type":""}')" invalid_type job_type
	# jobctl
	run "$JOBCTL" ls --state sleeping
	[ "$status" = 1 ]
	[[ "$output" == *'invalid_type: "state" must be one of'* ]]
	run "$JOBCTL" ls --limit many
	[ "$status" = 2 ]
	run "$JOBCTL" ls extra
	[ "$status" = 2 ]
	# the tree
	[ ! -e "$MNT/state/sleeping" ]
	[ ! -e "$MNT/state/queued/nosuch" ]
	run ls "$MNT/types/nosuch/state"
	[ "$status" != 0 ]
	run rm "$MNT/state/queued/q1"
	[ "$status" != 0 ]
	[ -L "$MNT/state/queued/q1" ]
	other_clients_ok
	assert_tree_healthy
}
