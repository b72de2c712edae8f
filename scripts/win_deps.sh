#!/usr/bin/env bash
# Builds the Windows (x86_64, mingw-w64) dependencies of sluice from Debian's
# own source packages, the very versions of this machine's -dev packages:
#
#   mbedtls  -> build/windows/deps/mbedtls/lib/libmbed{tls,x509,crypto}.a
#   lua5.4   -> build/windows/deps/lua/bin/{lua54.dll,lua.exe,luac.exe},
#               lib/liblua54.dll.a (import library), lib/liblua54.a
#   zlib     -> build/windows/deps/zlib/lib/libz.a (static)
#   c-ares   -> build/windows/deps/cares/lib/libcares.a (static: consumers
#               define CARES_STATICLIB)
#
# each with its headers in build/windows/deps/<name>/include. Sources come
# from `apt-get source` (into build/windows/src/); a deb-src entry for the
# archive this machine already uses is added when there is none. Nothing is
# downloaded from anywhere else.
#
# Cached: build/windows/deps/<name>/.stamp names the source version and the
# recipe; a run that finds every stamp current only checks and exits.
#
#   scripts/win_deps.sh            install what is missing, build what is stale
#   scripts/win_deps.sh --wine     also install wine64 (the tests under wine)
#   JOBS=N                         make's -j (default 2)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

JOBS=${JOBS:-2}
WIN=$ROOT/build/windows
SRC=$WIN/src
DEPS=$WIN/deps
LOGDIR=$ROOT/build/logs
HOST=x86_64-w64-mingw32
CC=$HOST-gcc
# bump when a recipe below changes: stale stamps rebuild
RECIPE=1

want_wine=0
for a in "$@"; do
	case "$a" in
	--wine) want_wine=1 ;;
	-h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "win_deps: unknown argument '$a'" >&2; exit 2 ;;
	esac
done

mkdir -p "$SRC" "$DEPS" "$LOGDIR"

if [ "$(id -u)" -eq 0 ]; then
	SUDO=()
elif command -v sudo >/dev/null 2>&1; then
	SUDO=(sudo)
else
	SUDO=(sh -c 'echo "win_deps: needs root or sudo to run: $*" >&2; exit 1' win_deps)
fi
APT=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)

updated=0
apt_update() {
	[ "$updated" -eq 1 ] && return 0
	echo "win_deps: apt-get update" >&2
	"${SUDO[@]}" "${APT[@]}" update -qq
	updated=1
}

# ---------------------------------------------------------------- packages
PACKAGES=(
	gcc-mingw-w64-x86-64      # the cross compiler (C, with the Windows headers and import libraries)
	binutils-mingw-w64-x86-64 # its ar, objdump (the DLLs' import and export checks)
	dpkg-dev                  # dpkg-source, which `apt-get source` unpacks with
	python3                   # mbedTLS's config.py; reading the APT sources
	make
)
[ "$want_wine" -eq 1 ] && PACKAGES+=(wine64)   # runs the Windows builds for the tests

missing=()
for pkg in "${PACKAGES[@]}"; do
	case "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" in
	*" installed") ;;
	*) missing+=("$pkg") ;;
	esac
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "win_deps: installing ${missing[*]}" >&2
	apt_update
	"${SUDO[@]}" "${APT[@]}" install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# ---------------------------------------------------------------- deb-src
# Which source package and version each dependency comes from: the ones of
# the -dev packages the Linux build uses (installed, else the candidate).
src_of() {   # binary package -> "source version"
	local v s
	s=$(dpkg-query -W -f='${db:Status-Abbrev}|${source:Package} ${source:Version}' "$1" 2>/dev/null || true)
	if [[ "$s" == ii* ]]; then
		echo "${s#*|}"
		return
	fi
	v=$(apt-cache policy "$1" | awk '/Candidate:/ { print $2 }')
	[ -n "$v" ] && [ "$v" != "(none)" ] || { echo "win_deps: no version of $1 in apt" >&2; exit 1; }
	s=$(apt-cache show "$1=$v" 2>/dev/null | awk -F': ' '/^Source:/ { print $2; exit }')
	s=${s%% *}
	echo "${s:-$1} $v"
}

# A deb-src twin of every Debian entry (one-line and deb822 formats) of the
# enabled sources, written to one file of its own, when no deb-src exists.
DEBSRC_FILE=/etc/apt/sources.list.d/sluice-deb-src.sources
have_debsrc() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] && grep -Eq '^[[:space:]]*deb-src[[:space:]]' "$f" && return 0
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] && grep -Eiq '^Types:.*deb-src' "$f" && return 0
	done
	return 1
}

add_debsrc() {
	local text
	text=$(python3 - /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources <<'EOF'
import re, sys
out = []
def debian(uri):
    return "debian" in uri
for path in sys.argv[1:]:
    try:
        text = open(path).read()
    except OSError:
        continue
    if path.endswith(".sources"):
        for stanza in re.split(r"\n\s*\n", text):
            fields, order = {}, []
            for line in stanza.splitlines():
                if line.startswith("#") or not line.strip():
                    continue
                if line[0] in " \t" and order:
                    fields[order[-1]] += "\n" + line
                    continue
                k, _, v = line.partition(":")
                fields[k.strip()] = v.strip()
                order.append(k.strip())
            types = fields.get("Types", "").split()
            if "deb" not in types or fields.get("Enabled", "yes").lower() == "no":
                continue
            if not debian(fields.get("URIs", "")):
                continue
            lines = ["Types: deb-src"]
            lines += ["%s: %s" % (k, fields[k]) for k in order if k != "Types"]
            out.append("\n".join(lines))
    else:
        for line in text.splitlines():
            m = re.match(r"\s*deb(\s.*)$", line)
            if m and debian(line):
                # one-line form -> the same in deb822, so one file holds all
                rest = m.group(1).strip()
                opts = ""
                if rest.startswith("["):
                    opts, _, rest = rest[1:].partition("]")
                    rest = rest.strip()
                parts = rest.split()
                if len(parts) < 2:
                    continue
                st = ["Types: deb-src", "URIs: " + parts[0], "Suites: " + parts[1]]
                if len(parts) > 2:
                    st.append("Components: " + " ".join(parts[2:]))
                for o in opts.split():
                    k, _, v = o.partition("=")
                    if k == "signed-by":
                        st.append("Signed-By: " + v)
                out.append("\n".join(st))
print("\n\n".join(out))
EOF
)
	if [ -z "$text" ]; then
		echo "win_deps: no Debian entry in /etc/apt/sources.list{,.d/*} to add a deb-src for" >&2
		exit 1
	fi
	echo "win_deps: adding $DEBSRC_FILE (deb-src for the same archive)" >&2
	printf '# added by sluice scripts/win_deps.sh: apt-get source of the Windows dependencies\n%s\n' "$text" |
		"${SUDO[@]}" tee "$DEBSRC_FILE" >/dev/null
	updated=0
	apt_update
}

# ---------------------------------------------------------------- sources
# fetch SOURCE VERSION -> prints the unpacked directory
fetch() {
	local s=$1 v=$2 upv dir
	upv=${v#*:}          # no epoch in directory names
	upv=${upv%-*}        # no Debian revision
	dir=$SRC/$s-$upv
	if [ ! -f "$SRC/.$s-$v.unpacked" ] || [ ! -d "$dir" ]; then
		rm -rf "$dir"
		echo "win_deps: apt-get source $s=$v" >&2
		(cd "$SRC" && apt-get source -qq "$s=$v") >"$LOGDIR/win-src-$s.log" 2>&1 || {
			echo "win_deps: apt-get source $s=$v failed:" >&2
			tail -n 20 "$LOGDIR/win-src-$s.log" >&2
			exit 1
		}
		[ -d "$dir" ] || { echo "win_deps: apt-get source $s left no $dir" >&2; exit 1; }
		touch "$SRC/.$s-$v.unpacked"
	fi
	echo "$dir"
}

stamp_ok() {   # name "source version" -> 0 when built from it with this recipe
	local f=$DEPS/$1/.stamp
	[ -f "$f" ] && [ "$(cat "$f")" = "$2 recipe $RECIPE" ]
}

stamp_write() {
	echo "$2 recipe $RECIPE" >"$DEPS/$1/.stamp"
}

# run NAME CMD...: the command's output goes to build/logs/win-NAME.log
run() {
	local name=$1
	shift
	if ! "$@" >>"$LOGDIR/win-$name.log" 2>&1; then
		echo "win_deps: $name: '$*' failed (full log: $LOGDIR/win-$name.log):" >&2
		tail -n 30 "$LOGDIR/win-$name.log" >&2
		exit 1
	fi
}

# ---------------------------------------------------------------- mbedTLS
build_mbedtls() {
	local sv dir out=$DEPS/mbedtls
	sv=$SV_mbedtls
	stamp_ok mbedtls "$sv" && return 0
	local t0=$SECONDS
	dir=$(fetch $sv)
	echo "win_deps: building mbedtls ($sv)" >&2
	: >"$LOGDIR/win-mbedtls.log"
	rm -rf "$out"
	mkdir -p "$out/lib" "$out/include"
	# Debian's configuration: the `scripts/config.py set` lines of its
	# debian/rules (threading through pthreads among them: winpthreads on
	# mingw, linked statically into the DLLs). AES-NI needs MBEDTLS_HAVE_ASM
	# and MBEDTLS_AESNI_C, both on by default.
	local opt
	for opt in $(sed -n 's/^[[:space:]]*scripts\/config\.py set \([A-Z0-9_]*\).*/\1/p' "$dir/debian/rules"); do
		run mbedtls python3 "$dir/scripts/config.py" -f "$dir/include/mbedtls/config.h" set "$opt"
	done
	run mbedtls make -C "$dir/library" clean
	run mbedtls make -C "$dir/library" -j"$JOBS" static WINDOWS_BUILD=1 \
		CC="$CC" AR="$HOST-ar" CFLAGS="-O2 -DNDEBUG"
	cp "$dir"/library/libmbed{tls,x509,crypto}.a "$out/lib/"
	cp -r "$dir/include/mbedtls" "$out/include/"
	[ -d "$dir/include/psa" ] && cp -r "$dir/include/psa" "$out/include/"
	# the AES-NI path must be there: its entry point and AES instructions
	local syms dis
	syms=$("$HOST-nm" "$out/lib/libmbedcrypto.a" 2>/dev/null || true)
	dis=$("$HOST-objdump" -d "$out/lib/libmbedcrypto.a" 2>/dev/null || true)
	if [[ "$syms" != *" T mbedtls_aesni_crypt_ecb"* ]] || [[ "$dis" != *aesenc* ]]; then
		echo "win_deps: mbedtls built without its AES-NI code" >&2
		exit 1
	fi
	stamp_write mbedtls "$sv"
	echo "win_deps: mbedtls built in $((SECONDS - t0)) s" >&2
}

# ---------------------------------------------------------------- Lua 5.4
# Straight from the source files: lua54.dll (core + standard libraries,
# LUA_BUILD_AS_DLL) with its import library, lua.exe against it, luac.exe
# linked statically (it uses internals the DLL does not export).
build_lua() {
	local sv dir out=$DEPS/lua obj f core=()
	sv=$SV_lua
	stamp_ok lua "$sv" && return 0
	local t0=$SECONDS
	dir=$(fetch $sv)
	echo "win_deps: building lua ($sv)" >&2
	: >"$LOGDIR/win-lua.log"
	rm -rf "$out"
	obj=$WIN/obj/deps-lua
	rm -rf "$obj"
	mkdir -p "$obj" "$out/lib" "$out/bin" "$out/include"
	local cflags=(-O2 -Wall -std=gnu99 -DLUA_COMPAT_5_3 -DLUA_BUILD_AS_DLL)
	for f in "$dir"/src/*.c; do
		case "$(basename "$f")" in
		lua.c | luac.c | onelua.c) continue ;;
		esac
		core+=("$obj/$(basename "${f%.c}").o")
	done
	printf '%s\n' "${core[@]}" | sed 's|.*/||; s|\.o$||' |
		xargs -P "$JOBS" -I{} "$CC" "${cflags[@]}" -c "$dir/src/{}.c" -o "$obj/{}.o" \
		>>"$LOGDIR/win-lua.log" 2>&1 || {
		echo "win_deps: lua: compiling failed (full log: $LOGDIR/win-lua.log)" >&2
		tail -n 30 "$LOGDIR/win-lua.log" >&2
		exit 1
	}
	run lua "$CC" -shared -s -o "$out/bin/lua54.dll" "${core[@]}" \
		-Wl,--out-implib,"$out/lib/liblua54.dll.a"
	run lua "$HOST-ar" rcs "$out/lib/liblua54.a" "${core[@]}"
	run lua "$CC" "${cflags[@]}" -s -o "$out/bin/lua.exe" "$dir/src/lua.c" "$out/lib/liblua54.dll.a"
	run lua "$CC" -O2 -Wall -std=gnu99 -DLUA_COMPAT_5_3 -s -o "$out/bin/luac.exe" \
		"$dir/src/luac.c" "$out/lib/liblua54.a"
	for f in lua.h luaconf.h lualib.h lauxlib.h lua.hpp; do
		[ -f "$dir/src/$f" ] && cp "$dir/src/$f" "$out/include/"
	done
	stamp_write lua "$sv"
	echo "win_deps: lua built in $((SECONDS - t0)) s" >&2
}

# ---------------------------------------------------------------- zlib
# Debian's zlib source has no win32/ makefiles: the library's files are
# compiled one by one (zconf.h as shipped suits mingw).
build_zlib() {
	local sv dir out=$DEPS/zlib obj f objs=()
	sv=$SV_zlib
	stamp_ok zlib "$sv" && return 0
	local t0=$SECONDS
	dir=$(fetch $sv)
	echo "win_deps: building zlib ($sv)" >&2
	: >"$LOGDIR/win-zlib.log"
	rm -rf "$out"
	obj=$WIN/obj/deps-zlib
	rm -rf "$obj"
	mkdir -p "$obj" "$out/lib" "$out/include"
	for f in adler32 compress crc32 deflate gzclose gzlib gzread gzwrite infback \
		inffast inflate inftrees trees uncompr zutil; do
		objs+=("$obj/$f.o")
	done
	printf '%s\n' "${objs[@]}" | sed 's|.*/||; s|\.o$||' |
		xargs -P "$JOBS" -I{} "$CC" -O2 -Wall -c "$dir/{}.c" -o "$obj/{}.o" \
		>>"$LOGDIR/win-zlib.log" 2>&1 || {
		echo "win_deps: zlib: compiling failed (full log: $LOGDIR/win-zlib.log)" >&2
		tail -n 30 "$LOGDIR/win-zlib.log" >&2
		exit 1
	}
	run zlib "$HOST-ar" rcs "$out/lib/libz.a" "${objs[@]}"
	cp "$dir/zlib.h" "$dir/zconf.h" "$out/include/"
	stamp_write zlib "$sv"
	echo "win_deps: zlib built in $((SECONDS - t0)) s" >&2
}

# ---------------------------------------------------------------- c-ares
# c-ares' own MinGW makefile (Makefile.m32, its config-win32.h): no configure
# checks, which under CMake took six of the eight minutes of a cold build here.
build_cares() {
	local sv dir out=$DEPS/cares
	sv=$SV_cares
	stamp_ok cares "$sv m32" && return 0
	local t0=$SECONDS
	dir=$(fetch $sv)
	echo "win_deps: building c-ares ($sv)" >&2
	: >"$LOGDIR/win-cares.log"
	rm -rf "$out"
	mkdir -p "$out/lib" "$out/include"
	# the types a configure step would find for mingw-w64
	cat >"$dir/include/ares_build.h" <<'EOF'
#ifndef __CARES_BUILD_H
#define __CARES_BUILD_H
/* mingw-w64 (written by scripts/win_deps.sh) */
#define CARES_TYPEOF_ARES_SOCKLEN_T socklen_t
#define CARES_TYPEOF_ARES_SSIZE_T ssize_t
#include <sys/types.h>
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
typedef CARES_TYPEOF_ARES_SOCKLEN_T ares_socklen_t;
typedef CARES_TYPEOF_ARES_SSIZE_T ares_ssize_t;
#endif
EOF
	# 1.18's inet_net_pton.c uses INADDRSZ, which only <arpa/nameser.h> defines
	local cares_cflags=""
	grep -q 'pton_ipv4(curtok, tp, INADDRSZ)' "$dir/src/lib/inet_net_pton.c" && cares_cflags="-DINADDRSZ=4"
	rm -f "$dir"/src/lib/*.o "$dir/src/lib/libcares.a"
	run cares make -C "$dir" -f Makefile.m32 -j"$JOBS" CROSSPREFIX="$HOST-" \
		CARES_CFLAG_EXTRAS="$cares_cflags" src/lib/libcares.a
	cp "$dir/src/lib/libcares.a" "$out/lib/"
	local h
	for h in ares.h ares_build.h ares_rules.h ares_version.h ares_dns.h ares_nameser.h; do
		if [ -f "$dir/include/$h" ]; then cp "$dir/include/$h" "$out/include/"; fi
	done
	stamp_write cares "$sv m32"
	echo "win_deps: cares built in $((SECONDS - t0)) s" >&2
}

# The deb-src entry and its index, once, and only when something is stale.
sources_ready() {
	have_debsrc || add_debsrc
	if [ -z "$(apt-cache showsrc mbedtls 2>/dev/null)" ]; then
		updated=0
		apt_update
	fi
	[ -n "$(apt-cache showsrc mbedtls 2>/dev/null)" ] || {
		echo "win_deps: apt knows no source packages even after apt-get update" >&2
		exit 1
	}
}
SV_mbedtls=$(src_of libmbedtls-dev)
SV_lua=$(src_of liblua5.4-dev)
SV_zlib=$(src_of zlib1g-dev)
SV_cares=$(src_of libc-ares-dev)
stamp_ok mbedtls "$SV_mbedtls" && stamp_ok lua "$SV_lua" &&
	stamp_ok zlib "$SV_zlib" && stamp_ok cares "$SV_cares m32" ||
	sources_ready

build_mbedtls
build_lua
build_zlib
build_cares
echo "win_deps: ok ($DEPS: mbedtls lua zlib cares)" >&2
