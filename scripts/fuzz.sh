#!/usr/bin/env bash
# Builds and runs the fuzz targets (tests/fuzz/fuzz_*.c) with clang's
# libFuzzer, AddressSanitizer and UndefinedBehaviorSanitizer.
#
#   scripts/fuzz.sh [--quick] [--time SECONDS] [TARGET...]
#
# --quick (the test suite's fuzz stage): a short, repeatable run of each
#   target: fixed seed, the committed corpus tests/fuzz/corpus/TARGET, a
#   bounded number of runs; TAP on stdout.
# Otherwise each target runs for --time seconds (default 300) from a working
#   corpus in build/fuzz/corpus/TARGET (seeded from the committed one; new
#   inputs accumulate there). Crashes are written to build/fuzz/crashes/.
#   To keep new inputs: TARGET -merge=1 tests/fuzz/corpus/TARGET build/fuzz/corpus/TARGET
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2

quick=0
secs=300
targets=()
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=1; shift ;;
	--time) secs=$2; shift 2 ;;
	-h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) targets+=("$1"); shift ;;
	esac
done
if [ ${#targets[@]} -eq 0 ]; then
	for f in tests/fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi

OUT=build/fuzz
mkdir -p "$OUT/obj" "$OUT/crashes"
CFLAGS=(-g -O1 -std=c11 -D_GNU_SOURCE -pthread -fsanitize=fuzzer-no-link,address,undefined
	-fno-sanitize-recover=undefined -fno-omit-frame-pointer)
LIBS=(-lmbedtls -lmbedx509 -lmbedcrypto -lcares -lz -lpthread -ldl -lm)

# The engine, once, for every target.
objs=()
for src in net/*.c; do
	case "$src" in net/poll_poll.c|net/poll_kqueue.c) continue ;; esac
	obj="$OUT/obj/$(basename "$src" .c).o"
	if [ ! -e "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find net -name '*.h' -newer "$obj")" ]; then
		clang "${CFLAGS[@]}" -c "$src" -o "$obj" || { echo "not ok - build $src"; exit 1; }
	fi
	objs+=("$obj")
done

n=0
failed=0
for t in "${targets[@]}"; do
	n=$((n + 1))
	bin="$OUT/$t"
	if ! clang "${CFLAGS[@]}" -fsanitize=fuzzer -Inet "tests/fuzz/$t.c" "${objs[@]}" "${LIBS[@]}" -o "$bin" \
		>"$OUT/$t.build.log" 2>&1; then
		echo "not ok $n - $t builds"
		sed 's/^/# /' "$OUT/$t.build.log" | head -20
		failed=1
		continue
	fi
	seed_dir="tests/fuzz/corpus/$t"
	mkdir -p "$seed_dir"
	log="$OUT/$t.log"
	if [ "$quick" = 1 ]; then   # on a copy: new inputs never land in the source tree
		rm -rf "$OUT/quick/$t" && mkdir -p "$OUT/quick/$t" && cp -r "$seed_dir/." "$OUT/quick/$t/"
		"$bin" -seed=1 -runs=30000 -max_len=4096 -artifact_prefix="$OUT/crashes/$t-" "$OUT/quick/$t" >"$log" 2>&1
	else
		work="$OUT/corpus/$t"
		mkdir -p "$work"
		"$bin" -max_total_time="$secs" -artifact_prefix="$OUT/crashes/$t-" "$work" "$seed_dir" >"$log" 2>&1
	fi
	rc=$?
	runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -n 1)
	if [ $rc -eq 0 ]; then
		echo "ok $n - $t: ${runs:-done}, no failure"
	else
		echo "not ok $n - $t failed (log: $log)"
		grep -E 'ERROR|runtime error|SUMMARY|Test unit written' "$log" | head -10 | sed 's/^/# /'
		failed=1
	fi
done
echo "1..$n"
exit $failed
