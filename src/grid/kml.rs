//! KML import: each Placemark with a Polygon (or a MultiGeometry of Polygons) becomes a
//! GeoJSON feature, so KML goes through the same validation as GeoJSON. Boundaries often
//! come from Google Earth or GIS exports this way.

use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::{json, Value};

use super::GridError;

#[derive(Default)]
struct Placemark {
    name: String,
    /// Polygons, each a list of rings of [lon, lat].
    polygons: Vec<Vec<Vec<Value>>>,
    data: serde_json::Map<String, Value>,
}

/// Converts KML text into a GeoJSON FeatureCollection.
pub fn kml_to_geojson(text: &str) -> Result<Value, GridError> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    let mut placemarks: Vec<Placemark> = Vec::new();
    let mut current: Option<Placemark> = None;
    let mut data_name: Option<String> = None;
    loop {
        let ev = reader.read_event().map_err(|e| {
            GridError::Parse(format!("KML at byte {}: {e}", reader.buffer_position()))
        })?;
        match ev {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).to_string();
                match name.as_str() {
                    "Placemark" => current = Some(Placemark::default()),
                    "Polygon" => {
                        if let Some(p) = current.as_mut() {
                            p.polygons.push(Vec::new());
                        }
                    }
                    "Data" | "SimpleData" => {
                        data_name = e
                            .attributes()
                            .flatten()
                            .find(|a| a.key.local_name().as_ref() == b"name")
                            .map(|a| String::from_utf8_lossy(&a.value).to_string());
                    }
                    _ => {}
                }
                path.push(name);
            }
            Event::End(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).to_string();
                path.pop();
                if name == "Placemark" {
                    if let Some(p) = current.take() {
                        placemarks.push(p);
                    }
                }
            }
            Event::Text(t) => {
                let text = t
                    .decode()
                    .map_err(|e| GridError::Parse(format!("KML text: {e}")))?
                    .to_string();
                let Some(p) = current.as_mut() else { continue };
                let parent = path.last().map(String::as_str).unwrap_or("");
                match parent {
                    "name" if path.iter().rev().nth(1).map(String::as_str) == Some("Placemark") => {
                        p.name = text
                    }
                    "coordinates" => {
                        let ring = parse_coordinates(&text)?;
                        let Some(poly) = p.polygons.last_mut() else {
                            continue; // a Point or LineString: not a cell
                        };
                        // outerBoundaryIs comes first, innerBoundaryIs are holes: order is kept.
                        poly.push(ring);
                    }
                    "value" | "SimpleData" => {
                        if let Some(k) = data_name.take() {
                            p.data.insert(k, json!(text));
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut features = Vec::new();
    for (i, p) in placemarks.into_iter().enumerate() {
        let many = p.polygons.len() > 1;
        for (k, rings) in p.polygons.into_iter().enumerate() {
            let mut props = p.data.clone();
            let base = if p.name.is_empty() {
                format!("kml-{}", i + 1)
            } else {
                p.name.clone()
            };
            let id = if many {
                format!("{base}-{}", k + 1)
            } else {
                base.clone()
            };
            props.entry("grid_id").or_insert(json!(id));
            props.entry("name").or_insert(json!(base));
            features.push(json!({"type": "Feature", "properties": props, "geometry": {"type": "Polygon", "coordinates": rings}}));
        }
    }
    Ok(json!({"type": "FeatureCollection", "features": features}))
}

fn parse_coordinates(text: &str) -> Result<Vec<Value>, GridError> {
    text.split_whitespace()
        .map(|tuple| {
            let mut it = tuple.split(',').map(str::parse::<f64>);
            match (it.next(), it.next()) {
                (Some(Ok(lon)), Some(Ok(lat))) => Ok(json!([lon, lat])),
                _ => Err(GridError::Parse(format!(
                    "KML coordinate {tuple:?} is not lon,lat[,alt]"
                ))),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::{Datum, GridMap};

    const KML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document>
 <Placemark><name>WQ-A</name>
  <ExtendedData><Data name="grid_worker"><value>王伟</value></Data></ExtendedData>
  <Polygon><outerBoundaryIs><LinearRing><coordinates>
   103.680,36.560,0 103.682,36.560,0 103.682,36.562,0 103.680,36.562,0 103.680,36.560,0
  </coordinates></LinearRing></outerBoundaryIs>
  <innerBoundaryIs><LinearRing><coordinates>
   103.6805,36.5605 103.6805,36.5615 103.6815,36.5615 103.6815,36.5605 103.6805,36.5605
  </coordinates></LinearRing></innerBoundaryIs></Polygon></Placemark>
 <Placemark><name>WQ-B</name><MultiGeometry>
  <Polygon><outerBoundaryIs><LinearRing><coordinates>103.683,36.560 103.684,36.560 103.684,36.561 103.683,36.560</coordinates></LinearRing></outerBoundaryIs></Polygon>
  <Polygon><outerBoundaryIs><LinearRing><coordinates>103.685,36.560 103.686,36.560 103.686,36.561 103.685,36.560</coordinates></LinearRing></outerBoundaryIs></Polygon>
 </MultiGeometry></Placemark>
 <Placemark><name>a pin</name><Point><coordinates>103.68,36.56</coordinates></Point></Placemark>
</Document></kml>"#;

    #[test]
    fn polygons_holes_multigeometry_and_extended_data() {
        let gj = kml_to_geojson(KML).unwrap();
        let map = GridMap::from_geojson(&gj.to_string(), Datum::Wgs84).unwrap();
        let ids: Vec<_> = map.cells.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["WQ-A", "WQ-B-1", "WQ-B-2"]);
        assert_eq!(map.cells[0].grid_worker, "王伟");
        assert_eq!(map.cells[0].polygon.interiors().len(), 1);
        assert!(map.cell_at(36.561, 103.681).is_none(), "inside the hole");
        assert!(map.cell_at(36.5602, 103.6802).is_some());
    }

    #[test]
    fn broken_kml_is_an_error() {
        assert!(kml_to_geojson(
            "<kml><Placemark><Polygon><coordinates>x,y</coordinates></Polygon></Placemark></kml>"
        )
        .is_err());
        assert!(kml_to_geojson("<kml><Placemark></Document>").is_err());
    }
}
