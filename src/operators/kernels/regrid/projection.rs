//! Coordinate reference systems of regrid targets and sources: forward (lon/lat degrees → x/y
//! metres) and inverse maps, built from an EPSG code or a CF `grid_mapping` variable.
//!
//! Closed-form formulas (Snyder, "Map Projections — A Working Manual", USGS PP 1395, and PROJ's
//! own implementations of the same formulas) rather than a projection library: the handful of
//! projections CF grids use are a few lines each, need no data files or datum machinery (every
//! grid here is on one datum; no datum shifts are applied), and stay fast enough to project
//! every corner of a 0.1° global grid. Ellipsoidal formulas throughout (the sphere is the
//! ellipsoid with eccentricity 0), matching PROJ:
//!
//! - polar stereographic, variant A (`k0`) or B (latitude of true scale), e.g. EPSG:3031/3413/3995;
//! - oblique stereographic (PROJ `stere`, conformal-latitude form);
//! - Mercator (ellipsoidal, `k0` or latitude of true scale) and spherical Web Mercator (EPSG:3857);
//! - Lambert conformal conic with one or two standard parallels;
//! - rotated pole (CF `rotated_latitude_longitude`, PROJ `ob_tran` with `o_proj=longlat`), whose
//!   "x/y" are rotated longitude/latitude in degrees.

use super::RegridError;
use std::f64::consts::{FRAC_PI_2, FRAC_PI_4, PI};

mod cf;

pub(crate) use cf::CfValue;

/// WGS84 semi-major axis (metres).
const WGS84_A: f64 = 6_378_137.0;
/// WGS84 inverse flattening.
const WGS84_RF: f64 = 298.257_223_563;

/// The figure of the earth: semi-major axis and inverse flattening (0 for a sphere).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Ellipsoid {
    /// Semi-major axis in metres.
    pub(crate) a: f64,
    /// Inverse flattening; 0 for a sphere.
    pub(crate) rf: f64,
    /// First eccentricity (derived).
    e: f64,
}

impl Ellipsoid {
    /// An ellipsoid from its semi-major axis and inverse flattening (0 = sphere).
    pub(crate) fn new(a: f64, rf: f64) -> Ellipsoid {
        let f = if rf == 0.0 { 0.0 } else { 1.0 / rf };
        Ellipsoid {
            a,
            rf,
            e: (f * (2.0 - f)).sqrt(),
        }
    }

    /// WGS84.
    pub(crate) fn wgs84() -> Ellipsoid {
        Ellipsoid::new(WGS84_A, WGS84_RF)
    }

    /// A sphere of radius `r`.
    pub(crate) fn sphere(r: f64) -> Ellipsoid {
        Ellipsoid::new(r, 0.0)
    }
}

/// Snyder's `t` (15-9): `tan(π/4 − φ/2) / ((1 − e sin φ)/(1 + e sin φ))^(e/2)`.
fn tsfn(phi: f64, e: f64) -> f64 {
    let es = e * phi.sin();
    (FRAC_PI_4 - phi / 2.0).tan() / ((1.0 - es) / (1.0 + es)).powf(e / 2.0)
}

/// Snyder's `m` (14-15): `cos φ / sqrt(1 − e² sin² φ)`.
fn msfn(phi: f64, e: f64) -> f64 {
    let es = e * phi.sin();
    phi.cos() / (1.0 - es * es).sqrt()
}

/// The latitude whose [`tsfn`] is `t` (Snyder 7-9, iterated).
fn phi_from_t(t: f64, e: f64) -> f64 {
    let mut phi = FRAC_PI_2 - 2.0 * t.atan();
    for _ in 0..20 {
        let es = e * phi.sin();
        let next = FRAC_PI_2 - 2.0 * (t * ((1.0 - es) / (1.0 + es)).powf(e / 2.0)).atan();
        let done = (next - phi).abs() < 1e-15;
        phi = next;
        if done {
            break;
        }
    }
    phi
}

/// Longitude difference in radians, wrapped to `[-π, π]`.
fn wrap_rad(d: f64) -> f64 {
    if (-PI..=PI).contains(&d) {
        d
    } else {
        d - 2.0 * PI * ((d + PI) / (2.0 * PI)).floor()
    }
}

/// Longitude in degrees wrapped to `[-180, 180]`.
pub(crate) fn wrap_lon(lon: f64) -> f64 {
    if (-180.0..=180.0).contains(&lon) {
        lon
    } else {
        lon - 360.0 * ((lon + 180.0) / 360.0).floor()
    }
}

/// A NaN pair when either value is not finite.
fn finite_or_nan((x, y): (f64, f64)) -> (f64, f64) {
    if x.is_finite() && y.is_finite() {
        (x, y)
    } else {
        (f64::NAN, f64::NAN)
    }
}

/// Polar stereographic about one pole (Snyder 21-33 … 21-41).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PolarStereo {
    /// The earth.
    pub(crate) ellipsoid: Ellipsoid,
    /// South pole aspect.
    pub(crate) south: bool,
    /// Latitude of true scale in degrees (variant B), or `None` for variant A (`k0`).
    pub(crate) lat_ts: Option<f64>,
    /// Scale factor at the pole (variant A; 1 with `lat_ts`).
    pub(crate) k0: f64,
    /// Longitude pointing "down" (north aspect) / "up" (south) from the pole, degrees.
    pub(crate) lon_0: f64,
    /// False easting (m).
    pub(crate) false_easting: f64,
    /// False northing (m).
    pub(crate) false_northing: f64,
    /// `ρ = a_k · t` (derived).
    a_k: f64,
}

impl PolarStereo {
    fn new(
        ellipsoid: Ellipsoid,
        south: bool,
        lat_ts: Option<f64>,
        k0: f64,
        lon_0: f64,
        false_easting: f64,
        false_northing: f64,
    ) -> PolarStereo {
        let e = ellipsoid.e;
        let a_k = match lat_ts {
            Some(ts) if (ts.abs() - 90.0).abs() > 1e-10 => {
                let phi_c = ts.abs().to_radians();
                ellipsoid.a * msfn(phi_c, e) / tsfn(phi_c, e)
            }
            _ => {
                let k0 = if lat_ts.is_some() { 1.0 } else { k0 };
                2.0 * ellipsoid.a * k0 / ((1.0 + e).powf(1.0 + e) * (1.0 - e).powf(1.0 - e)).sqrt()
            }
        };
        PolarStereo {
            ellipsoid,
            south,
            lat_ts,
            k0,
            lon_0,
            false_easting,
            false_northing,
            a_k,
        }
    }

    fn forward(&self, lon: f64, lat: f64) -> (f64, f64) {
        let phi = if self.south { -lat } else { lat }.to_radians();
        if phi <= -FRAC_PI_2 + 1e-12 {
            return (f64::NAN, f64::NAN);
        }
        let dl = (lon - self.lon_0).to_radians();
        let rho = self.a_k * tsfn(phi, self.ellipsoid.e);
        let (s, c) = dl.sin_cos();
        let y = if self.south { rho * c } else { -rho * c };
        finite_or_nan((self.false_easting + rho * s, self.false_northing + y))
    }

    fn inverse(&self, x: f64, y: f64) -> (f64, f64) {
        let (dx, dy) = (x - self.false_easting, y - self.false_northing);
        let t = dx.hypot(dy) / self.a_k;
        let phi = phi_from_t(t, self.ellipsoid.e).to_degrees();
        let (lat, dl) = if self.south {
            (-phi, dx.atan2(dy))
        } else {
            (phi, dx.atan2(-dy))
        };
        (wrap_lon(self.lon_0 + dl.to_degrees()), lat)
    }
}

/// Mercator, ellipsoidal (Snyder 7-6, 7-7, 7-9).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MercatorParams {
    /// The earth.
    pub(crate) ellipsoid: Ellipsoid,
    /// Central meridian, degrees.
    pub(crate) lon_0: f64,
    /// Latitude of true scale in degrees, or `None` when given by `k0`.
    pub(crate) lat_ts: Option<f64>,
    /// Scale factor on the equator.
    pub(crate) k0: f64,
    /// False easting (m).
    pub(crate) false_easting: f64,
    /// False northing (m).
    pub(crate) false_northing: f64,
}

impl MercatorParams {
    fn ak(&self) -> f64 {
        self.ellipsoid.a * self.k0
    }

    fn forward(&self, lon: f64, lat: f64) -> (f64, f64) {
        if lat.abs() >= 90.0 {
            return (f64::NAN, f64::NAN);
        }
        let x = self.ak() * wrap_rad((lon - self.lon_0).to_radians());
        let y = -self.ak() * tsfn(lat.to_radians(), self.ellipsoid.e).ln();
        finite_or_nan((self.false_easting + x, self.false_northing + y))
    }

    fn inverse(&self, x: f64, y: f64) -> (f64, f64) {
        let t = (-(y - self.false_northing) / self.ak()).exp();
        let lat = phi_from_t(t, self.ellipsoid.e).to_degrees();
        let lon = self.lon_0 + ((x - self.false_easting) / self.ak()).to_degrees();
        (wrap_lon(lon), lat)
    }
}

/// Lambert conformal conic with one or two standard parallels (Snyder 15-1 … 15-11).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LambertParams {
    /// The earth.
    pub(crate) ellipsoid: Ellipsoid,
    /// Central meridian, degrees.
    pub(crate) lon_0: f64,
    /// Latitude of the origin, degrees.
    pub(crate) lat_0: f64,
    /// Standard parallels, degrees (equal for the one-parallel form).
    pub(crate) lat_1: f64,
    /// Second standard parallel.
    pub(crate) lat_2: f64,
    /// False easting (m).
    pub(crate) false_easting: f64,
    /// False northing (m).
    pub(crate) false_northing: f64,
    /// Cone constant `n` (derived).
    n: f64,
    /// `a F` (derived).
    a_f: f64,
    /// `ρ0` (derived).
    rho0: f64,
}

impl LambertParams {
    #[allow(clippy::too_many_arguments)]
    fn new(
        ellipsoid: Ellipsoid,
        lon_0: f64,
        lat_0: f64,
        lat_1: f64,
        lat_2: f64,
        false_easting: f64,
        false_northing: f64,
    ) -> Result<LambertParams, RegridError> {
        let e = ellipsoid.e;
        let (p1, p2) = (lat_1.to_radians(), lat_2.to_radians());
        let (m1, t1) = (msfn(p1, e), tsfn(p1, e));
        let n = if (lat_1 - lat_2).abs() < 1e-10 {
            p1.sin()
        } else {
            (m1.ln() - msfn(p2, e).ln()) / (t1.ln() - tsfn(p2, e).ln())
        };
        if !n.is_finite() || n.abs() < 1e-10 || (lat_1 + lat_2).abs() < 1e-10 {
            return Err(RegridError::Projection(format!(
                "lambert_conformal_conic: standard parallels {lat_1}, {lat_2} do not define a cone"
            )));
        }
        let a_f = ellipsoid.a * m1 / (n * t1.powf(n));
        let rho0 = a_f * tsfn(lat_0.to_radians(), e).powf(n);
        Ok(LambertParams {
            ellipsoid,
            lon_0,
            lat_0,
            lat_1,
            lat_2,
            false_easting,
            false_northing,
            n,
            a_f,
            rho0,
        })
    }

    fn forward(&self, lon: f64, lat: f64) -> (f64, f64) {
        let rho = self.a_f * tsfn(lat.to_radians(), self.ellipsoid.e).powf(self.n);
        let theta = self.n * wrap_rad((lon - self.lon_0).to_radians());
        let (s, c) = theta.sin_cos();
        finite_or_nan((
            self.false_easting + rho * s,
            self.false_northing + self.rho0 - rho * c,
        ))
    }

    fn inverse(&self, x: f64, y: f64) -> (f64, f64) {
        let sign = self.n.signum();
        let dx = x - self.false_easting;
        let dy = self.rho0 - (y - self.false_northing);
        let rho = sign * dx.hypot(dy);
        let theta = (sign * dx).atan2(sign * dy);
        let lat = if rho == 0.0 {
            90.0 * sign
        } else {
            let t = (rho / self.a_f).powf(1.0 / self.n);
            phi_from_t(t, self.ellipsoid.e).to_degrees()
        };
        (wrap_lon(self.lon_0 + (theta / self.n).to_degrees()), lat)
    }
}

/// Oblique (or equatorial) stereographic on the ellipsoid, PROJ's `stere` with a `lat_0` that is
/// not a pole: the sphere of conformal latitude, scaled (Snyder 21-36 … 21-38, PROJ `stere.cpp`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ObliqueStereo {
    /// The earth.
    pub(crate) ellipsoid: Ellipsoid,
    /// Longitude of the projection centre, degrees.
    pub(crate) lon_0: f64,
    /// Latitude of the projection centre, degrees.
    pub(crate) lat_0: f64,
    /// Scale factor at the centre.
    pub(crate) k0: f64,
    /// False easting (m).
    pub(crate) false_easting: f64,
    /// False northing (m).
    pub(crate) false_northing: f64,
    /// `2 k0 m(φ0)` (derived).
    akm1: f64,
    /// `sin χ0`, `cos χ0` (derived).
    sin_x1: f64,
    cos_x1: f64,
}

/// Conformal latitude `χ` of `φ` (radians).
fn conformal_lat(phi: f64, e: f64) -> f64 {
    FRAC_PI_2 - 2.0 * tsfn(phi, e).atan()
}

impl ObliqueStereo {
    fn new(
        ellipsoid: Ellipsoid,
        lon_0: f64,
        lat_0: f64,
        k0: f64,
        false_easting: f64,
        false_northing: f64,
    ) -> ObliqueStereo {
        let phi0 = lat_0.to_radians();
        let x1 = conformal_lat(phi0, ellipsoid.e);
        let akm1 = 2.0 * k0 * msfn(phi0, ellipsoid.e);
        ObliqueStereo {
            ellipsoid,
            lon_0,
            lat_0,
            k0,
            false_easting,
            false_northing,
            akm1,
            sin_x1: x1.sin(),
            cos_x1: x1.cos(),
        }
    }

    fn forward(&self, lon: f64, lat: f64) -> (f64, f64) {
        let chi = conformal_lat(lat.to_radians(), self.ellipsoid.e);
        let (sin_x, cos_x) = chi.sin_cos();
        let (sin_l, cos_l) = (lon - self.lon_0).to_radians().sin_cos();
        let denom = self.cos_x1 * (1.0 + self.sin_x1 * sin_x + self.cos_x1 * cos_x * cos_l);
        if denom.abs() < 1e-15 {
            return (f64::NAN, f64::NAN);
        }
        let a = self.ellipsoid.a * self.akm1 / denom;
        let x = a * cos_x * sin_l;
        let y = a * (self.cos_x1 * sin_x - self.sin_x1 * cos_x * cos_l);
        finite_or_nan((self.false_easting + x, self.false_northing + y))
    }

    fn inverse(&self, x: f64, y: f64) -> (f64, f64) {
        let e = self.ellipsoid.e;
        let (x, y) = (
            (x - self.false_easting) / self.ellipsoid.a,
            (y - self.false_northing) / self.ellipsoid.a,
        );
        let rho = x.hypot(y);
        let tp = 2.0 * (rho * self.cos_x1).atan2(self.akm1);
        let (sin_c, cos_c) = tp.sin_cos();
        let chi = if rho == 0.0 {
            (cos_c * self.sin_x1).asin()
        } else {
            (cos_c * self.sin_x1 + y * sin_c * self.cos_x1 / rho).asin()
        };
        let xs = x * sin_c;
        let ys = rho * self.cos_x1 * cos_c - y * self.sin_x1 * sin_c;
        let tp = (0.5 * (FRAC_PI_2 + chi)).tan();
        let mut phi = chi;
        for _ in 0..20 {
            let es = e * phi.sin();
            let next = 2.0 * (tp * ((1.0 + es) / (1.0 - es)).powf(e / 2.0)).atan() - FRAC_PI_2;
            let done = (next - phi).abs() < 1e-15;
            phi = next;
            if done {
                break;
            }
        }
        let lam = if xs == 0.0 && ys == 0.0 {
            0.0
        } else {
            xs.atan2(ys)
        };
        (wrap_lon(self.lon_0 + lam.to_degrees()), phi.to_degrees())
    }
}

/// Rotated pole: PROJ `ob_tran` (`o_proj=longlat`, `o_lat_p` = grid north pole latitude,
/// `o_lon_p` = north pole grid longitude, `lon_0` = 180° + grid north pole longitude).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RotatedParams {
    /// `grid_north_pole_latitude`, degrees.
    pub(crate) pole_lat: f64,
    /// `grid_north_pole_longitude`, degrees.
    pub(crate) pole_lon: f64,
    /// `north_pole_grid_longitude`, degrees.
    pub(crate) north_pole_grid_longitude: f64,
}

impl RotatedParams {
    fn forward(&self, lon: f64, lat: f64) -> (f64, f64) {
        let (sp, cp) = self.pole_lat.to_radians().sin_cos();
        let lam = (lon - 180.0 - self.pole_lon).to_radians();
        let (sin_phi, cos_phi) = lat.to_radians().sin_cos();
        let (sin_l, cos_l) = lam.sin_cos();
        let rlon = (cos_phi * sin_l).atan2(sp * cos_phi * cos_l + cp * sin_phi);
        let rlat = (sp * sin_phi - cp * cos_phi * cos_l)
            .clamp(-1.0, 1.0)
            .asin();
        (
            wrap_lon(rlon.to_degrees() + self.north_pole_grid_longitude),
            rlat.to_degrees(),
        )
    }

    fn inverse(&self, x: f64, y: f64) -> (f64, f64) {
        let (sp, cp) = self.pole_lat.to_radians().sin_cos();
        let lam = (x - self.north_pole_grid_longitude).to_radians();
        let (sin_phi, cos_phi) = y.to_radians().sin_cos();
        let (sin_l, cos_l) = lam.sin_cos();
        let lat = (sp * sin_phi + cp * cos_phi * cos_l)
            .clamp(-1.0, 1.0)
            .asin();
        let lon = (cos_phi * sin_l).atan2(sp * cos_phi * cos_l - cp * sin_phi);
        (
            wrap_lon(lon.to_degrees() + 180.0 + self.pole_lon),
            lat.to_degrees(),
        )
    }
}

/// A coordinate reference system of a grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Projection {
    /// Geographic longitude/latitude in degrees ("x" = longitude, "y" = latitude).
    LonLat,
    /// Polar stereographic.
    PolarStereographic(PolarStereo),
    /// Spherical Web Mercator (EPSG:3857, radius 6378137 m).
    WebMercator,
    /// Ellipsoidal Mercator.
    Mercator(MercatorParams),
    /// Lambert conformal conic.
    LambertConformal(LambertParams),
    /// Rotated pole; "x/y" are rotated longitude/latitude in degrees.
    RotatedPole(RotatedParams),
    /// Oblique stereographic.
    Stereographic(ObliqueStereo),
}

/// The web mercator sphere as a Mercator.
fn web_mercator() -> MercatorParams {
    MercatorParams {
        ellipsoid: Ellipsoid::sphere(WGS84_A),
        lon_0: 0.0,
        lat_ts: None,
        k0: 1.0,
        false_easting: 0.0,
        false_northing: 0.0,
    }
}

impl Projection {
    /// Lon/lat degrees to x/y (metres; rotated degrees for a rotated pole); a NaN pair where the
    /// projection is undefined (the opposite pole of a polar stereographic, ±90° in Mercator).
    pub(crate) fn forward(&self, lon: f64, lat: f64) -> (f64, f64) {
        if !(lon.is_finite() && lat.is_finite()) || lat.abs() > 90.0 {
            return (f64::NAN, f64::NAN);
        }
        match self {
            Projection::LonLat => (lon, lat),
            Projection::PolarStereographic(p) => p.forward(lon, lat),
            Projection::WebMercator => web_mercator().forward(lon, lat),
            Projection::Mercator(p) => p.forward(lon, lat),
            Projection::LambertConformal(p) => p.forward(lon, lat),
            Projection::RotatedPole(p) => p.forward(lon, lat),
            Projection::Stereographic(p) => p.forward(lon, lat),
        }
    }

    /// x/y to lon/lat degrees, longitude in `[-180, 180]` (lon/lat pass through unchanged).
    pub(crate) fn inverse(&self, x: f64, y: f64) -> (f64, f64) {
        if !(x.is_finite() && y.is_finite()) {
            return (f64::NAN, f64::NAN);
        }
        match self {
            Projection::LonLat => (x, y),
            Projection::PolarStereographic(p) => p.inverse(x, y),
            Projection::WebMercator => web_mercator().inverse(x, y),
            Projection::Mercator(p) => p.inverse(x, y),
            Projection::LambertConformal(p) => p.inverse(x, y),
            Projection::RotatedPole(p) => p.inverse(x, y),
            Projection::Stereographic(p) => p.inverse(x, y),
        }
    }

    /// Whether x/y are angles on the sphere (lon/lat or rotated lon/lat) rather than metres.
    pub(crate) fn is_angular(&self) -> bool {
        matches!(self, Projection::LonLat | Projection::RotatedPole(_))
    }
}

#[cfg(test)]
mod tests;
