//! Projections named by EPSG code or described by a CF `grid_mapping` variable, and the CF
//! attributes that describe a projection in turn.

use super::{
    msfn, web_mercator, Ellipsoid, LambertParams, MercatorParams, ObliqueStereo, PolarStereo,
    Projection, RotatedParams,
};
use crate::operators::kernels::regrid::RegridError;

/// A CF attribute value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CfValue {
    /// A numeric attribute.
    Number(f64),
    /// A numeric list attribute (two standard parallels).
    Numbers(Vec<f64>),
    /// A text attribute.
    Text(String),
}

/// The EPSG codes [`Projection::from_epsg`] knows.
const KNOWN_EPSG: [u32; 5] = [4326, 3031, 3413, 3857, 3995];

impl Projection {
    /// A projection from an EPSG code, `"EPSG:3031"` (Antarctic polar stereographic, lat_ts −71,
    /// WGS84), `"EPSG:3413"` (north, lat_ts 70, lon_0 −45), `"EPSG:3995"` (Arctic, lat_ts 71),
    /// `"EPSG:3857"` (spherical Web Mercator) or `"EPSG:4326"` (lon/lat).
    ///
    /// # Errors
    /// [`RegridError::Projection`] for another code or text that is not `EPSG:<number>`.
    pub(crate) fn from_epsg(code: &str) -> Result<Projection, RegridError> {
        let number = code
            .trim()
            .split_once(':')
            .filter(|(authority, _)| authority.eq_ignore_ascii_case("epsg"))
            .and_then(|(_, n)| n.trim().parse::<u32>().ok())
            .ok_or_else(|| RegridError::Projection(format!("{code:?} is not an EPSG:<code>")))?;
        let polar = |south, lat_ts, lon_0| {
            Projection::PolarStereographic(PolarStereo::new(
                Ellipsoid::wgs84(),
                south,
                Some(lat_ts),
                1.0,
                lon_0,
                0.0,
                0.0,
            ))
        };
        match number {
            4326 => Ok(Projection::LonLat),
            3031 => Ok(polar(true, -71.0, 0.0)),
            3413 => Ok(polar(false, 70.0, -45.0)),
            3995 => Ok(polar(false, 71.0, 0.0)),
            3857 => Ok(Projection::WebMercator),
            _ => Err(RegridError::Projection(format!(
                "EPSG:{number} is not supported (supported: {})",
                KNOWN_EPSG.map(|c| format!("EPSG:{c}")).join(", ")
            ))),
        }
    }

    /// A projection from a CF grid_mapping variable: its `grid_mapping_name` and its numeric
    /// attributes (`attrs(name)` gives an attribute's values, a list for `standard_parallel`).
    /// The earth is `earth_radius`, or `semi_major_axis` with `inverse_flattening` or
    /// `semi_minor_axis` (a sphere with `semi_major_axis` alone), or WGS84 when none is given.
    ///
    /// # Errors
    /// [`RegridError::Projection`] for another grid_mapping_name or missing/invalid parameters.
    pub(crate) fn from_cf(
        grid_mapping_name: &str,
        attrs: &dyn Fn(&str) -> Option<Vec<f64>>,
    ) -> Result<Projection, RegridError> {
        let one = |name: &str| {
            attrs(name)
                .and_then(|v| v.first().copied())
                .filter(|v| v.is_finite())
        };
        let or = |name: &str, default: f64| one(name).unwrap_or(default);
        let need = |name: &str| {
            one(name).ok_or_else(|| {
                RegridError::Projection(format!("{grid_mapping_name}: attribute {name} missing"))
            })
        };
        let ellipsoid = cf_ellipsoid(&one)?;
        let (fe, fnn) = (or("false_easting", 0.0), or("false_northing", 0.0));
        let standard_parallels = attrs("standard_parallel")
            .unwrap_or_default()
            .into_iter()
            .filter(|v| v.is_finite())
            .collect::<Vec<_>>();
        let projection = match grid_mapping_name.trim() {
            "latitude_longitude" => Projection::LonLat,
            "polar_stereographic" => {
                let lon_0 = one("straight_vertical_longitude_from_pole")
                    .or_else(|| one("longitude_of_projection_origin"))
                    .unwrap_or(0.0);
                let lat_ts = standard_parallels.first().copied();
                let origin = one("latitude_of_projection_origin");
                let south = match (origin, lat_ts) {
                    (Some(o), _) if (o.abs() - 90.0).abs() < 1e-9 => o < 0.0,
                    (None, Some(ts)) => ts < 0.0,
                    _ => {
                        return Err(RegridError::Projection(
                            "polar_stereographic: latitude_of_projection_origin must be ±90"
                                .to_owned(),
                        ))
                    }
                };
                let k0 = or("scale_factor_at_projection_origin", 1.0);
                Projection::PolarStereographic(PolarStereo::new(
                    ellipsoid, south, lat_ts, k0, lon_0, fe, fnn,
                ))
            }
            "stereographic" => {
                let lat_0 = need("latitude_of_projection_origin")?;
                let lon_0 = or("longitude_of_projection_origin", 0.0);
                let k0 = or("scale_factor_at_projection_origin", 1.0);
                if (lat_0.abs() - 90.0).abs() < 1e-9 {
                    Projection::PolarStereographic(PolarStereo::new(
                        ellipsoid,
                        lat_0 < 0.0,
                        None,
                        k0,
                        lon_0,
                        fe,
                        fnn,
                    ))
                } else {
                    Projection::Stereographic(ObliqueStereo::new(
                        ellipsoid, lon_0, lat_0, k0, fe, fnn,
                    ))
                }
            }
            "mercator" => {
                let lat_ts = standard_parallels.first().copied();
                let k0 = match lat_ts {
                    Some(ts) => msfn(ts.to_radians(), ellipsoid.e),
                    None => or("scale_factor_at_projection_origin", 1.0),
                };
                let params = MercatorParams {
                    ellipsoid,
                    lon_0: or("longitude_of_projection_origin", 0.0),
                    lat_ts,
                    k0,
                    false_easting: fe,
                    false_northing: fnn,
                };
                if (MercatorParams {
                    lat_ts: None,
                    ..params
                }) == web_mercator()
                {
                    Projection::WebMercator
                } else {
                    Projection::Mercator(params)
                }
            }
            "lambert_conformal_conic" => {
                let lat_1 = *standard_parallels.first().ok_or_else(|| {
                    RegridError::Projection(
                        "lambert_conformal_conic: attribute standard_parallel missing".to_owned(),
                    )
                })?;
                let lat_2 = standard_parallels.get(1).copied().unwrap_or(lat_1);
                Projection::LambertConformal(LambertParams::new(
                    ellipsoid,
                    or("longitude_of_central_meridian", 0.0),
                    or("latitude_of_projection_origin", lat_1),
                    lat_1,
                    lat_2,
                    fe,
                    fnn,
                )?)
            }
            "rotated_latitude_longitude" => Projection::RotatedPole(RotatedParams {
                pole_lat: need("grid_north_pole_latitude")?,
                pole_lon: need("grid_north_pole_longitude")?,
                north_pole_grid_longitude: or("north_pole_grid_longitude", 0.0),
            }),
            other => {
                return Err(RegridError::Projection(format!(
                    "grid_mapping_name {other:?} is not supported"
                )))
            }
        };
        Ok(projection)
    }

    /// The CF grid_mapping attributes describing this projection (for a projected target).
    pub(crate) fn cf_attributes(&self) -> Vec<(String, CfValue)> {
        let name = match self {
            Projection::LonLat => "latitude_longitude",
            Projection::PolarStereographic(_) => "polar_stereographic",
            Projection::WebMercator | Projection::Mercator(_) => "mercator",
            Projection::LambertConformal(_) => "lambert_conformal_conic",
            Projection::RotatedPole(_) => "rotated_latitude_longitude",
            Projection::Stereographic(_) => "stereographic",
        };
        let mut out = vec![(
            "grid_mapping_name".to_owned(),
            CfValue::Text(name.to_owned()),
        )];
        let mut nums: Vec<(&str, f64)> = Vec::new();
        let offsets = |nums: &mut Vec<(&str, f64)>, fe: f64, fnn: f64, e: &Ellipsoid| {
            nums.push(("false_easting", fe));
            nums.push(("false_northing", fnn));
            nums.push(("semi_major_axis", e.a));
            nums.push(("inverse_flattening", e.rf));
        };
        match self {
            Projection::LonLat => {
                let e = Ellipsoid::wgs84();
                nums.push(("semi_major_axis", e.a));
                nums.push(("inverse_flattening", e.rf));
            }
            Projection::PolarStereographic(p) => {
                nums.push(("straight_vertical_longitude_from_pole", p.lon_0));
                nums.push((
                    "latitude_of_projection_origin",
                    if p.south { -90.0 } else { 90.0 },
                ));
                match p.lat_ts {
                    Some(ts) => nums.push(("standard_parallel", ts)),
                    None => nums.push(("scale_factor_at_projection_origin", p.k0)),
                }
                offsets(&mut nums, p.false_easting, p.false_northing, &p.ellipsoid);
            }
            Projection::WebMercator | Projection::Mercator(_) => {
                let p = match self {
                    Projection::Mercator(p) => *p,
                    _ => web_mercator(),
                };
                nums.push(("longitude_of_projection_origin", p.lon_0));
                match p.lat_ts {
                    Some(ts) => nums.push(("standard_parallel", ts)),
                    None => nums.push(("scale_factor_at_projection_origin", p.k0)),
                }
                offsets(&mut nums, p.false_easting, p.false_northing, &p.ellipsoid);
            }
            Projection::LambertConformal(p) => {
                let parallels = if p.lat_2 == p.lat_1 {
                    CfValue::Number(p.lat_1)
                } else {
                    CfValue::Numbers(vec![p.lat_1, p.lat_2])
                };
                out.push(("standard_parallel".to_owned(), parallels));
                nums.push(("longitude_of_central_meridian", p.lon_0));
                nums.push(("latitude_of_projection_origin", p.lat_0));
                offsets(&mut nums, p.false_easting, p.false_northing, &p.ellipsoid);
            }
            Projection::RotatedPole(p) => {
                nums.push(("grid_north_pole_latitude", p.pole_lat));
                nums.push(("grid_north_pole_longitude", p.pole_lon));
                nums.push(("north_pole_grid_longitude", p.north_pole_grid_longitude));
            }
            Projection::Stereographic(p) => {
                nums.push(("longitude_of_projection_origin", p.lon_0));
                nums.push(("latitude_of_projection_origin", p.lat_0));
                nums.push(("scale_factor_at_projection_origin", p.k0));
                offsets(&mut nums, p.false_easting, p.false_northing, &p.ellipsoid);
            }
        }
        out.extend(
            nums.into_iter()
                .map(|(k, v)| (k.to_owned(), CfValue::Number(v))),
        );
        out
    }

    /// The EPSG code of this projection when it is exactly one [`Projection::from_epsg`] knows.
    pub(crate) fn epsg(&self) -> Option<u32> {
        KNOWN_EPSG
            .into_iter()
            .find(|code| Projection::from_epsg(&format!("EPSG:{code}")).is_ok_and(|p| p == *self))
    }
}

/// The ellipsoid a CF grid mapping describes (WGS84 when it names none).
fn cf_ellipsoid(one: &dyn Fn(&str) -> Option<f64>) -> Result<Ellipsoid, RegridError> {
    let positive = |name: &str| match one(name) {
        Some(v) if v <= 0.0 => Err(RegridError::Projection(format!(
            "{name} = {v} is not positive"
        ))),
        v => Ok(v),
    };
    if let Some(r) = positive("earth_radius")? {
        return Ok(Ellipsoid::sphere(r));
    }
    let Some(a) = positive("semi_major_axis")? else {
        return Ok(Ellipsoid::wgs84());
    };
    if let Some(rf) = one("inverse_flattening") {
        return Ok(Ellipsoid::new(a, rf.max(0.0)));
    }
    match positive("semi_minor_axis")? {
        Some(b) if b < a => Ok(Ellipsoid::new(a, a / (a - b))),
        _ => Ok(Ellipsoid::sphere(a)),
    }
}
