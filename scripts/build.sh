#!/usr/bin/env bash
# Generates the Makefiles from premake5.lua and builds configurations.
#
#   scripts/build.sh [config...]     configs: release debug asan tsan poll
#                                    (default: all of them), and windows
#                                    (the mingw-w64 cross build: scripts/build_windows.sh)
#
# Uses premake5 when it is installed, else Debian's premake4. Makefiles are
# written at the top level (ignored by git); outputs go to build/<config>/.
# Each configuration's compiler output goes to build/logs/build-<config>.log;
# a failing build prints its tail. Tries every configuration asked for and
# exits non-zero if any failed. JOBS sets make's -j (default 2).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

ALL_CONFIGS=(release debug asan tsan poll)
JOBS=${JOBS:-2}
LOGDIR=build/logs
mkdir -p "$LOGDIR"

configs=()
windows=0
[ $# -eq 0 ] && configs=("${ALL_CONFIGS[@]}")
for c in "$@"; do
	case " ${ALL_CONFIGS[*]} " in
	*" $c "*) configs+=("$c") ;;
	*)
		if [ "$c" = windows ]; then
			windows=1
		else
			echo "build: unknown configuration '$c' (have: ${ALL_CONFIGS[*]} windows)" >&2
			exit 2
		fi
		;;
	esac
done
if [ ${#configs[@]} -eq 0 ]; then
	exec bash scripts/build_windows.sh
fi

# Regenerate every time: cheap, and picks up new source files. premake also
# writes the editor plugin's Lua-API shim (build/gen/) while it runs.
if command -v premake5 >/dev/null 2>&1; then
	# newer premake5 calls its make generator "gmake" (the old one became
	# "gmakelegacy"); the 5.0 betas before that call it "gmake2"
	if [[ "$(premake5 --help 2>/dev/null || true)" == *gmakelegacy* ]]; then
		generate=(premake5 --file=premake5.lua gmake)
	else
		generate=(premake5 --file=premake5.lua gmake2)
	fi
else
	generate=(premake4 --file=premake5.lua gmake)
fi
if ! "${generate[@]}" >"$LOGDIR/premake.log" 2>&1; then
	echo "build: '${generate[*]}' failed:" >&2
	cat "$LOGDIR/premake.log" >&2
	exit 1
fi

status=0
for c in "${configs[@]}"; do
	log="$LOGDIR/build-$c.log"
	if make -j"$JOBS" config="$c" >"$log" 2>&1; then
		if grep -q 'warning:' "$log"; then
			echo "build $c: ok ($(grep -c 'warning:' "$log") warnings, see $log)"
		else
			echo "build $c: ok"
		fi
	else
		status=1
		echo "build $c: FAILED (full log: $log)" >&2
		grep -E 'error|Error' "$log" | head -n 40 >&2 || true
		echo "--- tail of $log:" >&2
		tail -n 20 "$log" >&2
	fi
done
if [ "$windows" -eq 1 ] && ! bash scripts/build_windows.sh; then
	status=1
fi
exit $status
