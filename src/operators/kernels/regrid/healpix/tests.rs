use super::*;

#[test]
fn levels_count_twelve_times_four_to_the_level() {
    assert_eq!(cell_count(0), 12);
    assert_eq!(cell_count(2), 192);
    assert_eq!(cell_count(8), 786_432);
    assert_eq!(cell_count(20), 13_194_139_533_312);
}

#[test]
fn nested_ids_of_known_points() {
    // (level, lon, lat, nested id) as healpy.ang2pix(2**level, lon, lat, nest=True, lonlat=True)
    let known = [
        (0, 45.0, 0.0, 5),
        (0, 0.0, 89.0, 0),
        (0, 100.0, -60.0, 9),
        (2, 10.0, 20.0, 77),
        (2, 200.0, -45.0, 168),
        (2, 359.9, 0.1, 76),
        (2, -0.1, 0.1, 76),
        (8, 2.35, 48.85, 44_745),
    ];
    for (level, lon, lat, id) in known {
        assert_eq!(cell_of(level, lon, lat), Some(id), "{level} {lon} {lat}");
    }
    assert_eq!(cell_of(2, 10.0, 91.0), None);
    assert_eq!(cell_of(2, f64::NAN, 0.0), None);
}

#[test]
fn centres_are_those_of_pix2ang() {
    // healpy.pix2ang(4, [0, 77, 191], nest=True, lonlat=True)
    let known = [
        (0, 45.0, 9.594_068_23),
        (77, 11.25, 19.471_220_63),
        (191, 315.0, -9.594_068_23),
    ];
    for (cell, lon, lat) in known {
        let (x, y) = centre(2, cell);
        assert!(
            (x - lon).abs() < 1e-7 && (y - lat).abs() < 1e-7,
            "{cell}: {x} {y}"
        );
        assert_eq!(cell_of(2, x, y), Some(cell));
    }
}

#[test]
fn membership_rows_hold_the_sources_of_each_cell() {
    let centres = [(10.0, 20.0), (200.0, -45.0), (10.1, 20.1), (f64::NAN, 0.0)];
    let members = Membership::new(2, centres);
    let rows = members.rows(76..80);
    assert_eq!(rows.len(), 4);
    assert_eq!(rows.row(1), (&[0u32, 2][..], &[1.0, 1.0][..]));
    assert!(rows.row(0).0.is_empty());
    assert_eq!(members.rows(168..169).row(0).0, &[1u32][..]);
}

#[test]
fn ids_agree_with_cdshealpix_off_the_edges_and_with_healpy_on_them() {
    // Points inside cells: the same ids as cdshealpix.
    for level in [0u8, 3, 9, 20] {
        for k in 0..2000 {
            let lon = (k as f64 * 37.123_456_7) % 360.0 - 180.0;
            let lat = ((k as f64 * 0.618_033_988_7).fract() * 2.0 - 1.0)
                .asin()
                .to_degrees();
            let want = cdshealpix::nested::hash(
                level,
                lon.rem_euclid(360.0).to_radians(),
                lat.to_radians(),
            );
            assert_eq!(cell_of(level, lon, lat), Some(want), "{level} {lon} {lat}");
        }
    }
    // On edges and at the poles, as healpy.ang2pix(8, lon, lat, nest=True, lonlat=True).
    let edges = [
        (0.0, 30.0, 316),
        (180.0, -30.0, 385),
        (180.0, 30.0, 445),
        (0.0, 90.0, 63),
        (100.0, 90.0, 127),
        (0.0, -90.0, 512),
        (300.0, -90.0, 704),
    ];
    for (lon, lat, id) in edges {
        assert_eq!(cell_of(3, lon, lat), Some(id), "{lon} {lat}");
    }
}
