#!/bin/bash
# win_smoke.sh: runs tests/c_api/win_smoke.c (build/windows/win_smoke.exe
# from ./run.sh build windows, else cross-built here with the whole Windows
# engine and the dependencies scripts/win_deps.sh made) under wine against peers on the Linux side
# of loopback (openssl s_server, python3 http.server), started and stopped
# here by PID; then the C API example (c_api_example.exe) against the Linux
# build's echo peer. Prints TAP lines; exits non-zero on a failure.
#   tests/c_api/win_smoke.sh [WORKDIR]
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
D=$ROOT/build/windows/deps
W=${1:-}
if [ -z "$W" ]; then
  W=$(mktemp -d)
  # its own wine prefix (a fresh Windows) goes too, once its wineserver has stopped
  trap '[ -z "${WINEPREFIX:-}" ] && WINEPREFIX=$W/wineprefix "$(command -v wineserver ||
    echo /usr/lib/wine/wineserver)" -k 2>/dev/null; rm -rf "$W"' EXIT
fi
WINE=${WINE:-$(command -v wine64 || echo /usr/lib/wine/wine64)}
CC=x86_64-w64-mingw32-gcc
FLAGS="-std=c11 -O1 -Wall -Wextra -D_WIN32_WINNT=0x0A00 -DWIN32_LEAN_AND_MEAN -DNOMINMAX -DCARES_STATICLIB -D__USE_MINGW_ANSI_STDIO=1"
mkdir -p "$W/obj"
if [ -x "$ROOT/build/windows/win_smoke.exe" ]; then   # ./run.sh build windows made it
	cp "$ROOT/build/windows/win_smoke.exe" "$W/" || exit 1
else
	for f in "$ROOT"/net/*.c; do
	  case $(basename "$f") in os_posix.c|poll_epoll.c|poll_poll.c|poll_kqueue.c) continue ;; esac
	  $CC $FLAGS -I"$D/mbedtls/include" -I"$D/cares/include" -I"$D/zlib/include" -c "$f" \
	    -o "$W/obj/$(basename "$f" .c).o" || exit 1
	done
	$CC $FLAGS -I"$ROOT/net" "$ROOT/tests/c_api/win_smoke.c" "$W"/obj/*.o -L"$D/mbedtls/lib" -L"$D/cares/lib" \
	  -L"$D/zlib/lib" -lmbedtls -lmbedx509 -lmbedcrypto -lcares -lz -lws2_32 -liphlpapi -lcrypt32 -lbcrypt \
	  -ladvapi32 -lpsapi -static -lpthread -o "$W/win_smoke.exe" || exit 1
fi
cd "$W" || exit 1
openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem -out c.pem -days 2 -subj /CN=localhost 2>/dev/null
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
TLS=$(port); HTTP=$(port)
openssl s_server -accept 127.0.0.1:$TLS -cert c.pem -key k.pem -www >/dev/null 2>&1 &
P1=$!
python3 -m http.server "$HTTP" --bind 127.0.0.1 >/dev/null 2>&1 &
P2=$!
sleep 1
# no SSL_CERT_*: the ROOT store is what is tested
env -u SSL_CERT_FILE -u SSL_CERT_DIR WINEPREFIX=${WINEPREFIX:-$W/wineprefix} WINEDEBUG=-all \
  timeout 300 "$WINE" ./win_smoke.exe "$TLS" 'C:\win_smoke.sock' "$HTTP"
rc=$?
# the C API example against the echo peer of the Linux build, when there is one
PEER=${SLUICE_BUILD:-$ROOT/build/release}/peer
if [ -x "$PEER" ] && [ -f "$ROOT/build/windows/c_api_example.exe" ]; then
  "$PEER" echo >echo.out 2>/dev/null </dev/null &
  P3=$!
  for _ in $(seq 50); do [ -s echo.out ] && break; sleep 0.1; done
  if WINEPREFIX=${WINEPREFIX:-$W/wineprefix} WINEDEBUG=-all timeout 120 "$WINE" \
    "$ROOT/build/windows/c_api_example.exe" 127.0.0.1 "$(head -n 1 echo.out)" >example.out 2>&1; then
    echo "ok - c_api_example.exe echoes through the C API"
  else
    echo "not ok - c_api_example.exe echoes through the C API"
    sed 's/^/# /' example.out
    rc=1
  fi
  kill "$P3" 2>/dev/null
fi
kill "$P1" "$P2" 2>/dev/null
exit $rc
