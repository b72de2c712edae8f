#!/usr/bin/env bash
# mkcerts.sh OUTDIR: the test PKI for the TLS specs and benchmarks, made with openssl.
#
# Writes into OUTDIR (created if missing):
#   ca.pem ca.key                 the test CA (give clients ca.pem)
#   good.pem good.key             SAN DNS:sluice-v4.test, DNS:sluice-v6.test, DNS:localhost,
#                                 IP:127.0.0.1, IP:::1                     (signed by the CA)
#   expired.pem expired.key       as good, valid 2020-01-01 .. 2021-01-01  (signed by the CA)
#   future.pem future.key         as good, valid from 2099-01-01           (signed by the CA)
#   wrongname.pem wrongname.key   SAN DNS:other.test only                  (signed by the CA)
#   dnsonly.pem dnsonly.key       SAN DNS:sluice-v4.test only, no IP SAN   (signed by the CA)
#   wild.pem wild.key             SAN DNS:*.wild.test                       (signed by the CA)
#   wildtop.pem wildtop.key       SAN DNS:*.test: a wildcard over a whole TLD (signed by the CA)
#   selfsigned.pem selfsigned.key self-signed, SAN DNS:sluice-v4.test
#   unknownca.pem unknownca.key   as good, signed by other-ca (not given to clients)
#   other-ca.pem other-ca.key     that second CA
#   rsa4096.pem rsa4096.key       as good, RSA 4096-bit key (handshake benchmark)
#   longsubject.pem .key          as good, with a subject over 1 KiB written out
#   client.pem client.key         client certificate (CN=sluice test client, clientAuth)
#   client-encrypted.key          client.key encrypted (AES-256-CBC, traditional PEM, which
#                                 mbedTLS 2.28 reads) with the password in password.txt
#   password.txt                  "sluice-test-password" (no newline)
#   client-pkcs8.key              client.key as openssl 3 encrypts it by default (PKCS#8,
#                                 PBES2 with AES-256), with the password in password.txt
#   client-lookalike.key          traditional encrypted PEM that the wrong password "not
#                                 the password" decrypts to bytes starting like a key
#                                 (30 82) that are not one: the wrong password in ~500
#                                 that mbedTLS's first check of the decrypted bytes passes
# Keys are EC P-256 except rsa4096. Every *.pem except ca.pem and other-ca.pem holds only
# the leaf certificate (the CA signed it directly).
#
# Idempotent: a complete OUTDIR (stamp file .complete) is left alone. Prints nothing on
# success; on failure prints openssl's output and exits non-zero.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: mkcerts.sh OUTDIR" >&2
	exit 2
fi
OUT=$1
STAMP_VERSION=5
if [ -f "$OUT/.complete" ] && [ "$(cat "$OUT/.complete")" = "$STAMP_VERSION" ]; then
	exit 0
fi
mkdir -p "$OUT"
cd "$OUT"
rm -f .complete

PASSWORD=sluice-test-password
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

# run CMD...: runs quietly; on failure shows what openssl said and stops.
run() {
	if ! "$@" >"$LOG" 2>&1; then
		echo "mkcerts.sh: failed: $*" >&2
		cat "$LOG" >&2
		exit 1
	fi
}

# Our own config: never depend on the system openssl.cnf.
cat >openssl.cnf <<'EOF'
[ req ]
distinguished_name = req_dn
prompt             = no
[ req_dn ]
CN = unused
[ v3_ca ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
[ server_good ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:sluice-v4.test, DNS:sluice-v6.test, DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
[ server_wrongname ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:other.test
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
[ server_wild ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:*.wild.test
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
[ server_wildtop ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:*.test
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
[ server_dnsonly ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:sluice-v4.test
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
[ server_selfsigned ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:sluice-v4.test
subjectKeyIdentifier   = hash
[ client ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
# `openssl ca`, only for the certificates with fixed dates (x509 -req in openssl 3.0
# has no -not_before / -not_after)
[ ca ]
default_ca = test_ca
[ test_ca ]
dir           = .
database      = ./ca-db/index.txt
new_certs_dir = ./ca-db
serial        = ./ca-db/serial
certificate   = ./ca.pem
private_key   = ./ca.key
default_md    = sha256
policy        = policy_any
unique_subject = no
copy_extensions = none
email_in_dn   = no
[ policy_any ]
commonName = supplied
EOF
export OPENSSL_CONF="$PWD/openssl.cnf"

eckey() { run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

# ca NAME CN
make_ca() {
	eckey "$1.key"
	run openssl req -config openssl.cnf -x509 -new -key "$1.key" -subj "/CN=$2/O=sluice tests" \
		-days 3650 -sha256 -extensions v3_ca -out "$1.pem"
}

# leaf NAME CN EXTSECTION CA [keytype]: key + CSR + certificate signed by CA (10 years)
leaf() {
	local name=$1 cn=$2 ext=$3 ca=$4 keytype=${5:-ec}
	if [ "$keytype" = rsa4096 ]; then
		run openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096 -out "$name.key"
	else
		eckey "$name.key"
	fi
	run openssl req -config openssl.cnf -new -key "$name.key" -subj "/CN=$cn/O=sluice tests" -out "$name.csr"
	run openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial \
		-days 3650 -sha256 -extfile openssl.cnf -extensions "$ext" -out "$name.pem"
	rm -f "$name.csr"
}

# dated NAME CN START END: as good, with fixed validity dates (YYYYMMDDHHMMSSZ), via `openssl ca`
dated() {
	local name=$1 cn=$2 start=$3 end=$4
	eckey "$name.key"
	run openssl req -config openssl.cnf -new -key "$name.key" -subj "/CN=$cn/O=sluice tests" -out "$name.csr"
	run openssl ca -config openssl.cnf -batch -notext -startdate "$start" -enddate "$end" \
		-extfile openssl.cnf -extensions server_good -in "$name.csr" -out "$name.pem"
	rm -f "$name.csr"
}

make_ca ca "sluice test CA"
make_ca other-ca "sluice other CA"

leaf good sluice-v4.test server_good ca
leaf wrongname other.test server_wrongname ca
leaf dnsonly sluice-v4.test server_dnsonly ca
leaf wild "*.wild.test" server_wild ca
leaf wildtop "*.test" server_wildtop ca
leaf unknownca sluice-v4.test server_good other-ca
leaf client "sluice test client" client ca
leaf rsa4096 sluice-v4.test server_good ca rsa4096

# longsubject: as good, with a subject over 1 KiB written out (twenty 60-byte OUs)
eckey longsubject.key
ous=""
for i in $(seq 10 29); do ous="$ous/OU=unit $i $(printf '%052d' 0)"; done
run openssl req -config openssl.cnf -new -key longsubject.key -subj "/CN=sluice-v4.test/O=sluice tests$ous" \
	-out longsubject.csr
run openssl x509 -req -in longsubject.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
	-days 3650 -sha256 -extfile openssl.cnf -extensions server_good -out longsubject.pem
rm -f longsubject.csr

rm -rf ca-db
mkdir ca-db
: >ca-db/index.txt
echo 1000 >ca-db/serial
dated expired sluice-v4.test 20200101000000Z 20210101000000Z
dated future sluice-v4.test 20990101000000Z 21000101000000Z
rm -rf ca-db

eckey selfsigned.key
run openssl req -config openssl.cnf -x509 -new -key selfsigned.key \
	-subj "/CN=sluice-v4.test/O=sluice tests" -days 3650 -sha256 -extensions server_selfsigned \
	-out selfsigned.pem

# Traditional ("BEGIN EC PRIVATE KEY", Proc-Type/DEK-Info) encryption: mbedTLS 2.28 cannot
# read openssl 3's default PKCS#8 encryption (PBES2 with HMAC-SHA256).
printf '%s' "$PASSWORD" >password.txt
run openssl ec -in client.key -aes256 -passout "pass:$PASSWORD" -out client-encrypted.key
if ! grep -q '^Proc-Type: 4,ENCRYPTED' client-encrypted.key; then
	run openssl ec -in client.key -aes256 -passout "pass:$PASSWORD" -traditional -out client-encrypted.key
fi
grep -q '^Proc-Type: 4,ENCRYPTED' client-encrypted.key || {
	echo "mkcerts.sh: client-encrypted.key is not in traditional encrypted PEM" >&2
	exit 1
}

run openssl pkcs8 -topk8 -v2 aes-256-cbc -in client.key -passout "pass:$PASSWORD" -out client-pkcs8.key

# The lookalike: 32 bytes that open like a SEQUENCE, then valid PKCS#7 padding, encrypted
# under the key PEM derives from the wrong password (MD5 over password and IV, as
# openssl enc -md md5 derives it from the same salt).
IV=00112233445566778899AABBCCDDEEFF
run openssl enc -aes-256-cbc -md md5 -S "${IV:0:16}" -pass "pass:not the password" -P
KEY=$(sed -n 's/^key=//p' "$LOG")
{ printf '\x30\x82\x01\x00'; head -c 28 /dev/zero | tr '\0' '\377'; head -c 16 /dev/zero | tr '\0' '\020'; } >lookalike.der
run openssl enc -aes-256-cbc -K "$KEY" -iv "$IV" -nopad -in lookalike.der -out lookalike.enc
{
	echo "-----BEGIN EC PRIVATE KEY-----"
	echo "Proc-Type: 4,ENCRYPTED"
	echo "DEK-Info: AES-256-CBC,$IV"
	echo
	base64 -w 64 lookalike.enc
	echo "-----END EC PRIVATE KEY-----"
} >client-lookalike.key
rm -f lookalike.der lookalike.enc

rm -f ./*.srl
chmod 600 ./*.key
echo "$STAMP_VERSION" >.complete
