#!/usr/bin/env bash
# Compiles the TLS code against another mbedTLS's headers (syntax and types
# only), e.g. a 3.x checkout: scripts/check_mbedtls3.sh ~/src/mbedtls/include
set -euo pipefail
inc=${1:?usage: $0 MBEDTLS_INCLUDE_DIR}
cd "$(dirname "$0")/.."
grep -m1 'define MBEDTLS_VERSION_STRING ' "$inc/mbedtls/build_info.h" "$inc/mbedtls/version.h" 2>/dev/null || true
# every source that includes an mbedTLS header (the Windows trust store aside)
files=$(grep -l '#include <mbedtls/' net/*.c | grep -v trust_win)
for f in $files; do
	gcc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fsyntax-only -I"$inc" -Inet "$f"
done
echo "ok: $(echo $files) compile against $inc"
