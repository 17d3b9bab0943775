"""Drives `eddy console` through a pseudo-terminal like a person at a keyboard: types the
beginning of a command and TAB, checks that the line was completed, runs it, reads the
screen, and quits. Exits 1 naming the first thing that did not show.

With --lost NODE_PID it checks a connection lost mid-session instead: it kills the node
(SIGKILL) once connected, types a command, expects the reconnect offer, accepts it, and
expects the console to name the address it could not reach and exit 1.

Usage: console_pty.py EDDY_BIN HOST:PORT HISTORY_FILE [--lost NODE_PID]
"""
import signal
import os
import pty
import select
import sys
import time

eddy, address, history = sys.argv[1:4]
lost_pid = int(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[4] == "--lost" else None
pid, fd = pty.fork()
if pid == 0:
    os.execv(eddy, [eddy, "console", address, "--history", history])

screen = b""


def read_until(text, timeout=10.0):
    """Reads the terminal until `text` shows (True) or the timeout passes (False)."""
    global screen
    end = time.time() + timeout
    while time.time() < end:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
            if text.encode() in screen:
                return True
    return text.encode() in screen


def expect(text, what):
    if not read_until(text):
        sys.stdout.write("FAIL: %s: %r did not show; the screen:\n%s\n"
                         % (what, text, screen.decode(errors="replace")))
        sys.exit(1)


expect("eddy> ", "the prompt")
if lost_pid is not None:
    os.kill(lost_pid, signal.SIGKILL)
    time.sleep(0.5)
    os.write(fd, b"jobs\r")
    expect("reconnect to " + address + "? [Y/n]", "the reconnect offer")
    os.write(fd, b"y\r")
    expect("cannot reach the inspector at " + address, "the address tried again")
    _, status = os.waitpid(pid, 0)
    if os.WEXITSTATUS(status) != 1:
        sys.stdout.write("FAIL: the console exited with %d, not 1\n" % os.WEXITSTATUS(status))
        sys.exit(1)
    print("PASS: a lost connection offers to reconnect and names the address")
    sys.exit(0)
# TAB completes "jo" to "jobs" (the only command starting so): the answer is that of jobs
# (a table of jobs), not the error "jo" alone would get.
os.write(fd, b"jo\t\r")
expect("wordcount  running", "the answer of jobs completed from 'jo'")
expect("eddy> ", "the prompt after jobs")
# TAB completes an operator name learned from the node ("actors cou" alone is an error).
os.write(fd, b"actors cou\t\r")
expect("count/7", "the answer of actors count completed from 'cou'")
expect("eddy> ", "the prompt after actors")
# The Up arrow recalls the last line from the history: Enter runs "actors count" again.
before = screen.count(b"count/7")
os.write(fd, b"\x1b[A\r")
deadline = time.time() + 10
while screen.count(b"count/7") <= before and time.time() < deadline:
    read_until("\0", 0.2)
if screen.count(b"count/7") <= before:
    sys.stdout.write("FAIL: Up + Enter did not run the last command again:\n%s\n"
                     % screen.decode(errors="replace"))
    sys.exit(1)
# Pause and resume a partition; TAB completes "cou" as far as the operator and its
# partitions agree ("count"), so "/5" names the partition.
os.write(fd, b"pause count/5\r")
expect("takes no input until resume", "pause count/5")
os.write(fd, b"resume cou\t/5\r")
expect("count/5  running", "resume completed from 'cou' to a partition")
if b"unknown command" in screen or b"no operator" in screen:
    sys.stdout.write("FAIL: a command was not completed:\n%s\n" % screen.decode(errors="replace"))
    sys.exit(1)
os.write(fd, b"quit\r")
_, status = os.waitpid(pid, 0)
if os.WEXITSTATUS(status) != 0:
    sys.stdout.write("FAIL: the console exited with %d\n" % os.WEXITSTATUS(status))
    sys.exit(1)
print("PASS: completion, commands and quit through a pseudo-terminal")
