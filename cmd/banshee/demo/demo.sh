#!/usr/bin/env bash
# banshee demo: both layers in one run, without an AWS account.
#
# An attacker and a victim live in two throwaway network namespaces joined
# by a veth pair. moto_server (the AWS emulator) runs inside the victim's
# namespace on its loopback and holds a small VPC: one subnet, a security
# group open on pop3 (110/tcp), two instances and the subnet's network ACL.
# The walk: the attacker connects; banshee plan explains host vs VPC for
# one instance and for two instances of the subnet; banshee block drops the
# attacker on the host (real packets, the connection fails); banshee block
# at VPC scope writes a network ACL deny; banshee list shows both layers;
# banshee unblock lifts them and the attacker gets through again.
#
# Every banshee command runs inside the victim namespace: the firewall of
# the machine's own (root) namespace is never touched. On exit the
# namespaces, the processes started in them and the state directory are
# removed. Without moto_server (or its Python boto3) on PATH the demo says
# so and shows the host layer only; MOTO_SERVER names another moto_server,
# or "none" to leave the VPC layer out. banshee runs with the built-in
# defaults (an empty configuration file), whatever /etc/banshee holds.
set -euo pipefail
BANSHEE=${1:?usage: demo.sh path/to/banshee}
BANSHEE=$(readlink -f "$BANSHEE")
id=$RANDOM
V=bsh-demo-$id-victim A=bsh-demo-$id-attacker
STATE=$(mktemp -d)
PORT=110
MOTO_PORT=5000 # the victim namespace is new: every loopback port is free
MOTO_SERVER=${MOTO_SERVER:-moto_server}
CONFIG=$STATE/banshee.yaml
echo "# the demo runs with banshee's built-in defaults" >"$CONFIG"
cleanup() {
	for ns in "$V" "$A"; do
		# Everything started inside the namespaces: the pop3 listener and
		# moto_server (with any process it forked).
		pids=$(ip netns pids "$ns" 2>/dev/null || true)
		[ -n "$pids" ] && kill $pids 2>/dev/null || true
	done
	for ns in "$V" "$A"; do
		for _ in $(seq 50); do # wait up to 5 s for them to exit
			[ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break
			sleep 0.1
		done
		pids=$(ip netns pids "$ns" 2>/dev/null || true)
		[ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
		ip netns del "$ns" 2>/dev/null || true
	done
	rm -rf "$STATE"
}
trap cleanup EXIT
step() { printf "\n\033[1m== %s\033[0m\n" "$*"; [ -n "${DEMO_TIMES:-}" ] && date +%T.%N || true; }
show() { printf '$ %s\n' "$*"; }
# banshee runs as root in the victim namespace with the demo's state
# directory; the AWS SDK inside it talks to moto_server.
bsh() {
	show "banshee $*"
	local rc=0
	ip netns exec "$V" env COLUMNS="${COLUMNS:-120}" "${AWSENV[@]}" SSH_CONNECTION= SSH_CLIENT= "$BANSHEE" --state-dir "$STATE" --config "$CONFIG" "$@" || rc=$?
	return $rc
}
AWSENV=()
# wait_tcp NS PORT SECONDS: wait until something listens on 127.0.0.1:PORT
# in namespace NS, polling every 0.1 s.
wait_tcp() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		ip netns exec "$1" bash -c "exec 3<>/dev/tcp/127.0.0.1/$2" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

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
wait_tcp "$V" $PORT 30 || { echo "the pop3 service did not start" >&2; exit 1; }

# The VPC layer: moto_server inside the victim namespace, and a VPC built
# there with boto3 (moto's own dependency, so present wherever moto is).
VPC=""
if [ "$MOTO_SERVER" = none ]; then
	step "MOTO_SERVER=none: showing the host layer only"
elif ! command -v "$MOTO_SERVER" >/dev/null 2>&1; then
	step "$MOTO_SERVER is not on PATH: showing the host layer only (pip install 'moto[server]' for the VPC layer)"
elif ! python3 -c 'import boto3' 2>/dev/null; then
	step "python3 cannot import boto3: showing the host layer only (pip install 'moto[server]' for the VPC layer)"
else
	step "a VPC without an AWS account: moto_server on 127.0.0.1:$MOTO_PORT inside the victim namespace"
	AWSENV=(AWS_ENDPOINT_URL=http://127.0.0.1:$MOTO_PORT AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo
		AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null)
	ip netns exec "$V" env MOTO_ALLOW_NONEXISTENT_REGION=true "$MOTO_SERVER" -H 127.0.0.1 -p $MOTO_PORT >"$STATE/moto.log" 2>&1 &
	if wait_tcp "$V" $MOTO_PORT 60 && world=$(ip netns exec "$V" env "${AWSENV[@]}" python3 - <<'EOF'
import os, boto3
from botocore.config import Config
ec2 = boto3.client("ec2", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1",
                   config=Config(retries={"max_attempts": 10, "mode": "standard"}))
vpc = ec2.create_vpc(CidrBlock="172.31.0.0/16")["Vpc"]["VpcId"]
sub = ec2.create_subnet(VpcId=vpc, CidrBlock="172.31.1.0/24")["Subnet"]["SubnetId"]
sg = ec2.create_security_group(GroupName="pop3", Description="pop3 open to the internet", VpcId=vpc)["GroupId"]
ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
    {"IpProtocol": "tcp", "FromPort": 110, "ToPort": 110, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
ids = [i["InstanceId"] for i in ec2.run_instances(ImageId="ami-12c6146b", MinCount=2, MaxCount=2,
                                                  SubnetId=sub, SecurityGroupIds=[sg])["Instances"]]
acl = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [sub]}])["NetworkAcls"][0]["NetworkAclId"]
print(vpc, sub, sg, ids[0], ids[1], acl)
EOF
	); then
		read -r VPC SUBNET SG I1 I2 ACL <<<"$world"
		echo "VPC $VPC (172.31.0.0/16): subnet $SUBNET with network ACL $ACL,"
		echo "security group $SG open on 110/tcp from 0.0.0.0/0, instances $I1 and $I2"
	else
		step "moto_server did not take the VPC (see $STATE/moto.log): showing the host layer only"
		AWSENV=()
	fi
fi

attack() {
	show "attacker: connect 10.99.1.1:$PORT"
	if ip netns exec "$A" timeout 5 bash -c "exec 3<>/dev/tcp/10.99.1.1/$PORT && head -c 24 <&3" 2>/dev/null; then
		echo "   -> connected"
	else
		echo "   -> connection failed (dropped)"
	fi
}

step "the attacker connects"
attack

if [ -n "$VPC" ]; then
	step "plan: the attack reaches one instance -> a host DROP on that instance"
	# That host is another instance: this banshee would reach it through
	# SSM, so plan (like block) says it cannot do it from here.
	bsh plan 10.99.1.2 --port 110/tcp --instance "$I1" || true
	step "plan: the attack reaches two instances of one subnet -> a deny in the subnet's network ACL"
	bsh plan 10.99.1.2 --port 110/tcp --instance "$I1" --instance "$I2"
fi

step "block it on the host (this machine: the victim namespace)"
bsh block 10.99.1.2 --reason "pop3 bruteforce" --ttl 2h

step "the attacker tries again: its packets are dropped"
attack

if [ -n "$VPC" ]; then
	step "block it at the subnet edge: a network ACL deny (NACL id and rule number in the output)"
	bsh block 10.99.1.2 --port 110/tcp --instance "$I1" --instance "$I2" --reason "pop3 bruteforce on 2 instances" --ttl 1d
fi

step "what banshee blocked, on both layers, with the time left"
bsh list
bsh status

step "unblock: lift the blocks"
bsh unblock 10.99.1.2 # wherever banshee put it: this host and the network ACL
attack
bsh list

step "done: the namespaces, moto_server and the state directory are removed on exit"
