#!/usr/bin/env bash
# The test suite: builds, then runs every stage in every mode, and ends with
# one line "N passed, N failed". Called as `./run.sh test [options]`.
#
#   --mode M     run only mode M (release, poll, asan, tsan; repeatable or
#                comma-separated). Default: all four, after building all
#                configurations (debug too).
#   --only PAT   run only the Lua tests whose names match the Lua pattern PAT
#                (busted --filter); the C unit stage is skipped, a stage
#                with no match is no failure, a run where none passed is.
#   --no-build   use what is already in build/ (no deps check, no build).
#
# Modes: release (epoll, lua5.4), poll (poll backend, lua5.4), asan and tsan
# (build/<mode>/luahost hosting the instrumented net.so), and windows (the
# mingw-w64 build under wine: tests/c_api/win_smoke.sh, tests/windows/
# plugin_check.sh, trust_check.sh and stage.sh; the specs that cannot run
# there are listed with the reason in tests/windows/skip.lua; --only leaves
# it out unless --mode asks for it). Stages per mode:
# "layout" (release and poll only: tests/layout/, the layering rules and the
# audit of the caller's system calls), "unit" (tests/unit/run.sh: every
# build/<cfg>/test_<name>, the C unit tests), "capi" (tests/c_api/run.sh: the C API
# example and the host wake-up test), "fuzz" (asan only: scripts/fuzz.sh
# --quick, each libFuzzer target briefly), "lua" (busted over
# tests/lua/*_spec.lua, three spec files at a time: tests/tools/specs.sh)
# and "plugin" (tests/plugin/stage.sh: checks of the editor build
# build/<cfg>/plugin/net.so, then the tests/plugin specs, and in release and
# tsan the tests/lua specs too, under build/<cfg>/xl_host, which loads it the
# way Lite XL does), and
# "bench" (release only: scripts/bench_peers.sh --quick --only net, a smoke run
# of the side-by-side benchmarks; it fails only when a run gives no figures,
# never on a figure), all TAP. Logs: build/logs/<mode>-<stage>.log.
#
# Counting: TAP "ok" lines pass ("# SKIP" ones are skipped), "not ok" lines
# fail. One more failure for a stage when it reports a sanitizer error, or
# exits non-zero (or times out) without a "not ok" line, or produces no TAP
# result at all, or fewer results than its plan.
#
# Tunables (environment): SLUICE_RING_TIMEOUT (s, default 600),
# SLUICE_LUA_TIMEOUT (s, default 1500), SLUICE_DEADLINE (s for the whole
# run, default 4800: stages are cut short so that the summary line is always
# printed in time), JOBS (make -j, default 2), SLUICE_SPEC_JOBS (spec files
# run at once, default 3).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2

ALL_MODES=(release poll asan tsan windows)
LOGDIR=build/logs
START=$SECONDS
DEADLINE=${SLUICE_DEADLINE:-4800}
RING_TIMEOUT=${SLUICE_RING_TIMEOUT:-600}
LUA_TIMEOUT=${SLUICE_LUA_TIMEOUT:-1500}

modes=()
only=""
build=1
while [ $# -gt 0 ]; do
	case "$1" in
	--mode) [ $# -ge 2 ] || { echo "test: --mode needs a value" >&2; exit 2; }
		IFS=, read -r -a m <<<"$2"; modes+=("${m[@]}"); shift 2 ;;
	--mode=*) IFS=, read -r -a m <<<"${1#--mode=}"; modes+=("${m[@]}"); shift ;;
	--only) [ $# -ge 2 ] || { echo "test: --only needs a value" >&2; exit 2; }
		only=$2; shift 2 ;;
	--only=*) only=${1#--only=}; shift ;;
	--no-build) build=0; shift ;;
	-h|--help) sed -n '2,39p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "test: unknown argument '$1' (try --help)" >&2; exit 2 ;;
	esac
done
explicit_modes=${#modes[@]}
[ ${#modes[@]} -eq 0 ] && modes=("${ALL_MODES[@]}")
for m in "${modes[@]}"; do
	case " ${ALL_MODES[*]} " in
	*" $m "*) ;;
	*) echo "test: unknown mode '$m' (have: ${ALL_MODES[*]})" >&2; exit 2 ;;
	esac
done

mkdir -p "$LOGDIR"

TOTAL_PASS=0
TOTAL_FAIL=0
TOTAL_SKIP=0

finish() {
	local line="$TOTAL_PASS passed, $TOTAL_FAIL failed"
	[ "$TOTAL_SKIP" -gt 0 ] && line="$line, $TOTAL_SKIP skipped"
	echo "$line"
	[ "$TOTAL_PASS" -gt 0 ] || echo "test: no test passed${only:+ (does --only '$only' match any?)}" >&2
	[ "$TOTAL_FAIL" -eq 0 ] && [ "$TOTAL_PASS" -gt 0 ]
	exit $?
}

# Stop the stage that is running (its whole process group) on ^C / TERM.
CURRENT_PGID=""
# shellcheck disable=SC2317  # called by the trap
on_signal() {
	[ -n "$CURRENT_PGID" ] && kill -TERM -- "-$CURRENT_PGID" 2>/dev/null
	echo "test: interrupted" >&2
	TOTAL_FAIL=$((TOTAL_FAIL + 1))
	finish
}
trap on_signal INT TERM

# ---------------------------------------------------------------- build
failed_configs=" "
if [ "$build" = 1 ]; then
	if ! bash scripts/deps.sh; then
		echo "test: installing dependencies failed" >&2
		TOTAL_FAIL=$((TOTAL_FAIL + 1))
		finish
	fi
	if [ "$explicit_modes" -gt 0 ]; then
		configs=("${modes[@]}") # each mode is built by the config of its name
		# the Windows specs run against the Linux peers of the release build
		[[ " ${modes[*]} " == *" windows "* && " ${modes[*]} " != *" release "* ]] && configs+=(release)
	else
		configs=(release debug asan tsan poll windows)
	fi
	for c in "${configs[@]}"; do
		if ! JOBS=${JOBS:-2} bash scripts/build.sh "$c"; then
			failed_configs+="$c "
			TOTAL_FAIL=$((TOTAL_FAIL + 1))
		fi
	done
	# premake itself failing makes every configuration fail
fi

# ---------------------------------------------------------------- modes
# Sanitizer runtimes of this gcc can fail on kernels with large mmap
# randomization; run the sanitizer modes without ASLR when needed.
SAN_PREFIX=()
rnd_bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0)
if [ "$rnd_bits" -gt 28 ] && setarch "$(uname -m)" -R true 2>/dev/null; then
	SAN_PREFIX=(setarch "$(uname -m)" -R)
fi

# Exports the environment of mode $1 (called in the stage's subshell).
mode_env() {
	local mode=$1
	export SLUICE_ROOT="$ROOT"
	export SLUICE_BUILD="$ROOT/build/$mode"
	export SLUICE_MODE="$mode"
	export LUA_CPATH="$ROOT/build/$mode/?.so;;"
	export LUA_PATH="$ROOT/tests/lua/?.lua;$ROOT/data/?.lua;;"
	# names resolve only from this file in tests (net/resolver.c hook)
	export SLUICE_HOSTS_FILE="$ROOT/tests/lua/hosts"
	# net._fail_allocs exists only then (lua/lnet.c)
	export SLUICE_TEST_HOOKS=1
	# the Lua host for child processes the specs start
	SLUICE_LUA=$(lua_host "$mode")
	export SLUICE_LUA
	unset LUA_INIT LUA_INIT_5_4 LUA_PATH_5_4 LUA_CPATH_5_4
	case "$mode" in
	asan)
		export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
		export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
		# keep net.so mapped at exit so that leak reports name its functions
		export LUAHOST_NO_DLCLOSE=1
		;;
	tsan)
		export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
		export RING_STRESS_MB=64
		;;
	windows)
		export SLUICE_BUILD="$ROOT/build/release"   # the Linux peers the Windows tests talk to
		;;
	esac
}

lua_host() {
	case "$1" in
	asan|tsan) echo "$ROOT/build/$1/luahost" ;;
	*) echo lua5.4 ;;
	esac
}

SAN_RE='ERROR: AddressSanitizer|runtime error:|WARNING: ThreadSanitizer|ERROR: LeakSanitizer'

# run_stage MODE STAGE TIMEOUT COMMAND... : runs, counts, reports one stage.
run_stage() {
	local mode=$1 stage=$2 limit=$3
	shift 3
	local log="$LOGDIR/$mode-$stage.log"
	local left=$((DEADLINE - (SECONDS - START) - 30))
	if [ "$left" -lt 30 ]; then
		echo "$mode $stage: not run, out of time (SLUICE_DEADLINE=${DEADLINE}s)"
		TOTAL_FAIL=$((TOTAL_FAIL + 1))
		return
	fi
	[ "$limit" -gt "$left" ] && limit=$left

	local prefix=()
	case "$mode" in asan|tsan) prefix=("${SAN_PREFIX[@]}") ;; esac

	local t0=$SECONDS rc
	{
		echo "# $mode $stage: ${prefix[*]} $*"
		echo "# started $(date '+%F %T')"
	} >"$log"
	# timeout(1) runs the command in a process group of its own; it is
	# killed whole when the time is up, and so are stragglers afterwards.
	(
		mode_env "$mode"
		exec timeout -k 15 "$limit" "${prefix[@]}" "$@"
	) >>"$log" 2>&1 </dev/null &
	CURRENT_PGID=$!
	wait "$CURRENT_PGID" 2>/dev/null
	rc=$?
	kill -TERM -- "-$CURRENT_PGID" 2>/dev/null
	CURRENT_PGID=""
	local secs=$((SECONDS - t0))

	local pass fail skip plan bail
	read -r pass fail skip plan bail < <(awk '
		/^ok([ \t]|$)/ {
			if (tolower($0) ~ /#[ \t]*skip/) skip++; else pass++
			next
		}
		/^not ok([ \t]|$)/ {
			if (tolower($0) ~ /#[ \t]*todo/) skip++; else fail++
			next
		}
		/^1\.\.[0-9]+/ { split($0, a, /[^0-9.]/); sub(/^1\.\./, "", a[1]); plan += a[1] + 0 }
		/^Bail out!/ { bail = 1 }
		END { printf "%d %d %d %d %d\n", pass, fail, skip, plan, bail }
	' "$log")

	local extra=0 why=()
	if grep -Eq "$SAN_RE" "$log"; then
		extra=1
		why+=("sanitizer report")
	fi
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		why+=("timed out after ${limit}s")
	elif [ "$rc" -gt 128 ] && [ "$rc" -lt 160 ]; then
		why+=("killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))")
	elif [ "$rc" -ne 0 ]; then
		why+=("exit status $rc")
	fi
	[ "$bail" -eq 1 ] && why+=("bailed out")
	local results=$((pass + fail + skip))
	local note=""
	# with --only, a stage none of whose tests match is no failure (a run where
	# nothing at all passed still fails: see finish)
	if [ "$results" -eq 0 ] && [ -n "$only" ] && [ "$plan" -eq 0 ] && [ ${#why[@]} -eq 0 ] &&
		[ "$extra" -eq 0 ]; then
		note="; nothing matches --only"
	elif [ "$results" -eq 0 ]; then
		why+=("no test results")
	fi
	[ "$plan" -gt "$results" ] && why+=("$results of $plan planned tests ran")
	if [ "$extra" -eq 0 ] && [ "$fail" -eq 0 ] && [ ${#why[@]} -gt 0 ]; then
		extra=1
	fi
	fail=$((fail + extra))

	TOTAL_PASS=$((TOTAL_PASS + pass))
	TOTAL_FAIL=$((TOTAL_FAIL + fail))
	TOTAL_SKIP=$((TOTAL_SKIP + skip))

	local line="$mode $stage: $pass passed, $fail failed"
	[ "$skip" -gt 0 ] && line="$line, $skip skipped"
	line="$line (${secs}s$note"
	if [ ${#why[@]} -gt 0 ]; then
		local joined
		joined=$(printf '%s; ' "${why[@]}")
		line="$line; ${joined%; }"
	fi
	echo "$line)"

	if [ "$fail" -gt 0 ]; then
		{
			if grep -q '^not ok' "$log"; then
				echo "---- failing tests ($log):"
				awk '/^not ok/ { show = 1; n = 0; print; next }
				     show && /^#/ && n < 12 { print; n++; next }
				     { show = 0 }' "$log" | head -n 80
			fi
			if grep -Eq "$SAN_RE" "$log"; then
				echo "---- first sanitizer report:"
				grep -E -m1 -A24 "$SAN_RE" "$log"
			fi
			local tail_lines=25
			grep -q '^not ok' "$log" && tail_lines=8
			echo "---- last lines of $log:"
			tail -n "$tail_lines" "$log"
			echo "----"
		} | sed 's/^/    /'
	fi
}

# The Windows build under wine: the C smoke test, the editor plugin in the
# static-Lua host, the Lua specs (--only does not apply).
windows_stages() {
	run_stage windows capi 600 bash tests/c_api/win_smoke.sh
	run_stage windows plugin 600 bash tests/windows/plugin_check.sh
	run_stage windows trust 600 bash tests/windows/trust_check.sh
	run_stage windows lua "$LUA_TIMEOUT" bash tests/windows/stage.sh
}

for mode in "${modes[@]}"; do
	if [[ "$failed_configs" == *" $mode "* ]]; then
		echo "$mode: not run, the $mode build failed"
		continue
	fi
	bin="build/$mode"
	if [ "$mode" = windows ]; then
		# --only picks Lua tests of the four Linux modes, unless windows is asked for
		[ -z "$only" ] || [ "$explicit_modes" -gt 0 ] && windows_stages
		continue
	fi
	if [ -z "$only" ]; then
		case "$mode" in
		release|poll)
			run_stage "$mode" layout 300 bash -c "python3 tests/layout/check.py build/obj/$mode/sluice &&
				python3 tests/layout/owner_syscalls.py $(lua_host "$mode") build/$mode" ;;
		esac
		run_stage "$mode" unit "$RING_TIMEOUT" bash tests/unit/run.sh "$ROOT/$bin"
		run_stage "$mode" capi "$RING_TIMEOUT" bash tests/c_api/run.sh "$ROOT/$bin"
		# a short, repeatable run of every fuzz target (they carry ASan+UBSan)
		[ "$mode" = asan ] && run_stage "$mode" fuzz 900 bash scripts/fuzz.sh --quick
		# the side-by-side benchmarks, briefly, sluice only: that they run, not what they show
		[ "$mode" = release ] && run_stage "$mode" bench 300 bash scripts/bench_peers.sh \
			--no-deps --no-build --quick --only net --tap
	fi
	host=$(lua_host "$mode")
	if [ ! -e "$bin/net.so" ] || ! command -v "$host" >/dev/null 2>&1; then
		echo "$mode lua: $bin/net.so or $host is missing"
		TOTAL_FAIL=$((TOTAL_FAIL + 1))
		continue
	fi
	args=(--output=TAP --verbose --pattern=_spec)
	[ -n "$only" ] && args+=("--filter=$only")
	times=()   # a whole run's spec times, to start the longest first next time
	[ -z "$only" ] && times=(-t "$LOGDIR/$mode-lua.times")
	run_stage "$mode" lua "$LUA_TIMEOUT" bash tests/tools/specs.sh "${times[@]}" \
		"$host" "${args[@]}" -- tests/lua/*_spec.lua
	pargs=()
	[ -n "$only" ] && pargs+=("--filter=$only")
	if [ -e "$bin/plugin/net.so" ] && [ -x "$bin/xl_host" ]; then
		run_stage "$mode" plugin "$LUA_TIMEOUT" bash tests/plugin/stage.sh "$mode" "${pargs[@]}"
	else
		echo "$mode plugin: $bin/plugin/net.so or $bin/xl_host is missing"
		TOTAL_FAIL=$((TOTAL_FAIL + 1))
	fi
done

finish
