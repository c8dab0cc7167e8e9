#!/usr/bin/env bash
# Generates the TEST-ONLY "dated" TLS material in this folder (see README.md): a second small
# root CA and three leaf certificates that differ ONLY in their validity dates, so a test can
# show that the date, and nothing else, is why a certificate is rejected:
#   dated-valid.pem    2020-01-01 .. 2119-12-31  (control: accepted)
#   dated-expired.pem  2020-01-01 .. 2021-01-01  (expired)
#   dated-future.pem   2100-01-01 .. 2119-12-31  (not valid yet)
# All three share the key dated.key. A separate CA is needed because the key of ca.pem was
# deleted after generation (gen.sh); this script leaves ca.pem, server.* and other-ca.pem alone.
# `openssl ca -startdate/-enddate` sets arbitrary dates (also in the past) with OpenSSL 3.0,
# which has no `x509 -not_before` yet and no faketime here. Needs the openssl CLI (3.x).
# The dated CA's private key is deleted at the end on purpose, as in gen.sh.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
touch "$work/index.txt"
echo 2000 > "$work/serial"
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
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)

# 1. The dated root CA, valid for 100 years like ca.pem.
openssl req -new "${ec[@]}" -keyout "$work/dated-ca.key" -out "$work/dated-ca.csr" \
  -subj "/O=SmartPOS SDK TEST ONLY/CN=SmartPOS Dated Test Root CA"
openssl ca -batch -notext -config "$work/ca.cnf" -selfsign -keyfile "$work/dated-ca.key" \
  -in "$work/dated-ca.csr" -startdate 20200101000000Z -enddate 21191231235959Z \
  -extensions v3_ca -out dated-ca.pem

# 2. One key and one request (CN/SAN localhost, SAN IP 127.0.0.1), signed three times.
openssl req -new "${ec[@]}" -keyout dated.key -out "$work/dated.csr" \
  -subj "/O=SmartPOS SDK TEST ONLY/CN=localhost"
sign() { # sign OUT STARTDATE ENDDATE
  openssl ca -batch -notext -config "$work/ca.cnf" -cert dated-ca.pem -keyfile "$work/dated-ca.key" \
    -in "$work/dated.csr" -startdate "$2" -enddate "$3" -extensions v3_server -out "$1"
}
sign dated-valid.pem   20200101000000Z 21191231235959Z
sign dated-expired.pem 20200101000000Z 20210101000000Z
sign dated-future.pem  21000101000000Z 21191231235959Z

openssl verify -CAfile dated-ca.pem dated-valid.pem
for f in dated-expired.pem dated-future.pem; do
  if openssl verify -CAfile dated-ca.pem "$f" >/dev/null 2>&1; then
    echo "$f unexpectedly verifies" >&2; exit 1
  fi
done
