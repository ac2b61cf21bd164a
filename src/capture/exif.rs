//! GPS EXIF tags for a stored JPEG, so any photo tool places the image on a map: an
//! APP1 `Exif` segment (built with kamadak-exif's writer) inserted after SOI, replacing
//! any EXIF segment the camera wrote.

use std::io::Cursor;

use exif::{Field, In, Rational, Tag, Value};

#[derive(Debug, thiserror::Error)]
pub enum ExifError {
    #[error("not a JPEG (no SOI marker)")]
    NotJpeg,
    #[error("the JPEG's segments are cut short at byte {0}")]
    Truncated(usize),
    #[error("position is not a number")]
    BadPosition,
    #[error("EXIF encoding failed: {0}")]
    Encode(String),
}

fn dms(deg: f64) -> Vec<Rational> {
    let a = deg.abs();
    let d = a.floor();
    let m = ((a - d) * 60.0).floor();
    let s = ((a - d) * 60.0 - m) * 60.0;
    vec![
        Rational {
            num: d as u32,
            denom: 1,
        },
        Rational {
            num: m as u32,
            denom: 1,
        },
        Rational {
            num: (s * 10_000.0).round() as u32,
            denom: 10_000,
        },
    ]
}

/// The TIFF bytes of a GPS IFD for (lat, lon) degrees and altitude metres AMSL.
fn gps_tiff(lat: f64, lon: f64, alt_msl: f64) -> Result<Vec<u8>, ExifError> {
    let ascii = |s: &str| Value::Ascii(vec![s.as_bytes().to_vec()]);
    let field = |tag, value| Field {
        tag,
        ifd_num: In::PRIMARY,
        value,
    };
    let fields = [
        field(Tag::GPSVersionID, Value::Byte(vec![2, 3, 0, 0])),
        field(
            Tag::GPSLatitudeRef,
            ascii(if lat >= 0.0 { "N" } else { "S" }),
        ),
        field(Tag::GPSLatitude, Value::Rational(dms(lat))),
        field(
            Tag::GPSLongitudeRef,
            ascii(if lon >= 0.0 { "E" } else { "W" }),
        ),
        field(Tag::GPSLongitude, Value::Rational(dms(lon))),
        field(
            Tag::GPSAltitudeRef,
            Value::Byte(vec![u8::from(alt_msl < 0.0)]),
        ),
        field(
            Tag::GPSAltitude,
            Value::Rational(vec![Rational {
                num: (alt_msl.abs() * 100.0).round() as u32,
                denom: 100,
            }]),
        ),
        field(Tag::GPSMapDatum, ascii("WGS-84")),
    ];
    let mut w = exif::experimental::Writer::new();
    for f in &fields {
        w.push_field(f);
    }
    let mut out = Cursor::new(Vec::new());
    w.write(&mut out, false)
        .map_err(|e| ExifError::Encode(e.to_string()))?;
    Ok(out.into_inner())
}

/// The JPEG with a GPS EXIF segment for (lat, lon, alt_msl); other segments untouched.
pub fn with_gps(jpeg: &[u8], lat: f64, lon: f64, alt_msl: f64) -> Result<Vec<u8>, ExifError> {
    if !(lat.is_finite() && lon.is_finite() && alt_msl.is_finite()) {
        return Err(ExifError::BadPosition);
    }
    if jpeg.len() < 4 || jpeg[0] != 0xFF || jpeg[1] != 0xD8 {
        return Err(ExifError::NotJpeg);
    }
    let tiff = gps_tiff(lat, lon, alt_msl)?;
    let mut app1 = Vec::with_capacity(tiff.len() + 10);
    app1.extend_from_slice(&[0xFF, 0xE1]);
    app1.extend_from_slice(&((tiff.len() + 8) as u16).to_be_bytes());
    app1.extend_from_slice(b"Exif\0\0");
    app1.extend_from_slice(&tiff);
    // Walk the header segments up to the first that is not APPn, dropping an old EXIF.
    let mut out = vec![0xFF, 0xD8];
    let mut pos = 2;
    let mut inserted = false;
    while pos + 4 <= jpeg.len() && jpeg[pos] == 0xFF {
        let marker = jpeg[pos + 1];
        if !(0xE0..=0xEF).contains(&marker) {
            break;
        }
        let len = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
        let end = pos + 2 + len;
        if len < 2 || end > jpeg.len() {
            return Err(ExifError::Truncated(pos));
        }
        let is_exif = marker == 0xE1 && jpeg[pos + 4..end].starts_with(b"Exif\0\0");
        if marker == 0xE0 || !is_exif {
            out.extend_from_slice(&jpeg[pos..end]);
        }
        // EXIF goes right after JFIF's APP0 when there is one, else first.
        if marker == 0xE0 && !inserted {
            out.extend_from_slice(&app1);
            inserted = true;
        }
        pos = end;
    }
    if !inserted {
        out.splice(2..2, app1);
    }
    out.extend_from_slice(&jpeg[pos..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny valid JPEG: SOI, APP0 JFIF, then the rest as an opaque tail.
    fn fake_jpeg() -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
        j.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        j.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x02, 0xFF, 0xD9]);
        j
    }

    #[test]
    fn gps_tags_read_back_with_an_exif_reader() {
        let j = with_gps(&fake_jpeg(), 36.5612345, -103.6798765, 1862.4).unwrap();
        let exif = exif::Reader::new()
            .read_from_container(&mut Cursor::new(&j))
            .unwrap();
        let get = |t| exif.get_field(t, In::PRIMARY).unwrap().clone();
        let deg = |f: Field| match f.value {
            Value::Rational(v) => v[0].to_f64() + v[1].to_f64() / 60.0 + v[2].to_f64() / 3600.0,
            other => panic!("{other:?}"),
        };
        assert!((deg(get(Tag::GPSLatitude)) - 36.5612345).abs() < 1e-7);
        assert!((deg(get(Tag::GPSLongitude)) - 103.6798765).abs() < 1e-7);
        assert_eq!(get(Tag::GPSLongitudeRef).display_value().to_string(), "W");
        // The image data after the header is untouched, and a second tagging replaces the first.
        assert!(j.ends_with(&[0xFF, 0xDB, 0x00, 0x02, 0xFF, 0xD9]));
        let again = with_gps(&j, 1.0, 2.0, 3.0).unwrap();
        assert_eq!(again.len(), j.len());
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(matches!(
            with_gps(b"GIF89a", 1.0, 1.0, 1.0),
            Err(ExifError::NotJpeg)
        ));
        assert!(matches!(
            with_gps(&fake_jpeg(), f64::NAN, 1.0, 1.0),
            Err(ExifError::BadPosition)
        ));
        let mut cut = fake_jpeg();
        cut[5] = 0x40; // APP0 claims more bytes than there are
        assert!(matches!(
            with_gps(&cut, 1.0, 1.0, 1.0),
            Err(ExifError::Truncated(2))
        ));
    }
}
