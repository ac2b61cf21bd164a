//! The autopilot's parameters, as PX4 v1.16 SITL has them, served as PX4's
//! MavlinkParametersManager serves them.
//!
//! The table is PX4's own list (`sim/data/px4_params.tsv`, dumped off PX4 SITL by
//! `tests/tools/px4_params_dump.py`): its 900 names, types, default values and order, so a
//! ground station that reads everything at connect (QGroundControl, MAVProxy, MAVSDK's
//! `get_all_params`) sees what it sees on PX4. What was seen on PX4 and is done here:
//! - PARAM_REQUEST_LIST: `_HASH_CHECK` first (index 65535, UINT32), then the list in order,
//!   paced; a request while one runs starts over at index 0 without the hash.
//! - PARAM_REQUEST_READ by index or name; names PX4 knows but does not list (it lists only
//!   parameters some module uses) answer with index 65535; unknown names get no answer.
//! - PARAM_SET: the value comes back to the sender, also when unchanged; a change then goes
//!   out on every link too (so the sender hears it twice; PX4 sometimes folds the two into
//!   one, as its timing falls); an unknown name gets no answer; `_HASH_CHECK` stops a list
//!   in progress.

use std::collections::HashMap;

use mavlink::dialects::common::{MavMessage, MavParamType, PARAM_VALUE_DATA};

/// A parameter's value, typed as PX4 types it (INT32 or REAL32).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ParamValueKind {
    Int(i32),
    Float(f32),
}

/// PX4's list, in its order.
const PX4_TABLE: &str = include_str!("../data/px4_params.tsv");

/// Parameters PX4 v1.16 answers by name but leaves out of its list (no module had looked
/// them up yet), with the values it answered.
const UNLISTED: [(&str, ParamValueKind); 1] = [("MIS_DIST_1WP", ParamValueKind::Float(10000.0))];

/// PARAM_VALUE messages sent per simulation step while a list is going out: 1,000 per
/// second of the vehicle's clock, PX4 SITL's pace at speed 1 (900 in 0.84 s).
const LIST_PER_STEP: usize = 20;

const HASH_NAME: &str = "_HASH_CHECK";

/// Where a PARAM_REQUEST_LIST on one link has got to.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Listing {
    Idle,
    Hash,
    At(usize),
}

pub struct Params {
    list: Vec<(String, ParamValueKind)>,
    /// Name → index in `list`, or `list.len() + i` for `UNLISTED[i]`.
    by_name: HashMap<String, usize>,
    unlisted: Vec<(String, ParamValueKind)>,
    listing: Vec<Listing>,
}

/// NuttX's `crc32part`, which PX4's `param_hash_check` chains over names and values:
/// reflected CRC-32, no initial or final inversion.
fn crc32_part(data: &[u8], mut crc: u32) -> u32 {
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    crc
}

fn name16(s: &str) -> mavlink::types::CharArray<16> {
    let mut b = [0u8; 16];
    let n = s.len().min(16);
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
    mavlink::types::CharArray::new(b)
}

impl ParamValueKind {
    /// The value as PARAM_VALUE carries it: integers byte-wise (PX4's
    /// MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE), floats as they are.
    fn wire(self) -> (f32, MavParamType) {
        match self {
            ParamValueKind::Int(x) => {
                (f32::from_bits(x as u32), MavParamType::MAV_PARAM_TYPE_INT32)
            }
            ParamValueKind::Float(x) => (x, MavParamType::MAV_PARAM_TYPE_REAL32),
        }
    }

    fn bytes(self) -> [u8; 4] {
        match self {
            ParamValueKind::Int(x) => x.to_le_bytes(),
            ParamValueKind::Float(x) => x.to_le_bytes(),
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            ParamValueKind::Int(i) => f64::from(i),
            ParamValueKind::Float(f) => f64::from(f),
        }
    }
}

impl Params {
    /// PX4 SITL's parameters for system `sysid` at `home` (lat, lon in degrees, alt AMSL in
    /// metres), set as its start-up sets them at speed 1.
    pub fn px4_sitl(sysid: u8, home: (f64, f64, f64)) -> Self {
        let mut list = Vec::new();
        for line in PX4_TABLE.lines().filter(|l| !l.starts_with('#')) {
            let mut f = line.split('\t');
            let (Some(name), Some(kind), Some(value)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let v = match kind {
                "INT32" => ParamValueKind::Int(value.parse().unwrap_or(0)),
                _ => ParamValueKind::Float(value.parse().unwrap_or(0.0)),
            };
            list.push((name.to_string(), v));
        }
        let unlisted: Vec<(String, ParamValueKind)> =
            UNLISTED.iter().map(|(n, v)| (n.to_string(), *v)).collect();
        let by_name = list
            .iter()
            .chain(unlisted.iter())
            .enumerate()
            .map(|(i, (n, _))| (n.clone(), i))
            .collect();
        let mut p = Self {
            list,
            by_name,
            unlisted,
            listing: Vec::new(),
        };
        p.set("MAV_SYS_ID", f64::from(sysid));
        p.set("SIH_LOC_LAT0", home.0);
        p.set("SIH_LOC_LON0", home.1);
        p.set("SIH_LOC_H0", home.2);
        p.speed_factor(1.0);
        p
    }

    /// The loss timeouts (seconds of the vehicle's clock) for a run at `speed` times real
    /// time: PX4's rcS multiplies them by PX4_SIM_SPEED_FACTOR, so they last as long in
    /// wall time at any speed.
    pub fn speed_factor(&mut self, speed: f64) {
        self.set("COM_DL_LOSS_T", (10.0 * speed).round());
        self.set("COM_RC_LOSS_T", speed);
        self.set("COM_OF_LOSS_T", speed);
        self.set("COM_OBC_LOSS_T", 5.0 * speed);
    }

    fn slot(&self, i: usize) -> &(String, ParamValueKind) {
        if i < self.list.len() {
            &self.list[i]
        } else {
            &self.unlisted[i - self.list.len()]
        }
    }

    fn slot_mut(&mut self, i: usize) -> &mut (String, ParamValueKind) {
        if i < self.list.len() {
            &mut self.list[i]
        } else {
            let n = self.list.len();
            &mut self.unlisted[i - n]
        }
    }

    /// The value of `name` (0 when PX4 has no such parameter).
    pub fn get(&self, name: &str) -> f64 {
        self.by_name
            .get(name)
            .map_or(0.0, |&i| self.slot(i).1.as_f64())
    }

    /// Sets `name` to `value`, keeping its type; false when there is no such parameter.
    pub fn set(&mut self, name: &str, value: f64) -> bool {
        let Some(&i) = self.by_name.get(name) else {
            return false;
        };
        let slot = self.slot_mut(i);
        slot.1 = match slot.1 {
            ParamValueKind::Int(_) => ParamValueKind::Int(value as i32),
            ParamValueKind::Float(_) => ParamValueKind::Float(value as f32),
        };
        true
    }

    /// How many parameters PX4 lists.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// PX4's `param_hash_check`: CRC-32 chained over each listed name and its value's bytes.
    pub fn hash(&self) -> u32 {
        self.list.iter().fold(0, |crc, (n, v)| {
            crc32_part(&v.bytes(), crc32_part(n.as_bytes(), crc))
        })
    }

    fn value_msg(&self, i: usize) -> MavMessage {
        let (name, v) = self.slot(i);
        let (param_value, param_type) = v.wire();
        MavMessage::PARAM_VALUE(PARAM_VALUE_DATA {
            param_value,
            param_count: self.list.len() as u16,
            param_index: if i < self.list.len() {
                i as u16
            } else {
                u16::MAX
            },
            param_id: name16(name),
            param_type,
        })
    }

    fn hash_msg(&self) -> MavMessage {
        MavMessage::PARAM_VALUE(PARAM_VALUE_DATA {
            param_value: f32::from_bits(self.hash()),
            param_count: self.list.len() as u16,
            param_index: u16::MAX,
            param_id: name16(HASH_NAME),
            param_type: MavParamType::MAV_PARAM_TYPE_UINT32,
        })
    }

    fn listing_mut(&mut self, link: usize) -> &mut Listing {
        if self.listing.len() <= link {
            self.listing.resize(link + 1, Listing::Idle);
        }
        &mut self.listing[link]
    }

    /// PARAM_REQUEST_LIST arrived on `link`.
    pub fn request_list(&mut self, link: usize) {
        let l = self.listing_mut(link);
        // A restart skips the hash, as PX4 does.
        *l = if *l == Listing::Idle {
            Listing::Hash
        } else {
            Listing::At(0)
        };
    }

    /// PARAM_REQUEST_READ: by index when `index` ≥ 0, else by name.
    pub fn read(&self, index: i16, name: &str) -> Option<MavMessage> {
        if index >= 0 {
            let i = index as usize;
            return (i < self.list.len()).then(|| self.value_msg(i));
        }
        if name == HASH_NAME {
            return Some(self.hash_msg());
        }
        self.by_name.get(name).map(|&i| self.value_msg(i))
    }

    /// PARAM_SET on `link`: the PARAM_VALUE for the sender and whether the value changed
    /// (then PX4 sends it on every link as well), or None for an unknown name.
    pub fn write(&mut self, link: usize, name: &str, raw: f32) -> Option<(MavMessage, bool)> {
        if name == HASH_NAME {
            *self.listing_mut(link) = Listing::Idle;
            return None;
        }
        let &i = self.by_name.get(name)?;
        let slot = self.slot_mut(i);
        let new = match slot.1 {
            ParamValueKind::Int(_) => ParamValueKind::Int(raw.to_bits() as i32),
            ParamValueKind::Float(_) => ParamValueKind::Float(raw),
        };
        let changed = slot.1.bytes() != new.bytes();
        slot.1 = new;
        Some((self.value_msg(i), changed))
    }

    /// One simulation step's share of the lists going out, with their links.
    pub fn due(&mut self) -> Vec<(usize, MavMessage)> {
        let mut out = Vec::new();
        for link in 0..self.listing.len() {
            for _ in 0..LIST_PER_STEP {
                match self.listing[link] {
                    Listing::Idle => break,
                    Listing::Hash => {
                        out.push((link, self.hash_msg()));
                        self.listing[link] = Listing::At(0);
                    }
                    Listing::At(i) => {
                        out.push((link, self.value_msg(i)));
                        self.listing[link] = if i + 1 < self.list.len() {
                            Listing::At(i + 1)
                        } else {
                            Listing::Idle
                        };
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_px4s_list_with_this_vehicles_settings() {
        let mut p = Params::px4_sitl(3, (30.5, 114.3, 40.0));
        assert_eq!(p.get("COM_DL_LOSS_T"), 10.0);
        p.speed_factor(4.0);
        assert_eq!(p.len(), 900);
        assert_eq!(p.get("MAV_SYS_ID"), 3.0);
        assert_eq!(p.get("COM_DL_LOSS_T"), 40.0);
        assert!((p.get("SIH_LOC_LAT0") - 30.5).abs() < 1e-5);
        assert_eq!(p.get("MIS_DIST_1WP"), 10000.0);
        assert_eq!(p.get("NO_SUCH_PARAM"), 0.0);
    }

    #[test]
    fn a_list_goes_out_hash_first_and_restarts_without_it() {
        let mut p = Params::px4_sitl(1, (36.56, 103.68, 1800.0));
        p.request_list(1);
        let first = p.due();
        assert_eq!(first.len(), LIST_PER_STEP);
        assert!(first.iter().all(|(l, _)| *l == 1));
        let MavMessage::PARAM_VALUE(h) = &first[0].1 else {
            panic!()
        };
        assert_eq!(h.param_id.to_str().unwrap_or(""), HASH_NAME);
        assert_eq!(h.param_value.to_bits(), p.hash());
        p.request_list(1);
        let MavMessage::PARAM_VALUE(v) = &p.due()[0].1 else {
            panic!()
        };
        assert_eq!(v.param_index, 0);
        let mut n = LIST_PER_STEP;
        loop {
            let d = p.due();
            if d.is_empty() {
                break;
            }
            n += d.len();
        }
        assert_eq!(n, 900);
    }

    #[test]
    fn the_hash_changes_with_a_value() {
        let mut p = Params::px4_sitl(1, (36.56, 103.68, 1800.0));
        let h = p.hash();
        assert_eq!(p.write(0, "MPC_XY_CRUISE", 7.5).map(|w| w.1), Some(true));
        assert_eq!(p.write(0, "MPC_XY_CRUISE", 7.5).map(|w| w.1), Some(false));
        assert_ne!(p.hash(), h);
        assert!(p.write(0, "NO_SUCH_PARAM", 1.0).is_none());
        assert!(p.read(-1, "NO_SUCH_PARAM").is_none());
        let Some(MavMessage::PARAM_VALUE(v)) = p.read(-1, "MIS_DIST_1WP") else {
            panic!()
        };
        assert_eq!(v.param_index, u16::MAX);
    }
}
