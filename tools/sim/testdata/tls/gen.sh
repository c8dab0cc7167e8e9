#!/usr/bin/env bash
# Regenerates the TEST-ONLY TLS material in this folder (see README.md). Needs the openssl CLI (3.x).
# The CA private keys are deleted at the end on purpose: nothing can be issued under these roots later.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
touch "$work/index.txt"
echo 1000 > "$work/serial"
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
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
# 100 years, back-dated so that a skewed test clock does not matter.
dates=(-startdate 20200101000000Z -enddate 21191231235959Z)
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)

# 1. The test root CA (trusted by the terminal tests).
openssl req -new "${ec[@]}" -keyout "$work/ca.key" -out "$work/ca.csr" \
  -subj "/O=SmartPOS SDK TEST ONLY/CN=SmartPOS Test Root CA"
openssl ca -batch -notext -config "$work/ca.cnf" -selfsign -keyfile "$work/ca.key" \
  -in "$work/ca.csr" "${dates[@]}" -extensions v3_ca -out ca.pem

# 2. The simulator's server certificate (CN/SAN localhost, SAN IP 127.0.0.1) and its key (PKCS#8).
openssl req -new "${ec[@]}" -keyout server.key -out "$work/server.csr" \
  -subj "/O=SmartPOS SDK TEST ONLY/CN=localhost"
openssl ca -batch -notext -config "$work/ca.cnf" -cert ca.pem -keyfile "$work/ca.key" \
  -in "$work/server.csr" "${dates[@]}" -extensions v3_server -out server.pem

# 3. An unrelated root CA, for the "wrong CA" tests.
openssl req -new "${ec[@]}" -keyout "$work/other.key" -out "$work/other.csr" \
  -subj "/O=SmartPOS SDK TEST ONLY/CN=Unrelated Test Root CA"
openssl ca -batch -notext -config "$work/ca.cnf" -selfsign -keyfile "$work/other.key" \
  -in "$work/other.csr" "${dates[@]}" -extensions v3_ca -out other-ca.pem

openssl verify -CAfile ca.pem server.pem
