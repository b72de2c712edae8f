# wineserver.sh: sourced by the Windows checks. One wineserver kept up for
# every wine run of a script: a client that starts while the last run's server
# is shutting down loses its connection to it ("recvmsg: Connection reset by
# peer"). Sets WINE (wine64, unless given) and WINESERVER; WINEPREFIX is
# the caller's, as its runs have it.
WINE=${WINE:-$(command -v wine64 || echo /usr/lib/wine/wine64)}
WINESERVER=$(command -v wineserver || echo /usr/lib/wine/wineserver)

# The services the server starts stay up with it: they get no pipe of ours to
# hold open, or a $(...) around a later run would wait for them.
wine_server_up() {
	"$WINESERVER" -p 2>/dev/null
	WINEDEBUG=-all "$WINE" cmd /c exit </dev/null >/dev/null 2>&1
}

wine_server_down() { "$WINESERVER" -k 2>/dev/null; }
