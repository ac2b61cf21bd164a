//! The parameter protocol (https://mavlink.io/en/services/parameter.html).
//! PX4 encodes integers bytewise in the float field (MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE).

use std::collections::BTreeMap;

use mavlink::dialects::common::{
    MavMessage, MavParamType, PARAM_REQUEST_LIST_DATA, PARAM_REQUEST_READ_DATA, PARAM_SET_DATA,
    PARAM_VALUE_DATA,
};
use mavlink::types::CharArray;
use serde::Serialize;
use tokio::time::Instant;

use super::Vehicle;

/// A parameter value as PX4 types them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum ParamValue {
    Int(i32),
    Float(f32),
}

impl ParamValue {
    fn from_wire(p: &PARAM_VALUE_DATA) -> Self {
        match p.param_type {
            MavParamType::MAV_PARAM_TYPE_REAL32 | MavParamType::MAV_PARAM_TYPE_REAL64 => {
                Self::Float(p.param_value)
            }
            _ => Self::Int(p.param_value.to_bits() as i32),
        }
    }

    fn to_wire(self) -> (f32, MavParamType) {
        match self {
            Self::Int(i) => (f32::from_bits(i as u32), MavParamType::MAV_PARAM_TYPE_INT32),
            Self::Float(f) => (f, MavParamType::MAV_PARAM_TYPE_REAL32),
        }
    }

    pub fn as_f64(self) -> f64 {
        match self {
            Self::Int(i) => f64::from(i),
            Self::Float(f) => f64::from(f),
        }
    }
}

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Int(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x}"),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParamError {
    #[error("parameter name {0:?} is longer than 16 characters")]
    BadName(String),
    #[error("parameter {name}: no answer after {attempts} attempts")]
    Timeout { name: String, attempts: u32 },
    #[error("parameter {name}: set to {wanted} but the vehicle kept {got}")]
    NotSet {
        name: String,
        wanted: ParamValue,
        got: ParamValue,
    },
    #[error("parameter list incomplete: {missing} of {count} still missing after re-requests")]
    Incomplete { missing: usize, count: usize },
}

fn name_of(p: &PARAM_VALUE_DATA) -> String {
    p.param_id.to_str().unwrap_or("").to_string()
}

fn param_id(name: &str) -> Result<CharArray<16>, ParamError> {
    if name.len() > 16 || name.is_empty() {
        return Err(ParamError::BadName(name.to_string()));
    }
    let mut b = [0u8; 16];
    b[..name.len()].copy_from_slice(name.as_bytes());
    Ok(CharArray::new(b))
}

impl Vehicle {
    /// Reads one parameter by name.
    pub async fn param_get(&self, name: &str) -> Result<ParamValue, ParamError> {
        let id = param_id(name)?;
        let cfg = self.cfg().clone();
        let mut txn = self.txn().await;
        let msg = MavMessage::PARAM_REQUEST_READ(PARAM_REQUEST_READ_DATA {
            param_index: -1,
            target_system: self.sysid(),
            target_component: 1,
            param_id: id,
        });
        for _ in 0..=cfg.param_retries {
            txn.send(msg.clone());
            let deadline = Instant::now() + cfg.param_timeout;
            while let Some(inb) = txn.recv_until(deadline).await {
                if let MavMessage::PARAM_VALUE(p) = &inb.msg {
                    if name_of(p) == name {
                        return Ok(ParamValue::from_wire(p));
                    }
                }
            }
        }
        Err(ParamError::Timeout {
            name: name.to_string(),
            attempts: cfg.param_retries + 1,
        })
    }

    /// Sets one parameter; done when the vehicle echoes PARAM_VALUE with the new value.
    pub async fn param_set(&self, name: &str, value: ParamValue) -> Result<(), ParamError> {
        let id = param_id(name)?;
        let cfg = self.cfg().clone();
        let mut txn = self.txn().await;
        let (v, t) = value.to_wire();
        let msg = MavMessage::PARAM_SET(PARAM_SET_DATA {
            param_value: v,
            target_system: self.sysid(),
            target_component: 1,
            param_id: id,
            param_type: t,
        });
        for _ in 0..=cfg.param_retries {
            txn.send(msg.clone());
            let deadline = Instant::now() + cfg.param_timeout;
            while let Some(inb) = txn.recv_until(deadline).await {
                if let MavMessage::PARAM_VALUE(p) = &inb.msg {
                    if name_of(p) == name {
                        let got = ParamValue::from_wire(p);
                        if got.as_f64() == value.as_f64() {
                            return Ok(());
                        }
                        return Err(ParamError::NotSet {
                            name: name.to_string(),
                            wanted: value,
                            got,
                        });
                    }
                }
            }
        }
        Err(ParamError::Timeout {
            name: name.to_string(),
            attempts: cfg.param_retries + 1,
        })
    }

    /// Reads every parameter: PARAM_REQUEST_LIST, then PARAM_REQUEST_READ by index for gaps.
    pub async fn param_list(&self) -> Result<BTreeMap<String, ParamValue>, ParamError> {
        let cfg = self.cfg().clone();
        let mut txn = self.txn().await;
        let (sys, comp) = (self.sysid(), 1);
        txn.send(MavMessage::PARAM_REQUEST_LIST(PARAM_REQUEST_LIST_DATA {
            target_system: sys,
            target_component: comp,
        }));
        let mut count: Option<usize> = None;
        let mut got: BTreeMap<u16, (String, ParamValue)> = BTreeMap::new();
        let mut rounds = 0;
        let mut fewest_missing: Option<usize> = None;
        // The stream is over once no PARAM_VALUE has come for one timeout (other
        // telemetry keeps flowing meanwhile and does not count).
        let mut deadline = Instant::now() + cfg.param_timeout;
        loop {
            match txn.recv_until(deadline).await {
                Some(inb) => {
                    if let MavMessage::PARAM_VALUE(p) = &inb.msg {
                        deadline = Instant::now() + cfg.param_timeout;
                        count.get_or_insert(p.param_count as usize);
                        if p.param_index != u16::MAX {
                            got.insert(p.param_index, (name_of(p), ParamValue::from_wire(p)));
                        }
                        if count == Some(got.len()) {
                            break;
                        }
                    }
                }
                None => {
                    deadline = Instant::now() + cfg.param_timeout;
                    let Some(n) = count else {
                        rounds += 1;
                        if rounds > cfg.param_retries {
                            return Err(ParamError::Timeout {
                                name: "(list)".into(),
                                attempts: rounds,
                            });
                        }
                        txn.send(MavMessage::PARAM_REQUEST_LIST(PARAM_REQUEST_LIST_DATA {
                            target_system: sys,
                            target_component: comp,
                        }));
                        continue;
                    };
                    let missing: Vec<u16> =
                        (0..n as u16).filter(|i| !got.contains_key(i)).collect();
                    // Only rounds that brought nothing count: on a lossy link each round
                    // fills most gaps, and a 900-parameter list may need many.
                    if fewest_missing.is_some_and(|m| missing.len() < m) {
                        rounds = 0;
                    }
                    fewest_missing = Some(missing.len());
                    rounds += 1;
                    if rounds > cfg.param_retries {
                        return Err(ParamError::Incomplete {
                            missing: missing.len(),
                            count: n,
                        });
                    }
                    for i in missing {
                        txn.send(MavMessage::PARAM_REQUEST_READ(PARAM_REQUEST_READ_DATA {
                            param_index: i as i16,
                            target_system: sys,
                            target_component: comp,
                            param_id: CharArray::new([0; 16]),
                        }));
                    }
                }
            }
        }
        Ok(got.into_values().collect())
    }
}
