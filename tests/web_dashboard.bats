#!/usr/bin/env bats
# web_dashboard.bats — the dashboard at GET / in a real browser:
# headless Chromium, driven through the DevTools protocol by
# helpers/cdp.py, loads the page while a worker runs jobs; the figures in
# the rendered DOM match the daemon's stats, the throughput chart moves,
# clicking a job id shows its body, and its cancel button cancels it.  The
# screenshot is kept in $JOBFS_BIN/artifacts/dashboard.png
# (docs/dashboard.png is a copy).  The operator's buttons (retry a dead
# job, retry a type's dead, pause, resume, cancel) change the daemon's
# state; failures kept before the page opened are shown; long job lists
# are cut; under --auth a token without the admin role is refused.

load 'helpers/daemon'
load 'helpers/web'
load 'helpers/conn'
load 'helpers/auth'

setup() {
	CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
	[ -n "$CHROMIUM" ] || skip "no chromium: install the Debian package chromium to run the browser test"
	[[ "$BATS_TEST_DESCRIPTION" == *"--auth"* ]] || start_web
}

cdp() {
	python3 "$BATS_TEST_DIRNAME/helpers/cdp.py" "$CHROMIUM" "$H/" "$@"
}

# feed: a job for the worker every 20 ms, until teardown stops it.
feed() {
	local i=0
	while curl -s -o /dev/null --json "$((i++))" "$H/types/dash/jobs"; do
		sleep 0.02
	done
}

@test "the dashboard shows the daemon's figures live, its chart moves, a click shows a job" {
	[ "$(hcurl "$H/" | head -c 15)" = '<!doctype html>' ]
	hcurl -i "$H/" | grep -q 'Content-Type: text/html'
	for i in 1 2 3; do
		hcurl --json "{\"n\":\"h$i\"}" "$H/types/held/jobs?id=h$i" >/dev/null
	done
	bg "$JOBCTL" work dash -- sh -c 'sleep 0.05; cat'
	wait_until 10 stat_is .workers 1
	bg feed
	held=$(daemon_stat .types.held.queued)
	workers=$(daemon_stat .workers)
	dash_workers=$(daemon_stat .types.dash.workers)
	[ "$held" = 3 ]
	[ "$workers" = 1 ]
	[ "$dash_workers" = 1 ]
	art=$JOBFS_BIN/artifacts
	mkdir -p "$art"
	rm -f "$art/dashboard.png"
	row="document.querySelector(\"#types tr[data-type='%s'] .%s\")"
	# shellcheck disable=SC2059
	run cdp \
		"wait:($(printf "$row" held queued) || {}).textContent === \"$held\"" \
		"wait:($(printf "$row" dash workers) || {}).textContent === \"$dash_workers\"" \
		"wait:document.getElementById(\"total-workers\").textContent === \"$workers\"" \
		'wait:Number(document.getElementById("chart").dataset.sum) > 0' \
		'wait:(window.p0 = window.p0 || document.getElementById("chart-line").getAttribute("points")) && document.getElementById("chart-line").getAttribute("points") !== window.p0' \
		'wait:document.querySelector("#workers td") && document.querySelector("#workers td").textContent !== "no workers"' \
		'wait:document.querySelector("a.jobid[data-id=\"h1\"]")' \
		'click:a.jobid[data-id="h1"]' \
		'wait:document.getElementById("job-body").textContent === "{\"n\":\"h1\"}"' \
		'wait:document.getElementById("job-status").textContent.includes("queued")' \
		'wait:Number(document.getElementById("chart").dataset.points) >= 8' \
		'eval:document.getElementById("chart").dataset.sum' \
		"shot:$art/dashboard.png" \
		'click:#job-cancel' \
		'wait:document.getElementById("job-status").textContent.includes("cancelled")'
	echo "$output"
	[ "$status" = 0 ]
	[ "$(head -c 8 "$art/dashboard.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]
	# The figures still agree with the daemon's own (held jobs are not
	# run); the cancel button, a POST from the daemon's own origin, ended h1.
	[ "$(daemon_stat .types.held.queued)" = $((held - 1)) ]
	[ "$(job_status '"h1"')" = cancelled ]
	other_clients_ok
}

# rest_is URL JQ VALUE: GET URL (as $HTTP_AUTH, if set) has VALUE at JQ.
rest_is() {
	[ "$(hcurl ${HTTP_AUTH:+-H "$HTTP_AUTH"} "$1" | jq -c "$2")" = "$3" ]
}

@test "the dashboard's buttons act: retry a dead job, retry a type's dead, pause, resume, cancel; failures kept; long job lists cut" {
	# Three jobs fail and are dead before the page opens.
	"$JOBCTL" work bad --fail -- sh -c 'echo oops-$RANDOM >&2; exit 3' >/dev/null 2>&1 &
	wpid=$!
	BG_PIDS+=("$wpid")
	for i in 1 2 3; do
		hcurl --json '{}' "$H/types/bad/jobs?id=d$i" >/dev/null
	done
	wait_until 20 stat_is .types.bad.dead 3
	kill "$wpid"
	wait_until 10 stat_is .types.bad.workers 0
	hcurl --json '{"n":1}' "$H/types/held/jobs?id=h1" >/dev/null
	# A worker runs twelve jobs at once: its list is cut at eight.
	bg "$JOBCTL" work --capacity 12 busy -- sleep 600
	for i in $(seq 12); do
		hcurl --json '{}' "$H/types/busy/jobs" >/dev/null
	done
	wait_until 20 stat_is .types.busy.running 12
	rest_is "$H/failures" '.failures | map(.id) | sort' '["d1","d2","d3"]'
	rest_is "$H/types/bad/dead" '.jobs[0].error.stderr | startswith("oops")' true
	msg='document.getElementById("msg")'
	typ="#types tr[data-type='%s'] button[data-action='%s']"
	# shellcheck disable=SC2059
	run cdp \
		'wait:document.querySelector("#failures tr[data-id=\"d3\"] td.err") && document.querySelector("#failures tr[data-id=\"d3\"] td.err").textContent.startsWith("oops")' \
		'wait:document.querySelector("#dead button[data-action=\"kick\"][data-id=\"d1\"]")' \
		'wait:document.querySelector("#workers td.jobs .more") && document.querySelector("#workers td.jobs .more").textContent === "+4 more"' \
		'wait:document.querySelectorAll("#workers td.jobs a.jobid").length === 8' \
		'wait:document.getElementById("workers").scrollWidth <= document.getElementById("workers").parentElement.clientWidth' \
		'click:#dead button[data-action="kick"][data-id="d1"]' \
		"wait:$msg.textContent === \"retried d1\"" \
		'wait:fetch("/jobs/d1").then((r) => r.json()).then((j) => j.status === "queued")' \
		'wait:document.querySelector("#dead a.jobid[data-id=\"d2\"]") && !document.querySelector("#dead a.jobid[data-id=\"d1\"]")' \
		'click:#dead a.jobid[data-id="d2"]' \
		'wait:document.getElementById("job-status").textContent.includes("failed") && !document.getElementById("job-kick").disabled' \
		'click:#job-kick' \
		"wait:$msg.textContent === \"retried d2\"" \
		'wait:document.getElementById("job-status").textContent.includes("queued")' \
		"wait:document.querySelector(\"$(printf "$typ" bad kick-all)\") && !document.querySelector(\"$(printf "$typ" bad kick-all)\").disabled" \
		"click:$(printf "$typ" bad kick-all)" \
		"wait:$msg.textContent === \"retried 1 dead of bad\"" \
		"click:$(printf "$typ" bad pause)" \
		"wait:$msg.textContent === \"bad paused\"" \
		'wait:fetch("/types/bad").then((r) => r.json()).then((j) => j.paused === true)' \
		"wait:document.querySelector(\"$(printf "$typ" bad resume)\")" \
		"click:$(printf "$typ" bad resume)" \
		"wait:$msg.textContent === \"bad resumed\"" \
		"wait:document.querySelector(\"$(printf "$typ" held pause)\")" \
		"click:$(printf "$typ" held pause)" \
		"wait:$msg.textContent === \"held paused\"" \
		'wait:document.querySelector("a.jobid[data-id=\"h1\"]")' \
		'click:a.jobid[data-id="h1"]' \
		'wait:document.getElementById("job-status").textContent.includes("queued")' \
		'click:#job-cancel' \
		"wait:$msg.textContent === \"cancelled h1\"" \
		'wait:document.getElementById("job-status").textContent.includes("cancelled")'
	echo "$output"
	[ "$status" = 0 ]
	# The daemon's own state, asked over TCP: every dead job queued again,
	# bad resumed, held paused, h1 cancelled.
	[ "$(daemon_stat .types.bad.dead)" = 0 ]
	[ "$(daemon_stat .types.bad.kicked)" = 3 ]
	[ "$(daemon_stat .types.bad.queued)" = 3 ]
	[ "$(daemon_stat .types.bad.paused)" = false ]
	[ "$(daemon_stat .types.held.paused)" = true ]
	[ "$(job_status '"h1"')" = cancelled ]
	other_clients_ok
}

@test "with --auth the dashboard's actions need an admin token: refused for a master's, shown on the page" {
	HTTP_PORT=$(random_port)
	start_auth_daemon --http "127.0.0.1:$HTTP_PORT"
	wait_for_port "$HTTP_PORT"
	H=http://127.0.0.1:$HTTP_PORT
	HTTP_AUTH="Authorization: Bearer $TOK_ROOT"
	hcurl -H "$HTTP_AUTH" --json '{}' "$H/types/held/jobs?id=h1" >/dev/null
	# Each action: 401 without a token, 403 with a master's.
	for path in jobs/h1/kick jobs/h1/cancel types/held/kick types/held/pause types/held/resume; do
		[ "$(hstatus -X POST "$H/$path")" = 401 ]
		[ "$(hstatus -X POST -H "Authorization: Bearer $TOK_ALICE" "$H/$path")" = 403 ]
	done
	for path in failures types/held/dead; do
		[ "$(hstatus "$H/$path")" = 401 ]
		[ "$(hstatus -H "Authorization: Bearer $TOK_ALICE" "$H/$path")" = 403 ]
	done
	rest_is "$H/types/held" .paused false
	# The page, loaded as root, then asked to act with alice's token.
	msg='document.getElementById("msg")'
	run cdp "header:$HTTP_AUTH" \
		"wait:document.querySelector(\"#types tr[data-type='held'] button[data-action='pause']\")" \
		"header:Authorization: Bearer $TOK_ALICE" \
		"click:#types tr[data-type='held'] button[data-action='pause']" \
		"wait:$msg.className === \"bad\" && $msg.textContent.startsWith(\"pause refused: 403 forbidden\")"
	echo "$output"
	[ "$status" = 0 ]
	rest_is "$H/types/held" .paused false
	rest_is "$H/jobs/h1" .status '"queued"'
	# As root, the same button pauses it.
	run cdp "header:$HTTP_AUTH" \
		"wait:document.querySelector(\"#types tr[data-type='held'] button[data-action='pause']\")" \
		"click:#types tr[data-type='held'] button[data-action='pause']" \
		"wait:$msg.textContent === \"held paused\""
	echo "$output"
	[ "$status" = 0 ]
	rest_is "$H/types/held" .paused true
	admin_ok
}

# admin_ok: with root's token, a worker and an HTTP client still complete a job.
admin_ok() {
	local id
	as root "$JOBCTL" work art -- cat >/dev/null 2>&1 &
	BG_PIDS+=("$!")
	id=$(hcurl -H "$HTTP_AUTH" --json '{"ok":1}' "$H/types/art/jobs" | jq -r .id)
	[ "$(hcurl -H "$HTTP_AUTH" "$H/jobs/$id/response")" = '{"ok":1}' ]
}
