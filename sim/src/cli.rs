//! Command-line options shared by `gridpatrol-sim` and `gridpatrol sim`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::world::World;
use crate::{Sim, SimConfig, PX4_SITL_API_PORT_BASE, PX4_SITL_API_REMOTE_BASE};

/// Run a simulated PX4 fleet on PX4 SITL's ports.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Number of vehicles (system ids 1..=N; GCS link from 18570+i, API link from 14580+i).
    #[arg(long, default_value_t = 1)]
    pub vehicles: usize,
    /// Where vehicles send their GCS link.
    #[arg(long, default_value = "127.0.0.1:14550")]
    pub gcs: SocketAddr,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Home of vehicle 1 as LAT,LON,ALT (degrees, metres AMSL).
    #[arg(long, value_parser = parse_home, default_value = "36.56,103.68,1800")]
    pub home: (f64, f64, f64),
    /// A world file (sim/worlds/*.json) for the cameras to photograph.
    #[arg(long)]
    pub world: Option<PathBuf>,
    /// Where photos and ground truth go.
    #[arg(long)]
    pub image_dir: Option<PathBuf>,
    /// Camera mount pitch in degrees (-90 looks straight down).
    #[arg(long, default_value_t = -90.0, allow_hyphen_values = true)]
    pub gimbal_pitch: f64,
    /// Standard deviation of the GPS bias in metres (white noise is a quarter of it).
    #[arg(long, default_value_t = 1.2)]
    pub gps_bias: f64,
    /// Standard deviation of the attitude reported with each photo, degrees.
    #[arg(long, default_value_t = 0.5)]
    pub attitude_noise: f64,
    /// Publish onboard detections beside each photo (`NNNNNN.jpg.json`), as a companion
    /// computer would.
    #[arg(long)]
    pub companion_detections: bool,
    /// Serve photos by MAVLink FTP on the camera component (`mftp://` URLs) instead of HTTP.
    #[arg(long)]
    pub mftp: bool,
    /// The dock charges (or swaps) a landed vehicle's battery at this many percent per
    /// simulated minute (DJI Dock 2 charges 20 to 90 % in 32 min: about 2.2).
    #[arg(long, default_value_t = 2.2)]
    pub dock_charge: f64,
    /// Instead of simulating vehicles, be the camera of real PX4 SITL instance N (repeat
    /// for several): follow its telemetry on its payload link (UDP 14030+N) and photograph
    /// --world when its mission commands the camera.
    #[arg(long = "attach-px4", value_name = "N")]
    pub attach_px4: Vec<u8>,
    /// Wind towards north and east in m/s, as N,E.
    #[arg(long, value_parser = parse_pair, default_value = "0,0", allow_hyphen_values = true)]
    pub wind: (f64, f64),
}

fn parse_pair(s: &str) -> Result<(f64, f64), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("{s:?} is not N,E"))?;
    let p = |x: &str| x.trim().parse::<f64>().map_err(|e| format!("{x:?}: {e}"));
    Ok((p(a)?, p(b)?))
}

fn parse_home(s: &str) -> Result<(f64, f64, f64), String> {
    let v: Vec<f64> = s
        .split(',')
        .map(|x| x.trim().parse::<f64>().map_err(|e| format!("{x:?}: {e}")))
        .collect::<Result<_, _>>()?;
    match v[..] {
        [lat, lon, alt] if lat.abs() <= 90.0 && lon.abs() <= 180.0 => Ok((lat, lon, alt)),
        _ => Err(format!(
            "{s:?} is not LAT,LON,ALT with a valid latitude and longitude"
        )),
    }
}

/// Generate a world of issues.
#[derive(clap::Args, Debug, Clone)]
pub struct WorldArgs {
    /// Grid cells (GeoJSON polygons) to place issues in.
    #[arg(long)]
    pub grids: Option<PathBuf>,
    /// Without --grids: a square of this half-size in metres around --home.
    #[arg(long, default_value_t = 500.0)]
    pub half: f64,
    #[arg(long, value_parser = parse_home, default_value = "36.56,103.68,1800")]
    pub home: (f64, f64, f64),
    /// Number of issues.
    #[arg(long, default_value_t = 60)]
    pub issues: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output file.
    #[arg(long, short = 'o')]
    pub out: PathBuf,
}

pub async fn run(a: RunArgs) -> anyhow::Result<()> {
    let world = match &a.world {
        Some(p) => Some(Arc::new(World::load(p)?)),
        None => None,
    };
    if !a.attach_px4.is_empty() {
        let (Some(world), Some(dir)) = (world, a.image_dir.clone()) else {
            anyhow::bail!("--attach-px4 needs --world (what to photograph) and --image-dir");
        };
        let cameras = attach_px4(
            &a.attach_px4,
            world,
            dir,
            crate::camera::Camera {
                gimbal_pitch_deg: a.gimbal_pitch,
                ..Default::default()
            },
        )
        .await?;
        for (i, t) in a.attach_px4.iter().zip(&cameras) {
            println!(
                "camera of PX4 SITL instance {i} on UDP {}; photos served from {}",
                crate::px4_camera::PX4_PAYLOAD_REMOTE_BASE + u16::from(*i),
                t
            );
        }
        tokio::signal::ctrl_c().await?;
        return Ok(());
    }
    let sim = Sim::start(SimConfig {
        vehicles: a.vehicles,
        gcs: a.gcs,
        speed: a.speed,
        seed: a.seed,
        home: a.home,
        api_link: Some((PX4_SITL_API_PORT_BASE, PX4_SITL_API_REMOTE_BASE)),
        world,
        image_dir: a.image_dir.clone(),
        camera: crate::camera::Camera {
            gimbal_pitch_deg: a.gimbal_pitch,
            ..Default::default()
        },
        gps_noise: crate::vehicle::GpsNoise {
            bias_sigma_m: a.gps_bias,
            white_sigma_m: a.gps_bias / 4.0,
            ..Default::default()
        },
        attitude_noise_deg: a.attitude_noise,
        companion_detections: a.companion_detections,
        mftp_urls: a.mftp,
        wind: a.wind,
        dock_charge_pct_per_min: a.dock_charge,
        ..SimConfig::default()
    })
    .await?;
    for v in sim.vehicles() {
        println!(
            "vehicle {}: GCS link {} -> {}, API link {:?}",
            v.sysid, v.local_addr, a.gcs, v.api_addr
        );
    }
    if let Some(dir) = sim.image_dir() {
        println!("photos and ground truth in {}", dir.display());
    }
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// Starts a camera for each PX4 SITL instance in `instances`, photographing `world` into
/// `dir` (one photo service for all, on 127.0.0.1); returns each camera's photo URL base.
pub async fn attach_px4(
    instances: &[u8],
    world: Arc<World>,
    dir: PathBuf,
    camera: crate::camera::Camera,
) -> anyhow::Result<Vec<String>> {
    let photos = crate::photo::PhotoService::start(
        camera,
        world,
        dir,
        ([127, 0, 0, 1], 0).into(),
        false,
        false,
    )
    .await?;
    let mut out = Vec::new();
    for &i in instances {
        let cam = crate::px4_camera::Px4Camera::bind(i, photos.clone())
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "the camera of PX4 instance {i} cannot listen on UDP {}: {e}",
                    crate::px4_camera::PX4_PAYLOAD_REMOTE_BASE + u16::from(i)
                )
            })?;
        tokio::spawn(cam.run());
        out.push(photos.base_url.clone());
    }
    Ok(out)
}

pub fn world(a: WorldArgs) -> anyhow::Result<()> {
    let polygons = match &a.grids {
        Some(p) => World::polygons_from_geojson(p)?,
        None => vec![World::square(a.home.0, a.home.1, a.half)],
    };
    let w = World::generate(&polygons, a.issues, a.seed, a.home.2)?;
    w.save(&a.out)?;
    println!(
        "{} issues in {} polygon(s) written to {}",
        w.objects.len(),
        polygons.len(),
        a.out.display()
    );
    Ok(())
}
