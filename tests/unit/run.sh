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
exit $rc
