#!/usr/bin/env bash
# trust_check.sh: verified TLS on Windows with no CA file, where the stores and
# the system's chain engine decide (net/trust_win.c, net/tls_chain.c), under
# wine. A test root goes into the machine's Root store and its intermediate
# into the CA store (build/windows/win_certstore.exe); `openssl s_server` sends
# only its leaf. mbedTLS, with the Root store's certificates, cannot link the
# leaf to the root; the chain engine finds the intermediate and trusts the
# chain. Without the intermediate in the CA store, or for another name, the
# connection fails with tls-verify and a message naming the chain engine. A
# second server sends the whole chain: mbedTLS reaches the root itself, and the
# chain engine still has the last word (on Windows it knows the store's
# restrictions and the Disallowed store; wine's ignores both, so only its yes is
# checked here). The certificates are removed again at the end. Prints TAP; exits non-zero on a
# failure.   tests/windows/trust_check.sh   (after ./run.sh build windows)
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=$ROOT/build/windows
. "$ROOT/tests/windows/wineserver.sh"
export WINEPREFIX=${WINEPREFIX:-$W/wineprefix} WINEDEBUG=-all LC_ALL=C.UTF-8
export LUA_CPATH="Z:${W//\//\\}\\?.dll"
unset SSL_CERT_FILE SSL_CERT_DIR LUA_INIT LUA_PATH
for f in "$W/lua.exe" "$W/net.dll" "$W/win_certstore.exe"; do
	[ -e "$f" ] || { echo "Bail out! missing $f (./run.sh build windows)"; exit 1; }
done
TMP=$(mktemp -d)
PID="" PID2=""
wine_server_up
# unstore STORE FILE.der: the certificate's registry key, by its SHA-1 thumbprint
unstore() {
	local sha1
	sha1=$(openssl x509 -inform der -in "$2" -noout -fingerprint -sha1 2>/dev/null | sed 's/.*=//; s/://g')
	[ -n "$sha1" ] && "$WINE" reg delete "HKLM\\Software\\Microsoft\\SystemCertificates\\$1\\Certificates\\$sha1" /f >/dev/null 2>&1
}
cleanup() {
	unstore CA "$TMP/inter.der"
	unstore Root "$TMP/root.der"
	for p in $PID $PID2; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	wine_server_down
	rm -rf "$TMP"
}
trap cleanup EXIT
cd "$TMP" || exit 1

# a root, an intermediate it signs, and a leaf for localhost / 127.0.0.1 the
# intermediate signs; RSA: wine's chain engine calls an ECDSA signature whose r
# or s is shorter than 32 bytes (one in about 64) a bad signature
cat >ext.cnf <<'CNF'
[ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
[leaf]
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
CNF
pki() {
	openssl req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.pem \
		-days 2 -subj "/CN=sluice trust test root" -addext "basicConstraints=critical,CA:true" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" &&
	openssl req -newkey rsa:2048 -nodes -keyout inter.key -out inter.csr \
		-subj "/CN=sluice trust test intermediate" &&
	openssl x509 -req -in inter.csr -CA root.pem -CAkey root.key -CAcreateserial -days 2 \
		-extfile ext.cnf -extensions ca -out inter.pem &&
	openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr \
		-subj "/CN=localhost" &&
	openssl x509 -req -in leaf.csr -CA inter.pem -CAkey inter.key -CAcreateserial -days 2 \
		-extfile ext.cnf -extensions leaf -out leaf.pem &&
	openssl x509 -in root.pem -outform der -out root.der &&
	openssl x509 -in inter.pem -outform der -out inter.der
}
pki >pki.log 2>&1 || { echo "Bail out! openssl: $(tail -n 5 pki.log)"; exit 1; }

# port_of LOG: the port an s_server writing LOG listens on (waits for it)
port_of() {
	local port=""
	for _ in $(seq 100); do
		port=$(sed -n 's/^ACCEPT .*:\([0-9][0-9]*\)$/\1/p' "$1" | head -n 1)
		[ -n "$port" ] && break
		sleep 0.1
	done
	[ -n "$port" ] || { echo "Bail out! s_server did not start: $(cat "$1")" >&2; exit 1; }
	echo "$port"
}
openssl s_server -accept 127.0.0.1:0 -cert leaf.pem -key leaf.key -www >s_server.out 2>&1 </dev/null &
PID=$!
openssl s_server -accept 127.0.0.1:0 -cert leaf.pem -key leaf.key -cert_chain inter.pem -www >chain.out 2>&1 </dev/null &
PID2=$!
PORT=$(port_of s_server.out) || exit 1
CHAIN_PORT=$(port_of chain.out) || exit 1

n=0 failed=0
# check DESCRIPTION WANT_STATUS WANT_TEXT [NAME]: one connection, judged by its status line
check() {
	local what=$1 want=$2 text=$3 out
	out=$(timeout 120 "$WINE" "$W/lua.exe" "$ROOT/tests/windows/trust_check.lua" "${PORT_NOW:-$PORT}" ${4:+"$4"} 2>&1 | tr -d '\r')
	n=$((n + 1))
	if [[ "$out" == "$want"* && "$out" == *"$text"* ]]; then
		echo "ok $n - $what"
	else
		echo "not ok $n - $what"
		failed=1
	fi
	echo "# $out"
}
store() { "$WINE" "$W/win_certstore.exe" "$@" || { echo "Bail out! win_certstore $*"; exit 1; }; }

check "the test root in no store: fails closed (tls-verify)" failure "tls-verify"
store add Root root.der
store add CA inter.der
check "root in Root, intermediate in CA, the server sends its leaf alone: the chain engine trusts it" success ""
check "the same with the name localhost checked" success "" localhost
check "another name: fails (tls-verify), wrong name" failure "wrong name" other.test
PORT_NOW=$CHAIN_PORT check "the whole chain sent: mbedTLS reaches the root, the chain engine agrees" success ""
unstore CA inter.der || { echo "Bail out! could not take the intermediate out of the CA store"; exit 1; }
check "without the intermediate: fails (tls-verify), naming the chain engine" failure "system's chain engine"
echo "1..$n"
exit $failed
