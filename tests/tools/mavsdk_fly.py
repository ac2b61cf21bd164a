"""PX4's own SDK (MAVSDK, the gRPC Python wrapper and its mavsdk_server) flies a short
mission: connect, wait for health all OK, upload 4 waypoints, arm, start, and wait until
the mission is finished and the vehicle has landed and disarmed.

Usage: mavsdk_fly.py SYSTEM_ADDRESS GRPC_PORT [TIMEOUT_S]
Prints one line per stage; exits 0 when landed after the whole mission.
"""

import asyncio
import math
import sys

import mavsdk_grpc as mavsdk
from mavsdk_grpc.mission import MissionItem, MissionPlan
from mavsdk_grpc.telemetry import LandedState


def say(*a):
    print(*a, flush=True)


def item(lat, lon, alt):
    return MissionItem(
        lat, lon, alt, 8.0, True, float("nan"), float("nan"),
        MissionItem.CameraAction.NONE, float("nan"), float("nan"),
        float("nan"), float("nan"), float("nan"),
        MissionItem.VehicleAction.NONE,
    )


async def first(gen, pred):
    async for x in gen:
        if pred(x):
            return x


async def fly(address, grpc_port):
    drone = mavsdk.System(port=grpc_port)
    await drone.connect(system_address=address)
    await first(drone.core.connection_state(), lambda s: s.is_connected)
    say("connected")
    h = await first(
        drone.telemetry.health(),
        lambda h: h.is_global_position_ok and h.is_home_position_ok and h.is_armable,
    )
    say("health ok", h)
    home = await first(drone.telemetry.home(), lambda p: not math.isnan(p.latitude_deg))
    say("home", home.latitude_deg, home.longitude_deg)
    d = 40.0 / 111_320.0
    dl = d / math.cos(math.radians(home.latitude_deg))
    plan = MissionPlan([
        item(home.latitude_deg + d, home.longitude_deg, 20.0),
        item(home.latitude_deg + d, home.longitude_deg + dl, 20.0),
        item(home.latitude_deg, home.longitude_deg + dl, 20.0),
        item(home.latitude_deg, home.longitude_deg, 20.0),
    ])
    await drone.mission.set_return_to_launch_after_mission(True)
    await drone.mission.upload_mission(plan)
    say("uploaded")
    await drone.action.arm()
    say("armed")
    await drone.mission.start_mission()
    say("started")
    p = await first(drone.mission.mission_progress(), lambda p: p.total > 0 and p.current == p.total)
    say("finished", p.current, p.total)
    await first(drone.telemetry.landed_state(), lambda s: s == LandedState.ON_GROUND)
    await first(drone.telemetry.armed(), lambda a: not a)
    say("landed")


async def main():
    address, grpc_port = sys.argv[1], int(sys.argv[2])
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 180.0
    await asyncio.wait_for(fly(address, grpc_port), timeout)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except asyncio.TimeoutError:
        say("timeout")
        sys.exit(1)
