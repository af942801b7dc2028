//! Tests of the projections against PROJ values, Snyder's examples and round trips.

use super::*;

/// `(lon, lat, x, y)`.
type Case = (f64, f64, f64, f64);
/// A grid mapping name, its attributes, and the projections of 5 points.
type CfCase<'a> = (&'a str, Vec<(&'a str, &'a [f64])>, [(f64, f64); 5]);

/// Checks forward (tolerance in metres) and inverse.
fn check(p: &Projection, cases: &[Case], tol: f64) {
    // Inverse tolerance: 1e-9° for exact references, the angle of `tol` metres otherwise.
    let angle = if p.is_angular() {
        tol
    } else {
        (tol / 6.0e6_f64).to_degrees().max(1e-9)
    };
    for &(lon, lat, x, y) in cases {
        let (fx, fy) = p.forward(lon, lat);
        assert!(
            (fx - x).abs() < tol && (fy - y).abs() < tol,
            "{p:?} ({lon},{lat}) -> ({fx},{fy}), expected ({x},{y})"
        );
        let (ilon, ilat) = p.inverse(x, y);
        assert!(
            (ilat - lat).abs() < angle,
            "{p:?} inverse lat {ilat} vs {lat}"
        );
        if lat.abs() < 90.0 - 1e-9 {
            let dl = wrap_lon(ilon - lon).abs();
            assert!(dl < angle, "{p:?} inverse lon {ilon} vs {lon}");
        }
    }
}

fn cf<'a>(pairs: &'a [(&'a str, &'a [f64])]) -> impl Fn(&str) -> Option<Vec<f64>> + 'a {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_vec())
    }
}

/// Values from pyproj 3.7 / PROJ 9 (`Transformer.from_crs(EPSG:4326, crs, always_xy=True)`).
#[test]
fn epsg_codes_match_proj() {
    let cases: [(&str, &[Case]); 4] = [
        (
            "EPSG:3031",
            &[
                (0.0, -90.0, 0.0, 0.0),
                (30.0, -75.0, 819391.6192036181, 1419227.9157567972),
                (-150.0, -60.5, -1637561.426174045, -2836339.5906483983),
                (179.9, -85.0, 948.7488026991114, -543592.4701676954),
            ],
        ),
        (
            "EPSG:3413",
            &[
                (-45.0, 90.0, 0.0, 0.0),
                (10.0, 75.0, 1338395.7304750644, -937154.7795863311),
                (-120.0, 60.5, -3154059.510240005, -845127.6986485124),
                (100.0, 80.0, 622858.2943400022, 889533.8315444669),
            ],
        ),
        (
            "EPSG:3995",
            &[
                (0.0, 85.0, 0.0, -543593.2981074246),
                (-60.0, 70.0, -1900487.766888363, -1097247.1238045874),
                (150.0, 62.0, 1550925.151522817, 2686281.1611739793),
            ],
        ),
        (
            "EPSG:3857",
            &[
                (0.0, 0.0, 0.0, 0.0),
                (12.5, 45.0, 1391493.6349159195, 5621521.486192066),
                (-170.0, -80.0, -18924313.434856508, -15538711.09630922),
            ],
        ),
    ];
    for (code, pts) in cases {
        let p = Projection::from_epsg(code).unwrap();
        check(&p, pts, 1e-6);
        assert_eq!(p.epsg().map(|c| format!("EPSG:{c}")).as_deref(), Some(code));
    }
    assert_eq!(
        Projection::from_epsg("epsg:4326").unwrap(),
        Projection::LonLat
    );
    assert!(Projection::from_epsg("EPSG:32633").is_err());
    assert!(Projection::from_epsg("3031").is_err());
    assert!(Projection::from_epsg("EPSG:3031")
        .unwrap()
        .forward(0.0, 90.0)
        .0
        .is_nan());
}

/// Snyder, USGS PP 1395, worked examples (pp. 296, 315-316, 267): polar stereographic
/// (International ellipsoid, φc = −71°, λ0 = −100°), Lambert conformal conic and Mercator
/// (Clarke 1866), to the 0.1 m the book prints (it truncates).
#[test]
fn snyder_worked_examples() {
    let intl = Ellipsoid::new(6_378_388.0, 297.0);
    let clarke = Ellipsoid::new(6_378_206.4, 294.978_698_2);
    let polar = Projection::PolarStereographic(PolarStereo::new(
        intl,
        true,
        Some(-71.0),
        1.0,
        -100.0,
        0.0,
        0.0,
    ));
    check(&polar, &[(150.0, -75.0, -1_540_033.6, -560_526.4)], 0.1);
    let lcc = Projection::LambertConformal(
        LambertParams::new(clarke, -96.0, 23.0, 33.0, 45.0, 0.0, 0.0).unwrap(),
    );
    check(&lcc, &[(-75.0, 35.0, 1_894_410.9, 1_564_649.5)], 0.1);
    let merc = Projection::Mercator(MercatorParams {
        ellipsoid: clarke,
        lon_0: -180.0,
        lat_ts: None,
        k0: 1.0,
        false_easting: 0.0,
        false_northing: 0.0,
    });
    check(&merc, &[(-75.0, 35.0, 11_688_673.7, 4_139_145.6)], 0.1);
}

/// CF grid mappings, values from pyproj (`CRS.from_cf(attrs)`, PROJ 9).
#[test]
fn cf_grid_mappings_match_proj() {
    let pts = [
        (-100.0, 40.0),
        (-75.0, 30.0),
        (120.0, 15.0),
        (5.0, 55.0),
        (-170.0, 60.0),
    ];
    let cases: Vec<CfCase> = vec![
        (
            "lambert_conformal_conic",
            vec![
                ("standard_parallel", &[33.0, 45.0]),
                ("longitude_of_central_meridian", &[-96.0]),
                ("latitude_of_projection_origin", &[23.0]),
                ("semi_major_axis", &[6378137.0]),
                ("inverse_flattening", &[298.257222101]),
            ],
            [
                (-339643.77847991744, 1904595.0464104174),
                (2021518.684451386, 1024295.9817348884),
                (-10548217.825500252, 9761534.717078507),
                (5409843.781556136, 6939769.60268506),
                (-3962152.5890369983, 5876418.599808625),
            ],
        ),
        (
            "lambert_conformal_conic",
            vec![
                ("standard_parallel", &[25.0]),
                ("longitude_of_central_meridian", &[265.0]),
                ("latitude_of_projection_origin", &[25.0]),
                ("earth_radius", &[6371229.0]),
            ],
            [
                (-441546.8791987769, 1696174.1446000328),
                (1926477.0782859619, 699065.8115201691),
                (-12962321.790220553, 6560495.1783321295),
                (6825909.0820046775, 6151520.646233303),
                (-4978447.493148851, 5601208.717109174),
            ],
        ),
        (
            "mercator",
            vec![
                ("standard_parallel", &[20.0]),
                ("longitude_of_projection_origin", &[100.0]),
                ("false_easting", &[500.0]),
                ("false_northing", &[-300.0]),
            ],
            [
                (16744033.809577912, 4548157.151506275),
                (-18312740.10422584, 3273169.355377555),
                (2093441.7261972378, 1577260.6476196917),
                (-9940973.199436884, 6887372.709252571),
                (9418737.767887574, 7861144.842695906),
            ],
        ),
        (
            "stereographic",
            vec![
                ("latitude_of_projection_origin", &[50.0]),
                ("longitude_of_projection_origin", &[10.0]),
                ("scale_factor_at_projection_origin", &[0.9999]),
                ("false_easting", &[1000.0]),
                ("false_northing", &[2000.0]),
            ],
            [
                (-6962717.354142475, 5924108.077039619),
                (-7698287.118302892, 2347669.2522988534),
                (11758470.728236279, 5420075.56300346),
                (-319461.58310288633, 569844.7916765794),
                (999.9999999994137, 8974769.649811013),
            ],
        ),
        (
            "rotated_latitude_longitude",
            vec![
                ("grid_north_pole_latitude", &[39.25]),
                ("grid_north_pole_longitude", &[-162.0]),
            ],
            [
                (-68.22229182387144, 43.2509197184531),
                (-67.48351471482121, 20.576117619589276),
                (85.56001531185855, 18.619106850043934),
                (-7.440743635738308, 4.904353319898375),
                (11.018677478020363, 68.64892439763419),
            ],
        ),
        (
            "rotated_latitude_longitude",
            vec![
                ("grid_north_pole_latitude", &[40.0]),
                ("grid_north_pole_longitude", &[-170.0]),
                ("north_pole_grid_longitude", &[20.0]),
            ],
            [
                (-45.76821767222841, 37.87069806358566),
                (-43.425689808403284, 15.282205340569249),
                (110.88923781008855, 24.79928678449733),
                (17.12318057090997, 5.096171167067786),
                (19.99999999999999, 70.00000000000001),
            ],
        ),
        (
            "polar_stereographic",
            vec![
                ("straight_vertical_longitude_from_pole", &[-45.0]),
                ("latitude_of_projection_origin", &[90.0]),
                ("scale_factor_at_projection_origin", &[0.994]),
                ("false_easting", &[2000000.0]),
                ("false_northing", &[2000000.0]),
                ("semi_major_axis", &[6378273.0]),
                ("inverse_flattening", &[298.279411123064]),
            ],
            [
                (-2848102.0283300476, -1394677.5862464835),
                (-1660395.7838797932, -4339991.473490709),
                (4514163.591968624, 11382986.263766762),
                (5069202.294092312, -575366.5129813212),
                (-789993.131406425, 3953574.222164093),
            ],
        ),
    ];
    for (name, attrs, expected) in cases {
        let p = Projection::from_cf(name, &cf(&attrs)).unwrap();
        let angular = p.is_angular();
        let tol = if angular { 1e-9 } else { 1e-6 };
        let rows: Vec<_> = pts
            .iter()
            .zip(expected)
            .map(|(&(lon, lat), (x, y))| (lon, lat, x, y))
            .collect();
        check(&p, &rows, tol);
        // The attributes written for it describe the same projection.
        let written = p.cf_attributes();
        let get = |k: &str| {
            written
                .iter()
                .find(|(n, _)| n == k)
                .and_then(|(_, v)| match v {
                    CfValue::Number(x) => Some(vec![*x]),
                    CfValue::Numbers(x) => Some(x.clone()),
                    CfValue::Text(_) => None,
                })
        };
        assert_eq!(written[0].1, CfValue::Text(name.to_owned()));
        let again = Projection::from_cf(name, &get).unwrap();
        check(&again, &rows, tol);
    }
}

/// forward ∘ inverse is the identity on a grid of points, for every projection.
#[test]
fn round_trips() {
    let none = |_: &str| None;
    let mut projections: Vec<Projection> = ["EPSG:3031", "EPSG:3413", "EPSG:3857", "EPSG:3995"]
        .iter()
        .map(|c| Projection::from_epsg(c).unwrap())
        .collect();
    projections.push(Projection::from_cf("latitude_longitude", &none).unwrap());
    let lcc: [(&str, &[f64]); 2] = [
        ("standard_parallel", &[-30.0, -50.0]),
        ("longitude_of_central_meridian", &[140.0]),
    ];
    projections.push(Projection::from_cf("lambert_conformal_conic", &cf(&lcc)).unwrap());
    let st: [(&str, &[f64]); 2] = [
        ("latitude_of_projection_origin", &[-35.0]),
        ("earth_radius", &[6371000.0]),
    ];
    projections.push(Projection::from_cf("stereographic", &cf(&st)).unwrap());
    let rot: [(&str, &[f64]); 2] = [
        ("grid_north_pole_latitude", &[-20.0]),
        ("grid_north_pole_longitude", &[60.0]),
    ];
    projections.push(Projection::from_cf("rotated_latitude_longitude", &cf(&rot)).unwrap());
    for p in &projections {
        let mut n = 0;
        for i in 0..36 {
            for j in 0..17 {
                let (lon, lat) = (-175.0 + 10.0 * i as f64, -80.0 + 10.0 * j as f64);
                let (x, y) = p.forward(lon, lat);
                if !x.is_finite() || x.abs() > 4e7 || y.abs() > 4e7 {
                    continue;
                }
                let (ilon, ilat) = p.inverse(x, y);
                assert!(
                    (ilat - lat).abs() < 1e-9 && wrap_lon(ilon - lon).abs() < 1e-9,
                    "{p:?} ({lon},{lat}) -> ({ilon},{ilat})"
                );
                n += 1;
            }
        }
        assert!(n > 200, "{p:?} defined at only {n} points");
    }
}

#[test]
fn bad_cf_mappings_are_errors() {
    let none = |_: &str| None;
    assert!(Projection::from_cf("transverse_mercator", &none).is_err());
    assert!(Projection::from_cf("lambert_conformal_conic", &none).is_err());
    assert!(Projection::from_cf("rotated_latitude_longitude", &none).is_err());
    let bad: [(&str, &[f64]); 1] = [("earth_radius", &[-1.0])];
    assert!(Projection::from_cf("mercator", &cf(&bad)).is_err());
    // A spherical Mercator of the Web Mercator radius is Web Mercator.
    let web: [(&str, &[f64]); 1] = [("earth_radius", &[6378137.0])];
    let p = Projection::from_cf("mercator", &cf(&web)).unwrap();
    assert_eq!(p.epsg(), Some(3857));
}
