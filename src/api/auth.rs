//! API tokens and roles. A token is 32 random bytes shown once at creation
//! (`gp_` + 64 hex digits); only its SHA-256 is stored. Roles, each with what the one
//! before it may do:
//! - `viewer`: read everything;
//! - `grid_worker`: read, but only the events of their own cells;
//! - `operator`: also start, pause and cancel runs;
//! - `admin`: also manage patrols and tokens.
//!
//! Bad tokens are rate-limited per client address.

use crate::args;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::events::store::{EventStore, StoreError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    GridWorker,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::GridWorker => "grid_worker",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may do what `needed` may: a grid worker reads as a viewer does
    /// (their events filtered) and reports and moves events in their own cells; runs and
    /// vehicles need an operator, patrols an admin.
    pub fn allows(self, needed: Role) -> bool {
        match needed {
            Role::Viewer => true,
            Role::GridWorker => self != Role::Viewer,
            Role::Operator => matches!(self, Role::Operator | Role::Admin),
            Role::Admin => self == Role::Admin,
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [Role::Viewer, Role::GridWorker, Role::Operator, Role::Admin]
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a role: viewer, grid_worker, operator or admin"))
    }
}

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Principal {
    pub token_id: i64,
    pub holder: String,
    pub role: Role,
    /// A grid worker's cells.
    pub cells: Vec<String>,
}

/// A token as listed (never its secret).
#[derive(Clone, Debug, Serialize)]
pub struct TokenInfo {
    pub id: i64,
    pub holder: String,
    pub role: Role,
    pub cells: Vec<String>,
    pub created_us: i64,
    pub revoked_us: Option<i64>,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Makes a token for `holder` with `role` (a grid worker with their `cells`); the secret
/// is returned once and never stored.
pub fn create_token(
    store: &EventStore,
    holder: &str,
    role: Role,
    cells: &[String],
    now_us: i64,
) -> Result<(i64, String), StoreError> {
    if holder.trim().is_empty() {
        return Err(StoreError::Invalid(
            "a token needs its holder's name".into(),
        ));
    }
    if role == Role::GridWorker && cells.is_empty() {
        return Err(StoreError::Invalid(
            "a grid worker's token needs their cells (--cells)".into(),
        ));
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Invalid(format!("no randomness for a token: {e}")))?;
    let secret = format!("gp_{}", hex::encode(bytes));
    let cells_json = serde_json::to_string(cells).unwrap_or_else(|_| "[]".into());
    let id = store.transaction(|tx| {
        tx.query_value::<i64>(
            "INSERT INTO tokens (hash, holder, role, cells, created_us) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            args![hash(&secret), holder, role.as_str(), cells_json, now_us],
        )
    })?;
    Ok((id, secret))
}

pub fn list_tokens(store: &EventStore) -> Result<Vec<TokenInfo>, StoreError> {
    store.read(|tx| {
        tx.query_map(
            "SELECT id, holder, role, cells, created_us, revoked_us FROM tokens ORDER BY id",
            args![],
            |r| {
                let role: String = r.get(2)?;
                let cells: String = r.get(3)?;
                Ok(TokenInfo {
                    id: r.get(0)?,
                    holder: r.get(1)?,
                    role: role.parse().unwrap_or(Role::Viewer),
                    cells: serde_json::from_str(&cells).unwrap_or_default(),
                    created_us: r.get(4)?,
                    revoked_us: r.get(5)?,
                })
            },
        )
        .map_err(StoreError::from)
    })
}

/// Revokes token `id`; false when there is no such live token.
pub fn revoke_token(store: &EventStore, id: i64, now_us: i64) -> Result<bool, StoreError> {
    store.transaction(|tx| {
        Ok(tx.execute(
            "UPDATE tokens SET revoked_us = ?2 WHERE id = ?1 AND revoked_us IS NULL",
            args![id, now_us],
        )? == 1)
    })
}

/// The live token whose secret is `token`.
pub fn verify(store: &EventStore, token: &str) -> Result<Option<Principal>, StoreError> {
    let h = hash(token);
    store.read(|tx| {
        Ok(tx.query_opt(
            "SELECT id, holder, role, cells FROM tokens WHERE hash = ?1 AND revoked_us IS NULL",
            args![h],
            |r| {
                let role: String = r.get(2)?;
                let cells: String = r.get(3)?;
                Ok(Principal {
                    token_id: r.get(0)?,
                    holder: r.get(1)?,
                    role: role.parse().unwrap_or(Role::Viewer),
                    cells: serde_json::from_str(&cells).unwrap_or_default(),
                })
            },
        )?)
    })
}

/// Failed attempts per client address: after `max` within `window`, the address is
/// refused until the window has passed since its first failure.
pub struct Throttle {
    max: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Throttle {
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (Instant, u32)>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `ip` is refused now.
    pub fn blocked(&self, ip: IpAddr) -> bool {
        let mut m = self.map();
        match m.get(&ip) {
            Some((since, _)) if since.elapsed() > self.window => {
                m.remove(&ip);
                false
            }
            Some((_, n)) => *n >= self.max,
            None => false,
        }
    }

    pub fn failed(&self, ip: IpAddr) {
        let mut m = self.map();
        let e = m.entry(ip).or_insert((Instant::now(), 0));
        if e.0.elapsed() > self.window {
            *e = (Instant::now(), 0);
        }
        e.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_nest_and_parse() {
        assert!(Role::Admin.allows(Role::Operator));
        assert!(!Role::Viewer.allows(Role::Operator));
        assert!(Role::GridWorker.allows(Role::Viewer));
        assert!(!Role::Operator.allows(Role::Admin));
        assert_eq!("grid_worker".parse::<Role>(), Ok(Role::GridWorker));
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn a_throttle_blocks_after_max_failures() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let ip: IpAddr = [127, 0, 0, 1].into();
        for _ in 0..3 {
            assert!(!t.blocked(ip));
            t.failed(ip);
        }
        assert!(t.blocked(ip));
        assert!(!t.blocked([127, 0, 0, 2].into()));
    }
}
