//! `gridpatrol token`: API tokens for `serve` (stored hashed in the data directory).

use std::path::Path;

use anyhow::{bail, Result};
use clap::Subcommand;
use gridpatrol::api::auth::{create_token, list_tokens, revoke_token, Role};
use gridpatrol::events::{now_us, store::EventStore};
use gridpatrol::patrol::pipeline::DataDir;
use gridpatrol::store::DbSpec;

#[derive(Subcommand)]
pub enum TokenOp {
    /// Make a token; it is printed once and only its hash is kept.
    #[command(
        after_help = "Examples:\n  gridpatrol token create --role operator --holder 飞手\n  gridpatrol token create --role grid_worker --holder 赵艳 --cells WQ-24,WQ-25"
    )]
    Create {
        /// viewer, grid_worker, operator or admin.
        #[arg(long)]
        role: Role,
        /// Whose it is (written to the audit trail with every change they make).
        #[arg(long)]
        holder: String,
        /// A grid worker's cells, comma separated.
        #[arg(long, value_delimiter = ',')]
        cells: Vec<String>,
    },
    /// The tokens (never their secrets).
    #[command(after_help = "Examples:\n  gridpatrol token list")]
    List,
    /// Revoke a token by its id.
    #[command(after_help = "Examples:\n  gridpatrol token revoke 2")]
    Revoke { id: i64 },
}

pub fn token_cmd(data: &Path, db: Option<DbSpec>, op: TokenOp) -> Result<()> {
    let db = db.unwrap_or_else(|| DataDir(data.to_path_buf()).db_spec());
    let store = EventStore::connect(&db)?;
    match op {
        TokenOp::Create {
            role,
            holder,
            cells,
        } => {
            let (id, secret) = create_token(&store, &holder, role, &cells, now_us())?;
            eprintln!(
                "token {id} for {holder} ({}); keep it, it is not shown again:",
                role.as_str()
            );
            println!("{secret}");
        }
        TokenOp::List => {
            for t in list_tokens(&store)? {
                println!(
                    "{:>4}  {:<12} {:<20} {}{}",
                    t.id,
                    t.role.as_str(),
                    t.holder,
                    t.cells.join(","),
                    if t.revoked_us.is_some() {
                        "  (revoked)"
                    } else {
                        ""
                    }
                );
            }
        }
        TokenOp::Revoke { id } => {
            if !revoke_token(&store, id, now_us())? {
                bail!("no live token {id}");
            }
            println!("token {id} revoked");
        }
    }
    Ok(())
}
