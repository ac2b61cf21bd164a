//! Datums: WGS-84 (GPS, flight) and GCJ-02 (the offset datum of Chinese web maps).
//!
//! GCJ-02 is WGS-84 plus a published, smooth offset of a few hundred metres inside China;
//! the inverse has no closed form and is found by fixed-point iteration (under 1 cm after
//! a few steps). Outside China the two coincide.

use serde::{Deserialize, Serialize};

/// Which datum coordinates are in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Datum {
    #[default]
    Wgs84,
    Gcj02,
}

impl std::str::FromStr for Datum {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "wgs84" => Ok(Self::Wgs84),
            "gcj02" => Ok(Self::Gcj02),
            _ => Err(format!("unknown datum {s:?} (wgs84 or gcj02)")),
        }
    }
}

/// Krasovsky 1940 semi-major axis (m) and eccentricity² used by the GCJ-02 offset.
const A: f64 = 6_378_245.0;
const EE: f64 = 0.006_693_421_622_965_943;

fn outside_china(lat: f64, lon: f64) -> bool {
    !(72.004..=137.8347).contains(&lon) || !(0.8293..=55.8271).contains(&lat)
}

fn offset_lat(x: f64, y: f64) -> f64 {
    use std::f64::consts::PI;
    let mut r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    r
}

fn offset_lon(x: f64, y: f64) -> f64 {
    use std::f64::consts::PI;
    let mut r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    r
}

/// WGS-84 (lat, lon) degrees to GCJ-02 (lat, lon) degrees.
pub fn wgs84_to_gcj02(lat: f64, lon: f64) -> (f64, f64) {
    if outside_china(lat, lon) {
        return (lat, lon);
    }
    let mut dlat = offset_lat(lon - 105.0, lat - 35.0);
    let mut dlon = offset_lon(lon - 105.0, lat - 35.0);
    let rad = lat.to_radians();
    let magic = 1.0 - EE * rad.sin() * rad.sin();
    let sqrt_magic = magic.sqrt();
    dlat = (dlat * 180.0) / ((A * (1.0 - EE)) / (magic * sqrt_magic) * std::f64::consts::PI);
    dlon = (dlon * 180.0) / (A / sqrt_magic * rad.cos() * std::f64::consts::PI);
    (lat + dlat, lon + dlon)
}

/// GCJ-02 (lat, lon) degrees to WGS-84, by iterating the forward transform.
pub fn gcj02_to_wgs84(lat: f64, lon: f64) -> (f64, f64) {
    let (mut wlat, mut wlon) = (lat, lon);
    for _ in 0..10 {
        let (glat, glon) = wgs84_to_gcj02(wlat, wlon);
        let (elat, elon) = (glat - lat, glon - lon);
        wlat -= elat;
        wlon -= elon;
        if elat.abs() < 1e-10 && elon.abs() < 1e-10 {
            break;
        }
    }
    (wlat, wlon)
}

impl Datum {
    /// Converts (lat, lon) degrees in this datum to WGS-84.
    pub fn to_wgs84(self, lat: f64, lon: f64) -> (f64, f64) {
        match self {
            Self::Wgs84 => (lat, lon),
            Self::Gcj02 => gcj02_to_wgs84(lat, lon),
        }
    }

    /// Converts WGS-84 (lat, lon) degrees to this datum.
    pub fn from_wgs84(self, lat: f64, lon: f64) -> (f64, f64) {
        match self {
            Self::Wgs84 => (lat, lon),
            Self::Gcj02 => wgs84_to_gcj02(lat, lon),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn metres(a: (f64, f64), b: (f64, f64)) -> f64 {
        let dn = (a.0 - b.0) * 111_320.0;
        let de = (a.1 - b.1) * 111_320.0 * a.0.to_radians().cos();
        (dn * dn + de * de).sqrt()
    }

    #[test]
    fn the_offset_is_hundreds_of_metres_in_china_and_zero_outside() {
        let w = (36.56, 103.68);
        let g = wgs84_to_gcj02(w.0, w.1);
        let d = metres(w, g);
        assert!((100.0..1000.0).contains(&d), "{d} m");
        assert_eq!(wgs84_to_gcj02(48.85, 2.35), (48.85, 2.35));
    }

    proptest! {
        #[test]
        fn round_trip_error_is_under_half_a_metre(lat in 18.0f64..53.0, lon in 74.0f64..134.0) {
            let (glat, glon) = wgs84_to_gcj02(lat, lon);
            let back = gcj02_to_wgs84(glat, glon);
            prop_assert!(metres((lat, lon), back) < 0.5);
        }
    }
}
