#!/usr/bin/env bats
# web_dashboard.bats — the dashboard at GET / in a real browser:
# headless Chromium, driven through the DevTools protocol by
# helpers/cdp.py, loads the page while a worker runs jobs; the figures in
# the rendered DOM match the daemon's stats, the throughput chart moves,
# clicking a job id shows its body, and its cancel button cancels it.  The
# screenshot is kept in $JOBFS_BIN/artifacts/dashboard.png
# (docs/dashboard.png is a copy).

load 'helpers/daemon'
load 'helpers/web'
load 'helpers/conn'

setup() {
	CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
	[ -n "$CHROMIUM" ] || skip "no chromium: install the Debian package chromium to run the browser test"
	start_web
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
