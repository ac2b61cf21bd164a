use clap::{Parser, Subcommand};
use gridpatrol_sim::cli::{RunArgs, WorldArgs};

/// A simulated PX4 fleet that behaves on the wire like PX4 SITL.
#[derive(Parser)]
#[command(
    name = "gridpatrol-sim",
    version,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate a world of city issues over grid cells.
    World(WorldArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Some(Cmd::World(w)) => gridpatrol_sim::cli::world(w),
        None => gridpatrol_sim::cli::run(cli.run).await,
    }
}
