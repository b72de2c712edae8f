#!/usr/bin/env python3
"""owner_syscalls.py: no blocking system call on a caller's thread (TAP).

    tests/layout/owner_syscalls.py LUA NET_SO_DIR

Runs owner_calls.lua (every non-waiting API call, polled in a busy loop)
under strace and lists the system calls its thread made between the markers.
Only calls that return at once may appear: socket setup (socket, bind,
listen, options, names), connect on a non-blocking socket (the Unix path
probe), closing, stat/unlink of a server's own socket path, the eventfd
that wakes the I/O thread, starting threads, memory, futex wake-ups, and
the thread's own preemption count (getrusage).
Never a read of a socket or a file, a wait in the poller, a sleep, a lookup,
or a futex wait (a lock another thread holds) -- but for the C library's
allocator lock, taken for the length of one malloc or free when another
thread frees memory this one allocated (or reads the heap's size for
get_stats: mallinfo2 waits as long as one malloc, never for a heap trim,
which net__mem_process_heap keeps apart), and the nap of a loop that spins on
empty objects while the cores are short (net__host_read: at most 0.5 ms,
ended by the I/O thread's next news; this script's busy loop is such a
loop). strace -k shows where each wait is.
"""
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ALLOWED = {
    "socket", "bind", "listen", "setsockopt", "getsockopt", "getsockname", "connect",
    "close", "shutdown", "newfstatat", "fstatat64", "stat", "lstat", "statx", "fstat",
    "unlink", "unlinkat", "write", "epoll_create1", "epoll_ctl", "eventfd2",
    "clone", "clone3", "rt_sigprocmask", "rt_sigaction", "set_robust_list", "rseq",
    "mmap", "munmap", "mprotect", "brk", "mremap", "madvise", "futex",
    "clock_gettime", "gettid", "getpid", "sched_yield", "getrusage",
}


ALLOCATOR = re.compile(r"libc\.so[.\d]*\((malloc|free|realloc|calloc|cfree|_int_\w+|__libc_\w+|mallinfo2)\+")


def stack_of(lines):
    """Line index of each syscall -> the frames strace -k printed under it."""
    stacks, last = {}, None
    for i, line in enumerate(lines):
        if line.startswith(" > "):
            if last is not None:
                stacks.setdefault(last, []).append(line)
        else:
            last = i
    return stacks


def allocator_lock(frames):
    return any(ALLOCATOR.search(f) for f in frames[:4])


def spinner_nap(frames):
    return any("(net__host_read+" in f for f in frames)


def main():
    lua, sodir = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp()
    trace = os.path.join(tmp, "trace")
    env = dict(os.environ, LUA_CPATH=os.path.join(sodir, "?.so") + ";;")
    run = subprocess.run(["strace", "-f", "-qq", "-k", "-o", trace, lua, os.path.join(HERE, "owner_calls.lua"), tmp],
                         env=env, capture_output=True, text=True, timeout=120)
    # strace -k can fail to unwind a thread that is just exiting: that is strace's
    # trouble, not the program's, which printed its last line
    unwind = "cannot initialize libunwind" in run.stderr
    ok_run = (run.returncode == 0 or unwind) and "owner calls done" in run.stdout
    print("%sok 1 - owner_calls.lua ran every non-waiting call" % ("" if ok_run else "not "))
    if not ok_run:
        for line in (run.stdout + run.stderr).splitlines()[-20:]:
            print("# " + line)
        print("1..2")
        return 1
    with open(trace) as f:
        lines = f.read().splitlines()
    main_tid = lines[0].split(None, 1)[0]
    inside, bad, nonblock_fds, seen = False, [], set(), {}
    pending = None   # a call strace split around another thread's lines
    stacks = stack_of(lines)
    for i, line in enumerate(lines):
        parts = line.split(None, 1)   # strace pads the thread ids to one width
        if len(parts) < 2 or parts[0] != main_tid:
            continue
        tid, call = parts
        if tid != main_tid:
            continue
        if call.endswith("<unfinished ...>"):
            pending = call[: -len("<unfinished ...>")]
            continue
        if call.startswith("<..."):
            if pending is None:
                continue
            call = pending + call.split("resumed>", 1)[-1]
            pending = None
        if "SLUICE-AUDIT-BEGIN" in call:
            inside = True
            continue
        if "SLUICE-AUDIT-END" in call:
            break
        if not inside:
            continue
        name = re.match(r"(\w+)\(", call)
        name = name.group(1) if name else call
        seen[name] = seen.get(name, 0) + 1
        fd = re.search(r"\)\s+=\s+(\d+)", call)
        if name == "socket" and "SOCK_NONBLOCK" in call and fd:
            nonblock_fds.add(fd.group(1))
        if name not in ALLOWED:
            bad.append(call)
        elif name == "connect" and call[len("connect("):].split(",")[0] not in nonblock_fds:
            bad.append("connect on a blocking socket: " + call)
        elif name == "futex" and "FUTEX_WAKE" not in call and not allocator_lock(stacks.get(i, [])) \
                and not spinner_nap(stacks.get(i, [])):
            frames = [f.strip()[2:].split(" [")[0] for f in stacks.get(i, [])[:8]]
            bad.append("waits on a lock: " + call + " at " + " < ".join(frames))
    print("%sok 2 - the caller's thread makes no blocking system call" % ("" if not bad else "not "))
    print("# calls made: " + ", ".join("%s %d" % kv for kv in sorted(seen.items())))
    for b in bad[:30]:
        print("# " + b[:600])
    print("1..2")
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
