"""Dumps the parameter list of a running PX4 SITL (PARAM_REQUEST_LIST on its GCS link) as the
table the simulator loads: sim/data/px4_params.tsv, one `name<TAB>type<TAB>value` per line in
PX4's order. Run against `px4-sitl start -i N --speed 1` (default home) with:

    MAVLINK20=1 python tests/tools/px4_params_dump.py GCS_PORT sim/data/px4_params.tsv
"""
import struct
import sys
import time

from pymavlink import mavutil


def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    m = mavutil.mavlink_connection(f"udpin:127.0.0.1:{port}", source_system=255,
                                   source_component=190)
    m.wait_heartbeat(timeout=30)
    m.mav.param_request_list_send(m.target_system, 1)
    rows, count, end = {}, None, time.time() + 60
    while time.time() < end and (count is None or len(rows) < count):
        x = m.recv_match(type="PARAM_VALUE", blocking=True, timeout=2)
        if x is None:
            break
        if x.param_id == "_HASH_CHECK":
            continue
        count = x.param_count
        if x.param_type == mavutil.mavlink.MAV_PARAM_TYPE_REAL32:
            rows[x.param_index] = (x.param_id, "REAL32", repr(x.param_value))
        else:
            v = struct.unpack("<i", struct.pack("<f", x.param_value))[0]
            rows[x.param_index] = (x.param_id, "INT32", str(v))
    if count is None or len(rows) != count:
        print(f"got {len(rows)} of {count} parameters", file=sys.stderr)
        return 1
    with open(out, "w") as f:
        f.write("# PX4 v1.16.0 SITL (SIH quadrotor, speed 1, home 36.56,103.68,1800, instance 0):\n")
        f.write("# its parameter list as PARAM_REQUEST_LIST returns it, in its order.\n")
        for i in range(count):
            f.write("\t".join(rows[i]) + "\n")
    print(f"{count} parameters written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
