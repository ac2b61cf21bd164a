"""MAVProxy, as an operator uses it, on a vehicle's GCS link: it finds the autopilot, shows
its mode by name, loads its parameters, and runs `param show`, `wp list`, `wp load`, a mode
change and `fence list`. Prints one stable line per fact, to compare PX4 with the simulator.

MAVProxy runs headless in a subprocess (mavproxy.py beside this Python), its commands fed on
stdin once the output it waits for has appeared.

Usage: mavproxy_session.py PORT STATE_DIR
"""

import os
import queue
import re
import subprocess
import sys
import threading
import time


def say(*a):
    print(*a, flush=True)


class Console:
    def __init__(self, args):
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))

    def send(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()

    def expect(self, pattern, timeout=30):
        """The first match of `pattern` in output not yet consumed, or None at the timeout."""
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            m = rx.search(line)
            if m:
                return m
        return None

    def close(self):
        try:
            self.send("exit")
        except OSError:
            pass
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.p.kill()


def main():
    port, state = int(sys.argv[1]), sys.argv[2]
    os.makedirs(state, exist_ok=True)
    mavproxy = os.path.join(os.path.dirname(sys.executable), "mavproxy.py")
    c = Console([sys.executable, "-u", mavproxy, f"--master=udpin:127.0.0.1:{port}",
                 f"--state-basedir={state}", "--nowait"])
    try:
        return session(c, state)
    finally:
        c.close()
        if os.environ.get("MAVPROXY_SESSION_LOG"):
            with open(os.environ["MAVPROXY_SESSION_LOG"], "w") as f:
                f.write("\n".join(c.seen))


def session(c, state):
    if c.expect(r"Detected vehicle \d+:1 on link", 60) is None:
        say("no autopilot")
        return 1
    say("autopilot detected")
    m = c.expect(r"Mode (\S+)", 30)
    say("mode", m and m.group(1))
    m = c.expect(r"Received (\d+) parameters", 90)
    say("parameters received", m and m.group(1))
    c.send("param show MPC_XY_CRUISE")
    m = c.expect(r"MPC_XY_CRUISE\s+(\S+)")
    say("param show MPC_XY_CRUISE", m and m.group(1))
    c.send("wp list")
    m = c.expect(r"Requesting (\d+) waypoints")
    say("wp list count", m and m.group(1))
    # PX4 holds an empty download open (no ACK comes for it) until its 5 s timeout, and
    # an upload before then is refused busy.
    m = c.expect(r"AP: (Operation timeout)", 30)
    say("after the empty list:", m and m.group(1))
    # The home position as MAVProxy reads it, then three waypoints north of it at 30 m.
    home = None
    for _ in range(10):
        c.send("status HOME_POSITION")
        home = c.expect(r"HOME_POSITION \{latitude : (-?\d+), longitude : (-?\d+)", 3)
        if home:
            break
    if home is None:
        say("no home")
        return 1
    lat, lon = int(home.group(1)) * 1e-7, int(home.group(2)) * 1e-7
    path = os.path.join(state, "mission.txt")
    with open(path, "w") as f:
        f.write("QGC WPL 110\n")
        f.write(f"0\t1\t0\t16\t0\t0\t0\t0\t{lat:.7f}\t{lon:.7f}\t0\t1\n")
        for i in range(1, 4):
            f.write(f"{i}\t0\t3\t16\t0\t0\t0\t0\t{lat + 0.0002 * i:.7f}\t{lon:.7f}\t30\t1\n")
    c.send(f"wp load {path}")
    m = c.expect(r"Sent all (\d+) waypoints")
    say("wp load sent", m and m.group(1))
    m = c.expect(r"Got MISSION_ACK: TYPE_MISSION: (\w+)")
    say("wp load ack", m and m.group(1))
    c.send("wp list")
    m = c.expect(r"Requesting (\d+) waypoints")
    say("wp list count", m and m.group(1))
    for _ in range(int(m.group(1)) if m else 0):
        it = c.expect(r"^(\d+) (\d+) (-?[\d.]+) (-?[\d.]+) (-?[\d.]+) p1=(\S+) p2=(\S+) p3=(\S+) p4=(\S+)")
        if it is None:
            say("wp list item missing")
            break
        cmd, frame, x, y, z = it.group(1), it.group(2), float(it.group(3)), float(it.group(4)), float(it.group(5))
        say("wp", cmd, "frame", frame, f"north {round((x - lat) * 111320):d} m",
            f"east {round((y - lon) * 111320):d} m", f"alt {z:.0f}", "params", *it.group(6, 7, 8, 9))
    # Mode changes with MAV_CMD_DO_SET_MODE (PX4 main mode AUTO, then its sub-mode).
    for sub_mode, name in ((4, "AUTO.MISSION"), (3, "AUTO.LOITER")):
        c.send(f"long DO_SET_MODE 1 4 {sub_mode}")
        m = c.expect(r"Got COMMAND_ACK: DO_SET_MODE: (\w+)")
        say(f"DO_SET_MODE {name} ack", m and m.group(1))
        m = c.expect(r"Mode (\S+)", 10)
        say("mode", m and m.group(1))
    c.send("fence list")
    m = c.expect(r"Requesting (\d+) fence items")
    say("fence list count", m and m.group(1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
