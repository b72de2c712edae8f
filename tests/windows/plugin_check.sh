#!/usr/bin/env bash
# plugin_check.sh: the editor plugin (build/windows/plugin/net.dll) in the
# static-Lua host build/windows/xl_host.exe under wine, once through Lite XL's
# entry point and once through Pragtical's (tests/windows/plugin_check.lua):
# TCP to the echo peer (build/<cfg>/peer echo), TLS verified against a test CA
# made here (tests/tools/mkcerts.sh) to `openssl s_server`, and that TLS fails
# closed without that CA. The Pragtical run loads a copy of the plugin from a
# folder with a non-ASCII name (the host converts UTF-8 for LoadLibraryW).
# The peers run on the Linux side of 127.0.0.1, started and stopped here by
# PID. Prints TAP; exits non-zero on a failure.
#
#   tests/windows/plugin_check.sh      (after ./run.sh build windows and
#                                       ./run.sh build release)
#   SLUICE_BUILD=DIR  where the Linux peer is (default build/release)
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=$ROOT/build/windows
PEER=${SLUICE_BUILD:-$ROOT/build/release}/peer
. "$ROOT/tests/windows/wineserver.sh"

for f in "$W/xl_host.exe" "$W/plugin/net.dll" "$PEER"; do
	[ -e "$f" ] || { echo "Bail out! missing $f (./run.sh build windows; ./run.sh build release)"; exit 1; }
done

TMP=$(mktemp -d)
pids=()
WINEPREFIX="$W/wineprefix" wine_server_up
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	WINEPREFIX="$W/wineprefix" wine_server_down
	rm -rf "$TMP"
}
trap cleanup EXIT

# start NAME SED CMD...: runs CMD in the background (its PID kept for the
# cleanup), then waits for its port, the first stdout match of SED, in $port.
start() {
	local name=$1 pattern=$2 i
	shift 2
	"$@" >"$TMP/$name.out" 2>"$TMP/$name.err" </dev/null &
	pids+=($!)
	for i in $(seq 100); do
		port=$(sed -n "$pattern" "$TMP/$name.out" | head -n 1)
		[ -n "$port" ] && return 0
		kill -0 "${pids[-1]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "Bail out! $name did not start: $(cat "$TMP/$name.err")"
	exit 1
}

bash "$ROOT/tests/tools/mkcerts.sh" "$TMP/pki" || { echo "Bail out! mkcerts.sh failed"; exit 1; }
start peer '1s/^\([0-9][0-9]*\)$/\1/p' "$PEER" echo
ECHO=$port
start s_server 's/^ACCEPT .*:\([0-9][0-9]*\)$/\1/p' openssl s_server -rev \
	-accept 127.0.0.1:0 -cert "$TMP/pki/good.pem" -key "$TMP/pki/good.key"
TLS=$port

# wine maps drive Z: to /
winpath() { printf 'Z:%s' "${1//\//\\}"; }

mkdir -p "$TMP/plugins-ü日本" && cp "$W/plugin/net.dll" "$TMP/plugins-ü日本/"

n=0
status=0
for flavor in lite-xl pragtical; do
	plugin=$W/plugin/net.dll
	[ "$flavor" = pragtical ] && plugin="$TMP/plugins-ü日本/net.dll"
	# no SSL_CERT_*: without ca_file the default trust is what is tested;
	# wine decodes the command line in the locale's charset: UTF-8
	out=$(cd "$W" && env -u SSL_CERT_FILE -u SSL_CERT_DIR LC_ALL=C.UTF-8 WINEPREFIX="$W/wineprefix" WINEDEBUG=-all \
		timeout 300 "$WINE" xl_host.exe "$(winpath "$ROOT/tests/windows/plugin_check.lua")" \
		"$flavor" $((n + 1)) "$(winpath "$plugin")" "$ECHO" "$TLS" \
		"$(winpath "$TMP/pki/ca.pem")" "$(winpath "$TMP/pki/other-ca.pem")" 2>"$TMP/host.err")
	rc=$?
	out=${out//$'\r'/}
	[ -n "$out" ] && echo "$out"
	n=$((n + $(grep -cE '^(not )?ok ' <<<"$out")))
	grep -q '^not ok ' <<<"$out" && status=1
	if [ "$rc" -ne 0 ]; then
		status=1
		# a run that failed without saying which check (a crash, a timeout)
		if ! grep -q '^not ok ' <<<"$out"; then
			n=$((n + 1))
			echo "not ok $n - [$flavor] xl_host.exe exited with status $rc"
		fi
		sed 's/^/# /' "$TMP/host.err"
	fi
done
echo "1..$n"
exit $status
