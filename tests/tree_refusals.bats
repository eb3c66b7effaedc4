#!/usr/bin/env bats
# tree_refusals.bats — a write the tree refuses says why: a warning in the
# log with the path and the reason (a few per window, so a flood cannot
# fill the log), and the last 100 refusals as lines of /refusals: time,
# path and reason, separated by tabs.

load 'helpers/daemon'
load 'helpers/frames'
load 'helpers/fs'

setup() {
	require_fuse
}

# bad_write FILE BYTES: one write(2) of BYTES (Python escapes) to FILE;
# prints the errno it failed with, or 0.
bad_write() {
	python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
try:
    os.write(fd, sys.argv[2].encode().decode("unicode_escape").encode())
    print(0)
except OSError as e:
    print(e.errno)' "$1" "$2"
}

@test "a line that is not JSON fails EINVAL; the log and refusals say which file and why" {
	start_daemon_mounted
	[ -f "$MNT/refusals" ]
	[ -z "$(cat "$MNT/refusals")" ]
	mkdir "$MNT/types/r"
	[ "$(bad_write "$MNT/types/r/queue" '{"ok":1}\n{"a":1,}\n')" = 22 ]
	[ "$(tree_njobs)" = 0 ]
	grep -E 'jobfs warning: tree: a write to types/r/queue was refused: Invalid argument: line 2 is not JSON' "$DAEMON_LOG"
	[ "$(wc -l <"$MNT/refusals")" = 1 ]
	IFS=$'\t' read -r when path reason <"$MNT/refusals"
	[[ $when =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$ ]]
	[ "$path" = types/r/queue ]
	[[ $reason == "Invalid argument: line 2 is not JSON: "* ]]
	# The other files that take writes say why too.
	[ "$(bad_write "$MNT/types/r/submit" '{"body":1,"dealy":5}\n')" = 22 ]
	[ "$(bad_write "$MNT/types/r/limit" 'many\n')" = 22 ]
	[ "$(bad_write "$MNT/types/r/kick" 'nosuch\n')" = 2 ]
	[ "$(bad_write "$MNT/types/r/retries" '1000\n')" = 22 ]
	run cut -f2,3 "$MNT/refusals"
	[ "${lines[1]}" = $'types/r/submit\tInvalid argument: unknown field "dealy"' ]
	[ "${lines[2]}" = $'types/r/limit\tInvalid argument: write a number' ]
	[ "${lines[3]}" = $'types/r/kick\tNo such file or directory: no job of r has id nosuch' ]
	[[ ${lines[4]} == $'types/r/retries\tInvalid argument: "retries" must be'* ]]
	grep -q 'tree: a write to types/r/kick was refused: No such file or directory: no job of r has id nosuch' "$DAEMON_LOG"
	assert_tree_healthy
}

@test "150 refused writes leave the last 100 in refusals and only the first few in the log" {
	JOBFS_LOG_INTERVAL=600 start_daemon_mounted
	mkdir "$MNT/types/r"
	# Write i fails at its line i, so each refusal says which write it was.
	python3 - "$MNT/types/r/queue" <<'PY'
import os, sys
for i in range(1, 151):
    fd = os.open(sys.argv[1], os.O_WRONLY)
    try:
        os.write(fd, b"1\n" * (i - 1) + b"{bad\n")
        sys.exit("write %d was taken" % i)
    except OSError as e:
        assert e.errno == 22, e
    os.close(fd)
PY
	[ "$(tree_njobs)" = 0 ]
	[ "$(wc -l <"$MNT/refusals")" = 100 ]
	[[ "$(head -n1 "$MNT/refusals" | cut -f3)" == "Invalid argument: line 51 is not JSON"* ]]
	[[ "$(tail -n1 "$MNT/refusals" | cut -f3)" == "Invalid argument: line 150 is not JSON"* ]]
	# Five warnings in a window of the log (600 s here), the rest counted.
	[ "$(grep -c 'tree: a write to types/r/queue was refused' "$DAEMON_LOG")" = 5 ]
	assert_tree_healthy
}

@test "a last line without newline refused at close is logged and listed too" {
	start_daemon_mounted
	mkdir "$MNT/types/r"
	run python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.write(fd, b"{\"a\":")
try:
    os.close(fd)
    print(0)
except OSError as e:
    print(e.errno)' "$MNT/types/r/queue"
	[ "$output" = 22 ]
	[ "$(cut -f2,3 "$MNT/refusals" | cut -c1-45)" = $'types/r/queue\tInvalid argument: line 1 is not' ]
	grep -q 'tree: a write to types/r/queue was refused' "$DAEMON_LOG"
	assert_tree_healthy
}
