#!/usr/bin/env python3
"""Writes the MAVLink frame and tlog seeds of the fuzz corpus (tests/__fuzz__/fuzz/{mavlink_frames,tlog}/corpus):
MAVLink 2 plain and signed (key bytes 0..31, link 0), MAVLink 1, garbage between frames.
Run with MAVLINK20=1 and pymavlink (.ci/requirements.txt)."""
from pymavlink.dialects.v20 import common as m2
from pymavlink.dialects.v10 import common as m1
import struct
import os
F=os.path.join(os.path.dirname(__file__), '..', '__fuzz__', 'fuzz') + '/'
class Buf:
    def __init__(self): self.b=bytearray()
    def write(self,x): self.b+=x
def msgs(mav, v1):
    out=[mav.heartbeat_encode(2,12,0x81,(4<<16)|(4<<24),4,3),
      mav.global_position_int_encode(1000,365600000,1036800000,1860000,60000,100,-50,0,9000),
      mav.statustext_encode(4,b'Failsafe activated'),
      mav.mission_item_int_encode(255,190,3,3,16,0,1,0,0,0,0,365605000,1036794000,30.0),
      mav.mission_count_encode(255,190,6),
      mav.command_long_encode(1,1,400,0,1,0,0,0,0,0,0)]
    if not v1:
        out.append(mav.camera_image_captured_encode(1000,1796180000000000,0,365600000,1036800000,1860000,60000,[0.7,0,-0.7,0],3,1,b'http://127.0.0.1:8000/images/1/000003.jpg'))
    return out
def frames(signing=False, v1=False):
    buf=Buf()
    mav=(m1 if v1 else m2).MAVLink(buf, srcSystem=1, srcComponent=1)
    if signing:
        mav.signing.secret_key=bytes(range(32)); mav.signing.link_id=0; mav.signing.sign_outgoing=True; mav.signing.timestamp=1
    raw=[]
    for m in msgs(mav, v1):
        before=len(buf.b); mav.send(m); raw.append(bytes(buf.b[before:]))
    return raw
plain=frames(); signed=frames(signing=True); v1=frames(v1=True)
open(F+'mavlink_frames/corpus/v2.bin','wb').write(b''.join(plain))
open(F+'mavlink_frames/corpus/v2-signed.bin','wb').write(b''.join(signed))
open(F+'mavlink_frames/corpus/v1.bin','wb').write(b''.join(v1))
open(F+'mavlink_frames/corpus/mixed-with-garbage.bin','wb').write(b'\x00\xfd\x09garbage'+plain[0]+b'\xfe\x05xx'+v1[1]+signed[2]+b'\xfd')
t=1796180000000000
tl=bytearray()
for i,f in enumerate(plain+signed+v1):
    tl+=struct.pack('>Q',t+i*20000)+f
open(F+'tlog/corpus/flight.tlog','wb').write(bytes(tl))
open(F+'tlog/corpus/truncated.tlog','wb').write(bytes(tl[:len(tl)//2+3]))
print(len(plain), len(tl))
