#!/usr/bin/env bash
# Generates the TEST-ONLY client (terminal) TLS material in this folder (see README.md), for
# mutual TLS: a root CA the simulator trusts for terminals, a terminal certificate issued by it,
# and a terminal certificate issued by a CA the simulator does not trust. This script leaves
# every other file here alone. Needs the openssl CLI (3.x). The CA private keys are deleted at
# the end on purpose: nothing else can be issued under these roots.
#   client-ca.pem      "SmartPOS Test Terminal CA" (P-256, self-signed, CA:TRUE)
#   client.pem         terminal 12345678 (CN), clientAuth, issued by client-ca.pem
#   client.key         its private key (PKCS#8, P-256)
#   client-rogue.pem   the same subject, issued by "Rogue Test Terminal CA" (not trusted)
#   client-rogue.key   its private key (PKCS#8, P-256)
#   client-rsa.pem     terminal 12345678 again, with an RSA 2048 key, issued by client-ca.pem
#   client-rsa.key     its private key (PKCS#1 "RSA PRIVATE KEY")
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
touch "$work/index.txt"
echo 3000 > "$work/serial"
cat > "$work/ca.cnf" <<CNF
[ca]
default_ca = test_ca
[test_ca]
database = $work/index.txt
new_certs_dir = $work
serial = $work/serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
[policy_any]
organizationName = supplied
commonName = supplied
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
# 100 years, back-dated so that a skewed test clock does not matter (as gen.sh).
dates=(-startdate 20200101000000Z -enddate 21191231235959Z)
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)

ca() { # ca NAME CN
  openssl req -new "${ec[@]}" -keyout "$work/$1.key" -out "$work/$1.csr" \
    -subj "/O=SmartPOS SDK TEST ONLY/CN=$2"
  openssl ca -batch -notext -config "$work/ca.cnf" -selfsign -keyfile "$work/$1.key" \
    -in "$work/$1.csr" "${dates[@]}" -extensions v3_ca -out "$3"
}
leaf() { # leaf CA_PEM CA_KEY OUT_PEM OUT_KEY [KEY OPTIONS...]
  local ca_pem=$1 ca_key=$2 out=$3 key=$4
  shift 4
  local opts=("${ec[@]}")
  [ $# -gt 0 ] && opts=("$@")
  openssl req -new "${opts[@]}" -keyout "$key" -out "$work/leaf.csr" \
    -subj "/O=SmartPOS SDK TEST ONLY/CN=12345678"
  openssl ca -batch -notext -config "$work/ca.cnf" -cert "$ca_pem" -keyfile "$ca_key" \
    -in "$work/leaf.csr" "${dates[@]}" -extensions v3_client -out "$out"
}

# 1. The terminal CA the simulator trusts (`smartpos host --tls-client-ca client-ca.pem`).
ca client-ca "SmartPOS Test Terminal CA" client-ca.pem
# 2. Terminal 12345678's certificate and key.
leaf client-ca.pem "$work/client-ca.key" client.pem client.key
# 3. The same terminal with an RSA key (PKCS#1 PEM, as many acquirers' tools write it).
leaf client-ca.pem "$work/client-ca.key" client-rsa.pem "$work/client-rsa.p8" -newkey rsa:2048 -nodes
openssl pkey -in "$work/client-rsa.p8" -traditional -out client-rsa.key
# 4. A terminal certificate from a CA nobody trusts.
ca rogue-ca "Rogue Test Terminal CA" "$work/rogue-ca.pem"
leaf "$work/rogue-ca.pem" "$work/rogue-ca.key" client-rogue.pem client-rogue.key

openssl verify -CAfile client-ca.pem -purpose sslclient client.pem client-rsa.pem
if openssl verify -CAfile client-ca.pem client-rogue.pem >/dev/null 2>&1; then
  echo "client-rogue.pem unexpectedly verifies" >&2; exit 1
fi
