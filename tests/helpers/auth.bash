# auth.bash — tokens for the --auth tests.
#
# load 'helpers/daemon'; load 'helpers/frames'; load 'helpers/ext';
# load 'helpers/auth'
#
#   write_tokens FILE          the test's token file (mode 600): alice and
#                              bob are masters, wk a worker, root an admin
#   start_auth_daemon [opts]   start_daemon --auth $TOKENS [opts]
#   as NAME CMD...             run CMD with NAME's token in JOBFS_TOKEN
#   auth_healthy               a fresh worker and master (the admin token)
#                              still complete a job end to end

TOK_ALICE=alice-0123456789abcdef0123
TOK_BOB=bob-0123456789abcdef01234567
TOK_WK=wk-0123456789abcdef0123456789
TOK_ROOT=root-0123456789abcdef012345
export TOK_ALICE TOK_BOB TOK_WK TOK_ROOT

write_tokens() {
	cat >"$1" <<TOKENS
# name roles... token
alice master $TOK_ALICE
bob   master $TOK_BOB
wk    worker $TOK_WK
root  admin  $TOK_ROOT
TOKENS
	chmod 600 "$1"
}

start_auth_daemon() {
	TOKENS=$BATS_TEST_TMPDIR/tokens
	write_tokens "$TOKENS"
	start_daemon --auth "$TOKENS" "$@"
}

# as NAME CMD...: NAME is alice, bob, wk or root.
as() {
	local who=$1 var
	shift
	var=TOK_${who^^}
	JOBFS_TOKEN=${!var} "$@"
}

auth_healthy() {
	JOBFS_TOKEN=$TOK_ROOT assert_daemon_healthy
}

# auth_frame NAME [action]: the auth frame with NAME's token.
auth_frame() {
	local var=TOK_${1^^} key=${2:-type}
	printf '{"%s":"auth","token":"%s"}' "$key" "${!var}"
}
