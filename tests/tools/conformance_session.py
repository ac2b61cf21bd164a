"""One scripted ground-station session, written with pymavlink (an implementation that is
neither PX4's nor ours), run against real PX4 SITL and against gridpatrol-sim on their GCS
links. It prints a JSON transcript: what the vehicle sent unasked and how often, and what
it answered to each request, step by step. tests/conformance.rs runs it on both and
tools/conformance_compare.py compares the two.

Usage: conformance_session.py PORT OUT.json
Rates are in Hz of the vehicle's own clock (its time_boot_ms), so speed factors cancel.
"""

import json
import math
import struct
import sys
import time

from pymavlink import mavutil

mavlink = mavutil.mavlink
PX4_MAIN = {1: "MANUAL", 2: "ALTCTL", 3: "POSCTL", 4: "AUTO", 5: "ACRO", 6: "OFFBOARD",
            7: "STABILIZED", 8: "RATTITUDE"}
PX4_AUTO = {1: "READY", 2: "TAKEOFF", 3: "LOITER", 4: "MISSION", 5: "RTL", 6: "LAND"}


def mode_name(custom_mode):
    main = (custom_mode >> 16) & 0xFF
    sub = (custom_mode >> 24) & 0xFF
    name = PX4_MAIN.get(main, str(main))
    if main == 4:
        name += "." + PX4_AUTO.get(sub, str(sub))
    return name


class Session:
    def __init__(self, port):
        self.m = mavutil.mavlink_connection(f"udpin:127.0.0.1:{port}", source_system=255,
                                            source_component=190)
        self.steps = []
        self.sysid = None
        self.boot_ms = None
        self.texts = []
        self.last_hb_sent = 0.0
        self.heartbeats = True

    # --- plumbing -----------------------------------------------------------------
    def recv(self, timeout=0.2):
        """Next message from the autopilot (component 1); keeps our heartbeat going."""
        if self.heartbeats and time.time() - self.last_hb_sent > 0.25:
            self.m.mav.heartbeat_send(mavlink.MAV_TYPE_GCS, mavlink.MAV_AUTOPILOT_INVALID,
                                      0, 0, 0)
            self.last_hb_sent = time.time()
        msg = self.m.recv_match(blocking=True, timeout=timeout)
        if msg is None or msg.get_type() == "BAD_DATA":
            return None
        if self.sysid is not None and msg.get_srcSystem() != self.sysid:
            return None
        if msg.get_srcComponent() != 1:
            return None
        if hasattr(msg, "time_boot_ms"):
            self.boot_ms = msg.time_boot_ms
        if msg.get_type() == "STATUSTEXT":
            self.texts.append(msg.text)
        return msg

    def vehicle_s(self):
        return (self.boot_ms or 0) / 1000.0

    def wait(self, pred, vehicle_s=5.0, wall_s=60.0):
        """The first message `pred` accepts within `vehicle_s` of the vehicle's clock."""
        start = self.vehicle_s() if self.boot_ms is not None else None
        end = time.time() + wall_s
        while time.time() < end:
            msg = self.recv()
            if msg is not None and pred(msg):
                return msg
            if start is None and self.boot_ms is not None:
                start = self.vehicle_s()
            if start is not None and self.vehicle_s() - start > vehicle_s:
                return None
        return None

    def collect(self, vehicle_s):
        """Every message for `vehicle_s` of the vehicle's clock."""
        # The first read also brings the clock up to date; on a busy machine the reply
        # may already be waiting in it, so it is kept.
        first = self.recv()
        start = self.vehicle_s()
        out = [first] if first is not None else []
        end = time.time() + vehicle_s * 20 + 10
        while self.vehicle_s() - start < vehicle_s and time.time() < end:
            msg = self.recv()
            if msg is not None:
                out.append(msg)
        return out

    def step(self, name, **facts):
        self.steps.append({"step": name, **facts})

    def command(self, cmd, *params, wait_s=3.0):
        p = list(params) + [0.0] * (7 - len(params))
        self.texts = []
        self.m.mav.command_long_send(self.sysid, 1, cmd, 0, *p)
        ack = self.wait(lambda x: x.get_type() == "COMMAND_ACK" and x.command == cmd
                        and x.result != mavlink.MAV_RESULT_IN_PROGRESS, wait_s)
        return ack.result if ack is not None else "no ack"

    def mode(self, main, sub=0):
        return self.command(mavlink.MAV_CMD_DO_SET_MODE, 1, main, sub)

    def heartbeat_mode(self):
        hb = self.wait(lambda x: x.get_type() == "HEARTBEAT", 3)
        return mode_name(hb.custom_mode) if hb else None

    def rates(self, vehicle_s):
        msgs = self.collect(vehicle_s)
        counts = {}
        for x in msgs:
            counts[x.get_type()] = counts.get(x.get_type(), 0) + 1
        return {k: round(v / vehicle_s, 2) for k, v in sorted(counts.items())}

    # --- mission protocol ---------------------------------------------------------
    def upload(self, mtype, items):
        """Uploads; returns the vehicle's side of the exchange as a list of strings."""
        seen = []
        self.m.mav.mission_count_send(self.sysid, 1, len(items), mtype)
        end = time.time() + 20
        while time.time() < end:
            x = self.wait(lambda x: x.get_type() in ("MISSION_REQUEST", "MISSION_REQUEST_INT",
                                                      "MISSION_ACK"), 5)
            if x is None:
                seen.append("timeout")
                break
            if x.get_type() == "MISSION_ACK":
                seen.append(f"ACK {x.type}")
                break
            seen.append(f"{x.get_type()} {x.seq}")
            if x.seq < len(items):
                frame, cmd, p1, lat, lon, alt = items[x.seq]
                self.m.mav.mission_item_int_send(self.sysid, 1, x.seq, frame, cmd, 0, 1, p1,
                                                 0, 0, 0, int(lat * 1e7), int(lon * 1e7),
                                                 alt, mtype)
        return seen

    def download(self, mtype):
        self.m.mav.mission_request_list_send(self.sysid, 1, mtype)
        c = self.wait(lambda x: x.get_type() == "MISSION_COUNT", 5)
        if c is None:
            return ["no count"]
        seen = [f"COUNT {c.count}"]
        for seq in range(c.count):
            self.m.mav.mission_request_int_send(self.sysid, 1, seq, mtype)
            it = self.wait(lambda x: x.get_type() == "MISSION_ITEM_INT" and x.seq == seq, 5)
            seen.append(f"ITEM {seq} frame {it.frame} cmd {it.command}" if it else "timeout")
        self.m.mav.mission_ack_send(self.sysid, 1, 0, mtype)
        return seen

    def clear(self, mtype):
        self.m.mav.mission_clear_all_send(self.sysid, 1, mtype)
        a = self.wait(lambda x: x.get_type() == "MISSION_ACK", 5)
        return f"ACK {a.type}" if a else "no ack"


def param_value(x):
    """A PARAM_VALUE's value: integers are sent byte-wise in the float (PX4's encoding)."""
    if x.param_type == mavlink.MAV_PARAM_TYPE_REAL32:
        return round(x.param_value, 6)
    return struct.unpack("<i", struct.pack("<f", x.param_value))[0]


def parameters(s):
    """The whole list as QGroundControl and MAVProxy read it at connect, reads and sets."""
    is_param = lambda x: x.get_type() == "PARAM_VALUE"
    s.m.mav.param_request_list_send(s.sysid, 1)
    got, first, count = {}, None, None
    while count is None or len(got) < count:
        x = s.wait(is_param, 3)
        if x is None:
            break
        if first is None:
            first = {"name": x.param_id, "index": x.param_index, "type": x.param_type}
        if x.param_id != "_HASH_CHECK":
            count = x.param_count
            got[x.param_id] = (x.param_index, x.param_type, param_value(x))
    order = sorted(got, key=lambda n: got[n][0])
    s.step("parameter list", first=first, count=count, received=len(got),
           params={n: [got[n][1], got[n][2]] for n in order})

    def read(name, index=-1):
        s.m.mav.param_request_read_send(s.sysid, 1, name.encode(), index)
        x = s.wait(is_param, 2)
        return x and {"name": x.param_id, "index": x.param_index, "value": param_value(x)}

    def write(name, value, ptype):
        """What comes back within 2 s of the vehicle's clock. PX4 answers the sender and,
        when the value changed, may announce it on every link too, so one or two copies."""
        if ptype == mavlink.MAV_PARAM_TYPE_INT32:
            value = struct.unpack("<f", struct.pack("<i", value))[0]
        s.m.mav.param_set_send(s.sysid, 1, name.encode(), value, ptype)
        got = [x for x in s.collect(2.0) if is_param(x)]
        return got and {"name": got[0].param_id, "value": param_value(got[0]),
                        "one_or_two_copies": 1 <= len(got) <= 2}

    s.step("read a parameter by name", reply=read("MPC_XY_CRUISE"))
    s.step("read a parameter by index", reply=read("", 3))
    s.step("read a parameter PX4 does not list", reply=read("MIS_DIST_1WP"))
    s.step("read an unknown parameter", reply=read("NO_SUCH_PARAM"))
    s.step("set a float parameter", reply=write("MPC_XY_CRUISE", 7.5, mavlink.MAV_PARAM_TYPE_REAL32))
    s.step("set it to the same value", reply=write("MPC_XY_CRUISE", 7.5, mavlink.MAV_PARAM_TYPE_REAL32))
    write("MPC_XY_CRUISE", 5.0, mavlink.MAV_PARAM_TYPE_REAL32)
    s.step("set an unknown parameter", reply=write("NO_SUCH_PARAM", 1.0, mavlink.MAV_PARAM_TYPE_REAL32))
    # For the data-link loss at the end: return after 8 s of the vehicle's clock.
    s.step("set integer parameters", dll_act=write("NAV_DLL_ACT", 2, mavlink.MAV_PARAM_TYPE_INT32),
           dl_loss_t=write("COM_DL_LOSS_T", 8, mavlink.MAV_PARAM_TYPE_INT32))


def run(port):
    s = Session(port)
    m = s.m
    # Connect: the autopilot's heartbeat.
    hb = None
    end = time.time() + 60
    while time.time() < end and hb is None:
        x = m.recv_match(type="HEARTBEAT", blocking=True, timeout=1)
        if x is not None and x.get_srcComponent() == 1 and x.autopilot == 12:
            hb = x
    s.sysid = hb.get_srcSystem()
    s.step("connect", type=hb.type, autopilot=hb.autopilot, mode=mode_name(hb.custom_mode),
           system_status=hb.system_status)
    s.wait(lambda x: x.get_type() == "HOME_POSITION", 10)
    # Unasked streams.
    s.step("streams", rates=s.rates(20.0))
    # Request and stop messages.
    s.step("set GPS_RAW_INT to 1 Hz",
           ack=s.command(mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, 24, 1e6),
           rates={"GPS_RAW_INT": s.rates(4.0).get("GPS_RAW_INT", 0)})
    s.step("stop GPS_RAW_INT",
           ack=s.command(mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, 24, -1),
           rates={"GPS_RAW_INT": s.rates(3.0).get("GPS_RAW_INT", 0)})
    s.step("default GPS_RAW_INT", ack=s.command(mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, 24, 0))
    for msg_id, name in ((148, "AUTOPILOT_VERSION"), (242, "HOME_POSITION")):
        s.m.mav.command_long_send(s.sysid, 1, mavlink.MAV_CMD_REQUEST_MESSAGE, 0, msg_id,
                                  0, 0, 0, 0, 0, 0)
        got = s.wait(lambda x: x.get_type() == name, 3)
        facts = {"sent": got is not None}
        if name == "AUTOPILOT_VERSION" and got is not None:
            facts["capabilities"] = got.capabilities
        s.step(f"request {name}", **facts)
    s.step("request protocol version",
           ack=s.command(mavlink.MAV_CMD_REQUEST_PROTOCOL_VERSION, 1))
    s.step("unknown command", ack=s.command(31010, 1))
    parameters(s)
    # Missions, fences and rally points.
    home = s.wait(lambda x: x.get_type() == "GLOBAL_POSITION_INT", 3)
    lat0, lon0 = home.lat / 1e7, home.lon / 1e7
    home_amsl = home.alt / 1000.0
    d = 30 / 111320.0
    mission = [(6, 22, 0, lat0, lon0, 20.0)] + [
        (6, 16, 0, lat0 + d * i, lon0, 20.0) for i in (1, 2)] + [(2, 20, 0, 0, 0, 0)]
    s.step("mission upload", seq=s.upload(0, mission))
    s.step("mission download", seq=s.download(0))
    big = 0.001
    fence = [(0, 5001, 4, lat0 + a, lon0 + b, 0) for a, b in
             ((-big, -big), (-big, big), (big, big), (big, -big))]
    s.step("fence upload", seq=s.upload(1, fence))
    s.step("fence download", seq=s.download(1))
    s.step("fence over capacity", seq=s.upload(1, [fence[0]] * 65)[-1:])
    s.step("rally upload", seq=s.upload(2, [(0, 5100, 0, lat0, lon0, 10.0)]))
    s.step("rally over capacity", seq=s.upload(2, [(0, 5100, 0, lat0, lon0, 10.0)] * 33)[-1:])
    # A download that skips ahead is aborted.
    s.m.mav.mission_request_list_send(s.sysid, 1, 0)
    s.wait(lambda x: x.get_type() == "MISSION_COUNT", 5)
    s.m.mav.mission_request_int_send(s.sysid, 1, 2, 0)
    a = s.wait(lambda x: x.get_type() in ("MISSION_ACK", "MISSION_ITEM_INT"), 3)
    s.step("download out of sequence",
           reply=(f"ACK {a.type}" if a.get_type() == "MISSION_ACK" else "ITEM") if a else None)
    # An upload during a download is refused as busy.
    s.m.mav.mission_request_list_send(s.sysid, 1, 0)
    s.wait(lambda x: x.get_type() == "MISSION_COUNT", 5)
    s.m.mav.mission_count_send(s.sysid, 1, 2, 0)
    a = s.wait(lambda x: x.get_type() == "MISSION_ACK", 3)
    s.step("upload during a download", reply=f"ACK {a.type}" if a else None)
    s.m.mav.mission_ack_send(s.sysid, 1, 0, 0)
    s.step("rally clear", ack=s.clear(2))
    # Arming refused: home outside an inclusion fence.
    far = [(0, 5001, 4, lat0 + 0.01 + a, lon0 + b, 0) for a, b in
           ((-big, -big), (-big, big), (big, big), (big, -big))]
    s.upload(1, far)
    # PX4's navigator loads a new fence a moment after the upload's ACK.
    s.wait(lambda x: False, 10.0)
    res = s.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1)
    s.step("arm outside the fence", ack=res)
    s.step("fence clear", ack=s.clear(1))
    # Mode changes on the ground.
    for name, (main, sub) in (("AUTO.LOITER", (4, 3)), ("AUTO.MISSION", (4, 4)),
                              ("POSCTL", (3, 0))):
        res = s.mode(main, sub)
        s.step(f"mode {name}", ack=res, heartbeat=s.heartbeat_mode())
    s.mode(4, 3)
    # A short mission flown to landing: AUTO.MISSION, arm, land back at home (RTL item).
    s.mode(4, 4)
    s.wait(lambda x: False, 1.0)
    res = s.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1)
    reached = []
    landed = None
    if res == 0:
        end_s = s.vehicle_s() + 180
        while s.vehicle_s() < end_s:
            x = s.recv()
            if x is None:
                continue
            if x.get_type() == "MISSION_ITEM_REACHED" and x.seq not in reached:
                reached.append(x.seq)
            if x.get_type() == "HEARTBEAT" and not (x.base_mode & 128) and reached:
                landed = True
                break
    s.step("mission flight", arm=res, reached=reached, landed_and_disarmed=bool(landed))
    # Takeoff, then RTL.
    s.mode(4, 3)
    res = s.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1)
    take = s.command(mavlink.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, math.nan, math.nan, math.nan,
                     home_amsl + 15)
    s.wait(lambda x: x.get_type() == "GLOBAL_POSITION_INT" and x.relative_alt > 12000, 60)
    rtl = s.command(mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH)
    modes = []
    end_s = s.vehicle_s() + 120
    disarmed = False
    while s.vehicle_s() < end_s:
        x = s.recv()
        if x is not None and x.get_type() == "HEARTBEAT":
            if not (x.base_mode & 128):
                disarmed = True
                break
            name = mode_name(x.custom_mode)
            # A heartbeat sent before the RTL took effect may still show the takeoff.
            if not modes and name != "AUTO.RTL":
                continue
            if not modes or modes[-1] != name:
                modes.append(name)
    s.step("takeoff and RTL", arm=res, takeoff=take, rtl=rtl, modes_while_armed=modes,
           disarmed=disarmed)
    # Data-link loss: in the air, our heartbeats stop.
    s.mode(4, 3)
    s.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1)
    s.command(mavlink.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, math.nan, math.nan, math.nan,
                     home_amsl + 15)
    s.wait(lambda x: x.get_type() == "GLOBAL_POSITION_INT" and x.relative_alt > 12000, 60)
    s.heartbeats = False
    s.texts = []
    t0 = s.vehicle_s()
    rtl_at = None
    end_s = t0 + 60
    while s.vehicle_s() < end_s:
        x = s.recv()
        if x is not None and x.get_type() == "HEARTBEAT" and mode_name(x.custom_mode) == "AUTO.RTL":
            rtl_at = s.vehicle_s() - t0
            break
    # COM_DL_LOSS_T is 8 s (set above), then PX4 holds for COM_FAIL_ACT_T (5 s) before it
    # returns: 13 s, and PX4 v1.16 SITL was seen to take up to 2.3 s more (loss detection).
    s.step("data link lost", rtl_after_loss_and_hold=rtl_at is not None and 12.0 <= rtl_at <= 17.0,
           text=[t for t in s.texts if "link" in t.lower()][:1])
    s.heartbeats = True
    s.command(mavlink.MAV_CMD_NAV_LAND)
    return {"steps": s.steps}


def main():
    out = run(int(sys.argv[1]))
    with open(sys.argv[2], "w") as f:
        json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
