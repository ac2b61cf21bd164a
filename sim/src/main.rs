use clap::Parser;
use gridpatrol_sim::{Sim, SimConfig};

/// A simulated PX4 fleet on PX4 SITL's ports.
#[derive(Parser)]
#[command(name = "gridpatrol-sim", version)]
struct Args {
    /// Number of vehicles (system ids 1..=N, ports 18570+i).
    #[arg(long, default_value_t = 1)]
    vehicles: usize,
    /// Where vehicles send their GCS link.
    #[arg(long, default_value = "127.0.0.1:14550")]
    gcs: std::net::SocketAddr,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let sim = Sim::start(SimConfig {
        vehicles: a.vehicles,
        gcs: a.gcs,
        speed: a.speed,
        seed: a.seed,
        api_link: Some((
            gridpatrol_sim::PX4_SITL_API_PORT_BASE,
            gridpatrol_sim::PX4_SITL_API_REMOTE_BASE,
        )),
        ..SimConfig::default()
    })
    .await?;
    for v in sim.vehicles() {
        println!("vehicle {} on {} -> {}", v.sysid, v.local_addr, a.gcs);
    }
    tokio::signal::ctrl_c().await?;
    Ok(())
}
