#!/usr/bin/env bash
# banshee demo: an attacker and a victim in two throwaway network namespaces.
# The attacker connects, banshee blocks it, the connection fails, banshee list
# shows the block. Nothing outside the two namespaces is touched.
set -euo pipefail
BANSHEE=${1:?usage: demo.sh path/to/banshee}
BANSHEE=$(readlink -f "$BANSHEE")
id=$RANDOM
V=bsh-demo-$id-victim A=bsh-demo-$id-attacker
STATE=$(mktemp -d)
PORT=110
cleanup() {
	[ -n "${LISTENER:-}" ] && kill "$LISTENER" 2>/dev/null || true
	ip netns del "$V" 2>/dev/null || true
	ip netns del "$A" 2>/dev/null || true
	rm -rf "$STATE"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; }

step "two network namespaces: victim 10.99.1.1 (a pop3-like service on :$PORT), attacker 10.99.1.2"
ip netns add "$V"
ip netns add "$A"
ip link add vd$id netns "$V" type veth peer name ad$id netns "$A"
ip -n "$V" addr add 10.99.1.1/24 dev vd$id
ip -n "$A" addr add 10.99.1.2/24 dev ad$id
for ns in "$V" "$A"; do ip -n "$ns" link set lo up; done
ip -n "$V" link set vd$id up
ip -n "$A" link set ad$id up
ip netns exec "$V" python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", '"$PORT"')); s.listen(64)
while True:
    c, _ = s.accept(); c.sendall(b"+OK banshee demo pop3\r\n"); c.close()
' &
LISTENER=$!
for _ in $(seq 50); do # wait up to 5 s for the service
	ip netns exec "$V" bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null && break
	sleep 0.1
done

attack() {
	show "attacker: connect 10.99.1.1:$PORT"
	if ip netns exec "$A" timeout 2 bash -c "exec 3<>/dev/tcp/10.99.1.1/$PORT && head -c 24 <&3" 2>/dev/null; then
		echo "   -> connected"
	else
		echo "   -> connection failed (dropped)"
	fi
}

step "the attacker connects"
attack

step "block it (inside the victim namespace, built-in default policy)"
show "banshee block 10.99.1.2 --reason \"pop3 bruteforce\" --ttl 2h"
ip netns exec "$V" "$BANSHEE" --state-dir "$STATE" block 10.99.1.2 --reason "pop3 bruteforce" --ttl 2h

step "the attacker tries again"
attack

step "what banshee blocked"
show "banshee list"
ip netns exec "$V" "$BANSHEE" --state-dir "$STATE" list
show "banshee status"
ip netns exec "$V" "$BANSHEE" --state-dir "$STATE" status

step "done: the namespaces are removed on exit"
