# peer_ns.bash — a peer beyond loopback: a network namespace joined to
# this one by a veth pair that the test makes and peer_ns_teardown takes
# down again.

NS= VETH=

# make_peer_ns: a namespace $NS whose address $PEER_IP reaches this
# host's $HOST_IP over a veth pair; skips the test if it cannot be made.
make_peer_ns() {
	local n=$((RANDOM % 200 + 20)) m=$((RANDOM % 250)) tag=$RANDOM
	[ "$(id -u)" = 0 ] || skip "network namespaces need root"
	command -v ip >/dev/null || skip "no ip(8)"
	NS=jobfs-p$$-$tag
	VETH=jph$tag
	HOST_IP=10.$n.$m.1
	PEER_IP=10.$n.$m.2
	ip netns add "$NS" 2>/dev/null || { NS=; skip "cannot make a network namespace"; }
	if ! ip link add "$VETH" type veth peer name "jpn$tag" 2>/dev/null; then
		VETH=
		skip "cannot make a veth pair"
	fi
	ip link set "jpn$tag" netns "$NS"
	ip addr add "$HOST_IP/30" dev "$VETH"
	ip link set "$VETH" up
	ip netns exec "$NS" ip addr add "$PEER_IP/30" dev "jpn$tag"
	ip netns exec "$NS" ip link set "jpn$tag" up
	ip netns exec "$NS" ip link set lo up
}

# from_ns CMD...: run CMD in the peer's namespace.
from_ns() {
	ip netns exec "$NS" "$@"
}

# teardown: the daemon's, then the pair and the namespace, if made.
teardown() {
	daemon_teardown
	local s=$?
	[ -z "$VETH" ] || ip link del "$VETH" 2>/dev/null
	[ -z "$NS" ] || ip netns del "$NS" 2>/dev/null
	return $s
}
