#!/usr/bin/env bash
# The C unit stage: every tests/unit/test_<name>.c, built as BUILD_DIR/test_<name>,
# run in turn. TAP on stdout. Usage: tests/unit/run.sh BUILD_DIR
set -u
bin=${1:?usage: $0 BUILD_DIR}
rc=0
for src in "$(dirname "$0")"/test_*.c; do
	name=$(basename "$src" .c)
	echo "# $name"
	if [ ! -x "$bin/$name" ]; then
		echo "not ok - $name: $bin/$name is missing (the build did not make it)"
		rc=1
		continue
	fi
	"$bin/$name" || rc=1
done
# net.h is for any C or C++ host: it must stand alone in the oldest dialects it serves
echo "# net.h alone"
net_h="$(dirname "$0")/../../net/net.h"
for std in "cc -x c -std=c99" "c++ -x c++ -std=c++11"; do
	if out=$($std -pedantic-errors -Wall -Werror -fsyntax-only "$net_h" 2>&1); then
		echo "ok - net.h compiles alone as ${std##* -std=}, pedantic"
	else
		echo "not ok - net.h compiles alone as ${std##* -std=}, pedantic: $out"
		rc=1
	fi
done
exit $rc
