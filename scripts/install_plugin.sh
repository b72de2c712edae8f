#!/usr/bin/env bash
# Installs the editor plugin into Lite XL's or Pragtical's user folder.
#
#   scripts/install_plugin.sh [USERDIR...]     (./run.sh install-plugin)
#
# Without USERDIR it installs into every usual user folder that exists:
# $LITE_USERDIR, $XDG_CONFIG_HOME/lite-xl (~/.config/lite-xl),
# $PRAGTICAL_USERDIR, $XDG_CONFIG_HOME/pragtical (~/.config/pragtical).
# (A portable editor keeps its USERDIR in a `user` folder next to the
# executable: pass that folder.) Builds build/release/plugin/net.so first,
# unless SLUICE_PLUGIN_SO names the plugin to install (the tests do).
# Installs:
#   USERDIR/libraries/sluice/net.so     the module (require "libraries.sluice.net")
#   USERDIR/libraries/sluice/*.lua      its Lua libraries: data/sluice/*.lua
#                                       (require "libraries.sluice.http", ...; with the plugin
#                                       loaded also require "sluice.socket", ...)
#   USERDIR/plugins/sluice.lua          the editor-side plugin (require "plugins.sluice")
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

dirs=("$@")
if [ ${#dirs[@]} -eq 0 ]; then
	config=${XDG_CONFIG_HOME:-$HOME/.config}
	for d in "${LITE_USERDIR:-}" "$config/lite-xl" "${PRAGTICAL_USERDIR:-}" "$config/pragtical"; do
		[ -n "$d" ] && [ -d "$d" ] || continue
		case " ${dirs[*]-} " in *" $d "*) continue ;; esac
		dirs+=("$d")
	done
	if [ ${#dirs[@]} -eq 0 ]; then
		echo "install-plugin: no editor user folder found (looked for \$LITE_USERDIR, $config/lite-xl," >&2
		echo "  \$PRAGTICAL_USERDIR, $config/pragtical); run the editor once, or name one:" >&2
		echo "  ./run.sh install-plugin ~/.config/lite-xl" >&2
		exit 1
	fi
fi

so=${SLUICE_PLUGIN_SO:-}
if [ -z "$so" ]; then
	bash scripts/build.sh release >/dev/null
	so=build/release/plugin/net.so
fi
[ -f "$so" ] || { echo "install-plugin: $so was not built" >&2; exit 1; }
# data/sluice/*.lua (sluice.http among them)
shopt -s nullglob
libs=(data/sluice/*.lua)
shopt -u nullglob

for d in "${dirs[@]}"; do
	mkdir -p "$d/libraries/sluice" "$d/plugins"
	# copy to a temporary name and rename: an editor running now keeps the
	# file it mapped, and never sees a half-written one
	install -m 0755 "$so" "$d/libraries/sluice/.net.so.new"
	mv -f "$d/libraries/sluice/.net.so.new" "$d/libraries/sluice/net.so"
	install -m 0644 "${libs[@]}" "$d/libraries/sluice/"
	install -m 0644 plugin/sluice.lua "$d/plugins/sluice.lua"
	echo "installed into $d: libraries/sluice/net.so, ${#libs[@]} Lua libraries, plugins/sluice.lua"
done
# an editor keeps the net.so it loaded until it quits: 'Core: Restart' would
# pair that one with the new Lua files
echo "quit the editor and start it again to load it ('Core: Restart' keeps the net.so already loaded)"
