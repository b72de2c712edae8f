#!/usr/bin/env bash
# specs.sh: busted spec files run as separate processes, several at a time
# (they mostly wait on peers and timers: one at a time, a Lua stage keeps a
# third of a core busy). Each spec's TAP follows the last, its test names
# prefixed with the file's, then "# FILE: N s". The longest specs start
# first, by the times the last run recorded in TIMES (else by file size).
#
#   tests/tools/specs.sh [-j N] [-t TIMES] [-r RUNNER] HOST [ARGS...] -- SPEC...
#
# HOST runs RUNNER (default tests/tools/busted_run.lua) with ARGS and one
# spec: lua5.4, luahost, xl_host, or tests/windows/lua.sh with
# tests/windows/spec_runner.lua. A spec gets SLUICE_SPEC_TIMEOUT seconds
# (default 900). Exits non-zero when a test failed or a spec's process failed
# without saying which test ("not ok" is added for it).
set -u
jobs=${SLUICE_SPEC_JOBS:-3} times="" runner=tests/tools/busted_run.lua
while [ $# -gt 0 ]; do
	case "$1" in
	-j) jobs=$2; shift 2 ;;
	-t) times=$2; shift 2 ;;
	-r) runner=$2; shift 2 ;;
	*) break ;;
	esac
done
host=${1:?usage: specs.sh [-j N] [-t TIMES] [-r RUNNER] HOST [ARGS...] -- SPEC...}
shift
args=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
shift
[ $# -gt 0 ] || { echo "specs.sh: no spec given" >&2; exit 2; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# longest first: "SECONDS FILE" from TIMES, bytes/1000 for a spec not in it
order() {
	local spec t
	for spec in "$@"; do
		t=""
		[ -n "$times" ] && [ -r "$times" ] && t=$(awk -v f="$spec" '$2 == f { print $1; exit }' "$times")
		echo "${t:-$(($(wc -c <"$spec") / 1000))} $spec"
	done | sort -rn | cut -d' ' -f2-
}

run_one() {
	local spec=$1 t0=$SECONDS rc f=$out/${1//\//_}
	timeout -k 10 "${SLUICE_SPEC_TIMEOUT:-900}" "$host" "$runner" "${args[@]}" "$spec" >"$f.tap" 2>&1 </dev/null
	rc=$?
	[ $rc -ne 0 ] && ! grep -q '^not ok' "$f.tap" &&
		echo "not ok - $spec: exit status $rc without a failing test" >>"$f.tap"
	echo "$((SECONDS - t0)) $spec" >"$f.time"
}

mapfile -t ordered < <(order "$@")
running=0
for spec in "${ordered[@]}"; do
	if [ $running -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
	run_one "$spec" &
	running=$((running + 1))
done
wait

status=0
for spec in "$@"; do
	f=$out/${spec//\//_}
	sed "s|^\(not \)\{0,1\}ok [0-9]* - |&$(basename "$spec"): |" "$f.tap"
	grep -q '^not ok' "$f.tap" && status=1
	echo "# $(basename "$spec"): $(cut -d' ' -f1 "$f.time") s"
done
[ -n "$times" ] && cat "$out"/*.time >"$times" 2>/dev/null
exit $status
