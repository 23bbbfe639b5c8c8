#!/bin/sh
# Enrols the example's twelve hosts, on the operator's machine: the one
# place that keeps the cluster's authority (ATOLL_AUTH_DIR, made once by
# `atoll creds init`). For every host it writes a folder OUT/<region>/<host>/
# whose files go to that host's /etc/atoll/ (deploy/README.md says how):
#
#   ca.pem                  the cluster's CA (public)
#   node.pem, node-key.pem  the host's TLS certificate (public) and key (secret)
#   <role>.creds            the NATS credential of each atoll service the host runs (secret)
#   *.jwt                   on NATS nodes: the operator's and accounts' JWTs (public)
#
# Running it again issues new credentials and certificates: rotation
# (revoke the old ones once the new are in place: deploy/README.md).
#
# usage: ATOLL_AUTH_DIR=~/atoll-auth sh enrol.sh [OUT]    (ATOLL=path/to/atoll if not on PATH)
set -eu
auth=${ATOLL_AUTH_DIR:?set ATOLL_AUTH_DIR to the authority folder of atoll creds init}
out=${1:-out}
atoll=${ATOLL:-atoll}

# host REGION FOLDER NAME IP ROLE...: one host's files. NAME is its NATS
# identity: an agent's hostname, a sidecar's --node.
host() {
	region=$1 folder=$2 name=$3 ip=$4
	shift 4
	d=$out/$region/$folder
	mkdir -p "$d"
	chmod 700 "$d"
	"$atoll" creds tls --dir "$auth" --name "$name" --hosts "$name,$ip" \
		--out-cert "$d/node.pem" --out-key "$d/node-key.pem" >/dev/null
	install -m 644 "$auth/ca.pem" "$d/ca.pem"
	for role in "$@"; do
		case $role in
		nats) install -m 644 "$auth/operator.jwt" "$auth/system.jwt" "$auth/account.jwt" "$d/" ;;
		*) "$atoll" creds "$role" --dir "$auth" --name "$name" --out "$d/$role.creds" >/dev/null ;;
		esac
	done
	echo "$d: $name ($ip): $*"
}

n=1
for city in oslo frankfurt ireland; do
	host $city master-node master-$city 198.18.$n.10 master
	host $city nats-node nats-$city 198.18.$n.11 nats
	host $city agent-1 agent-1.$city 198.18.$n.21 agent sidecar
	host $city agent-2 agent-2.$city 198.18.$n.22 agent sidecar
	n=$((n + 1))
done

# The operator's own certificate: the NATS nodes ask every client for one,
# `atoll creds revoke --nats` included.
"$atoll" creds tls --dir "$auth" --name operator --hosts operator >/dev/null
echo "$auth/tls/operator.pem: the operator's certificate, for atoll creds revoke --nats"
