# wineserver.sh: sourced by the Windows checks. One wineserver kept up for
# every wine run of a script: a client that starts while the last run's server
# is shutting down loses its connection to it ("recvmsg: Connection reset by
# peer"). Needs WINE; WINEPREFIX as the caller's runs have it.
WINESERVER=$(command -v wineserver || echo /usr/lib/wine/wineserver)

# The services the server starts stay up with it: they get no pipe of ours to
# hold open, or a $(...) around a later run would wait for them.
wine_server_up() {
	"$WINESERVER" -p 2>/dev/null
	WINEDEBUG=-all "$WINE" cmd /c exit </dev/null >/dev/null 2>&1
}

wine_server_down() { "$WINESERVER" -k 2>/dev/null; }
