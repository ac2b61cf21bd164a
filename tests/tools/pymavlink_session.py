"""A plain pymavlink ground station on a vehicle's GCS link, as people script PX4: the
heartbeat and mode name, a 3-waypoint mission written with MISSION_ITEM_INT and read back
("wp list"), and a mode change by name. Prints one stable line per fact, to compare.

Usage: pymavlink_session.py PORT
"""

import sys
import time

from pymavlink import mavutil


def say(*a):
    print(*a, flush=True)


def autopilot_heartbeat(m, timeout):
    """The next HEARTBEAT of the autopilot (component 1), not of a camera beside it."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        hb = m.recv_match(type="HEARTBEAT", blocking=True, timeout=1)
        if hb is not None and hb.get_srcComponent() == 1 and hb.autopilot == 12:
            return hb
    return None


def main():
    port = int(sys.argv[1])
    m = mavutil.mavlink_connection(f"udpin:127.0.0.1:{port}", source_system=255, source_component=190)
    hb = autopilot_heartbeat(m, 30)
    if hb is None:
        say("no heartbeat")
        return 1
    m.target_system, m.target_component = hb.get_srcSystem(), hb.get_srcComponent()
    say("heartbeat type", hb.type, "autopilot", hb.autopilot)
    say("mode", mavutil.mode_string_v10(hb))
    home = m.recv_match(type="HOME_POSITION", blocking=True, timeout=10)
    if home is None:
        m.mav.command_long_send(m.target_system, 1, 512, 0, 242, 0, 0, 0, 0, 0, 0)
        home = m.recv_match(type="HOME_POSITION", blocking=True, timeout=10)
    lat, lon = home.latitude, home.longitude
    items = [(lat + 2000 * i, lon, 30.0) for i in range(1, 4)]
    m.mav.mission_count_send(m.target_system, m.target_component, len(items), 0)
    sent = 0
    deadline = time.time() + 20
    while time.time() < deadline:
        r = m.recv_match(type=["MISSION_REQUEST", "MISSION_REQUEST_INT", "MISSION_ACK"],
                         blocking=True, timeout=2)
        if r is None:
            continue
        if r.get_type() == "MISSION_ACK":
            say("upload ack", r.type)
            break
        x, y, z = items[r.seq]
        m.mav.mission_item_int_send(m.target_system, m.target_component, r.seq, 6, 16, 0, 1,
                                    0, 0, 0, float("nan"), x, y, z, 0)
        sent += 1
    m.waypoint_request_list_send()
    c = m.recv_match(type="MISSION_COUNT", blocking=True, timeout=10)
    say("wp list count", c.count)
    for seq in range(c.count):
        m.mav.mission_request_int_send(m.target_system, m.target_component, seq, 0)
        it = m.recv_match(type="MISSION_ITEM_INT", blocking=True, timeout=5)
        say("wp", it.seq, "frame", it.frame, "cmd", it.command,
            "at", it.x - lat, it.y - lon, round(it.z, 1))
    m.mav.mission_ack_send(m.target_system, m.target_component, 0, 0)
    m.target_component = 1
    m.set_mode("MISSION")
    ack = m.recv_match(type="COMMAND_ACK", blocking=True, timeout=5)
    say("set_mode MISSION ack", ack.command, ack.result)
    deadline = time.time() + 5
    while time.time() < deadline:
        hb = autopilot_heartbeat(m, 2)
        if hb is not None and mavutil.mode_string_v10(hb) == "MISSION":
            break
    say("mode", mavutil.mode_string_v10(hb))
    return 0


if __name__ == "__main__":
    sys.exit(main())
