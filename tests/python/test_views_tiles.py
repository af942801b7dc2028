"""Map-tile pyramids (`[view.pyramid]` with `crs = "EPSG:3857"`): level L a regrid of the
source to ndpyramid's `2**L * pixels_per_tile` Web Mercator grid.

References: ndpyramid 0.4's ``pyramid_reproject`` (rioxarray/rasterio) on the original files,
for the geometry, the metadata and the values (``nearest`` exactly away from ties; ``average``
within a stated tolerance: GDAL weights source pixels by their overlap in degrees, atlasfs by
their area on the sphere), and the Web Mercator formulas written here.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import xarray as xr

import regrid_fixtures as rf
import view_fixtures as vf
from conftest import open_mounted

PPT, LEVELS = 32, 3
DAYS_PER_CHUNK = 4  # of 6 days: a chunk across files, and a partial last one
R = 6378137.0
HALF = 20037508.342789244


def views():
    return [
        {"name": "tiles/mean", "from": "globe",
         "pyramid": {"levels": LEVELS, "crs": "EPSG:3857", "pixels_per_tile": PPT}},
        # several days per tile file (ndpyramid's other_chunks)
        {"name": "tiles/days", "from": "globe", "variables": ["t2m", "smooth"],
         "pyramid": {"levels": 2, "crs": "EPSG:3857", "pixels_per_tile": PPT,
                     "chunks": {"time": DAYS_PER_CHUNK}}},
        {"name": "tiles/nearest", "from": "globe", "variables": ["smooth"],
         "pyramid": {"levels": 2, "crs": "EPSG:3857", "pixels_per_tile": PPT,
                     "method": "nearest", "codec": "none"}},
    ]


@pytest.fixture(scope="module")
def globe_files(tmp_path_factory):
    return rf.make_globe(tmp_path_factory.mktemp("tiles") / "globe")


def entry(files):
    return [{"name": "globe", "files": str(files[0].parent / "*.nc"), "concat_dim": "time"}]


@pytest.fixture(scope="module")
def mount(module_mounts, globe_files):
    return vf.mount_views(module_mounts, entry(globe_files), views())


@pytest.fixture(scope="module")
def mount2(module_mounts, globe_files):
    return vf.mount_views(module_mounts, entry(globe_files), views(), zarr_format=2)


@pytest.fixture(scope="module")
def source(globe_files) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_mfdataset([str(p) for p in globe_files], combine="by_coords") as ds:
            return ds.load()


def ndpyramid_levels(source, levels, resampling, variables):
    """ndpyramid's pyramid on the source with longitudes moved to -180..180 (GDAL does not
    wrap a 0..360 source across the antimeridian)."""
    import rioxarray  # noqa: F401
    from ndpyramid import pyramid_reproject

    ds = source[variables].assign_coords(lon=((source.lon + 180) % 360) - 180).sortby("lon")
    ds = ds.rio.set_spatial_dims(x_dim="lon", y_dim="lat").rio.write_crs("EPSG:4326")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pyramid_reproject(ds, levels=levels, pixels_per_tile=PPT, resampling=resampling)


def test_level_geometry_is_ndpyramids(mount, source):
    ref = ndpyramid_levels(source, LEVELS, "average", ["smooth"])
    for level in range(LEVELS):
        got = open_mounted(mount / "tiles" / "mean" / str(level))
        want = ref[str(level)].ds
        dim = 2 ** level * PPT
        assert got["t2m"].dims == ("time", "y", "x")
        assert got.sizes["x"] == got.sizes["y"] == dim
        # ndpyramid casts every float, coordinates too, to float32; atlasfs keeps float64
        np.testing.assert_allclose(got.x.values, want.x.values, rtol=1e-7, atol=0)
        np.testing.assert_allclose(got.y.values, want.y.values, rtol=1e-7, atol=0)
        step = 2 * HALF / dim
        np.testing.assert_allclose(got.x.values, -HALF + step * (np.arange(dim) + 0.5), atol=1e-6)
        assert got.y.values[0] > got.y.values[-1], "y runs north to south"


def test_nearest_values_equal_ndpyramid(mount, source):
    ref = ndpyramid_levels(source, 2, "nearest", ["smooth"])
    for level in range(2):
        got = open_mounted(mount / "tiles" / "nearest" / str(level))["smooth"].values
        want = ref[str(level)].ds["smooth"].values
        assert got.shape == want.shape
        # rows whose latitude lies half-way between two source centres may pick either
        same = np.isclose(got, want, rtol=1e-6, equal_nan=True)
        assert same.mean() > 0.97, f"level {level}: {same.mean():.3f} of pixels equal"


def test_average_values_close_to_ndpyramid(mount, source):
    ref = ndpyramid_levels(source, LEVELS, "average", ["smooth"])
    for level in range(LEVELS):
        got = open_mounted(mount / "tiles" / "mean" / str(level))["smooth"].values
        want = ref[str(level)].ds["smooth"].values
        # GDAL does not wrap the source across the antimeridian, so the first and last
        # columns of ndpyramid miss the source column beyond it: compare the others
        got, want = got[..., 1:-1], want[..., 1:-1]
        both = np.isfinite(got) & np.isfinite(want)
        assert both.mean() > 0.99, f"level {level}: {both.mean():.3f} of pixels on both sides"
        # a stated tolerance: 1 % of the field's range (sphere vs degree weighting of the
        # source rows a pixel straddles)
        span = np.nanmax(want) - np.nanmin(want)
        assert np.max(np.abs(got[both] - want[both])) <= 0.01 * span, level


@pytest.mark.parametrize("view", ["tiles/mean", "tiles/days"])
def test_average_equals_the_exact_formula(mount, source, view):
    """Each pixel: the area-weighted mean of the source cells it overlaps, its latitude bounds
    from y by lat = atan(sinh(y / R)), masked cells skipped — in one-day and several-day tiles."""
    level = 1
    got = open_mounted(mount / view / str(level))
    dim = 2 ** level * PPT
    step = 2 * HALF / dim
    y_edges = HALF - step * np.arange(dim + 1)
    x_edges = -HALF + step * np.arange(dim + 1)
    lat_b = np.degrees(np.arctan(np.sinh(y_edges / R)))
    lon_b = np.degrees(x_edges / R)
    dst_lat = np.sort(np.stack([lat_b[:-1], lat_b[1:]], axis=1), axis=1)
    dst_lon = np.stack([lon_b[:-1], lon_b[1:]], axis=1)
    wy = rf.overlap_1d(rf.cell_bounds(rf.GLOBE_LAT, True), dst_lat, "lat")
    wx = rf.overlap_1d(rf.cell_bounds(rf.GLOBE_LON, False), dst_lon, "lon")
    for var in ("t2m", "smooth"):
        want = rf.nan_rule(wy, wx, source[var].values, 1.0)
        np.testing.assert_allclose(got[var].values, want, rtol=1e-5, equal_nan=True,
                                   err_msg=var)


def test_other_chunks_hold_several_days_per_tile(mount):
    root = mount / "tiles" / "days"
    kwargs = vf.group_attrs(root)["multiscales"][0]["metadata"]["kwargs"]
    assert kwargs["other_chunks"] == {"time": DAYS_PER_CHUNK}, kwargs
    for k in range(2):
        meta = vf.array_meta(root / str(k) / "t2m")
        assert meta["chunks"] == [DAYS_PER_CHUNK, PPT, PPT], meta["chunks"]
    assert vf.group_attrs(mount / "tiles" / "mean")["multiscales"][0]["metadata"]["kwargs"][
        "other_chunks"] is None


@pytest.mark.parametrize("fmt", [3, 2])
def test_metadata_a_map_viewer_reads(request, fmt):
    m = request.getfixturevalue("mount" if fmt == 3 else "mount2")
    root = m / "tiles" / "mean"
    attrs = vf.group_attrs(root)
    ms = attrs["multiscales"]
    assert len(ms) == 1 and ms[0]["type"] == "reduce"
    assert ms[0]["datasets"] == [
        {"path": str(k), "level": k, "crs": "EPSG:3857", "pixels_per_tile": PPT}
        for k in range(LEVELS)]
    meta = ms[0]["metadata"]
    assert meta["method"] == "pyramid_reproject"
    assert meta["kwargs"]["pixels_per_tile"] == PPT
    assert meta["kwargs"]["projection"] == "web-mercator"
    assert meta["kwargs"]["resampling"] == "average"
    for k in range(LEVELS):
        level_ms = vf.group_attrs(root / str(k))["multiscales"][0]
        assert level_ms["datasets"] == [{"path": ".", "level": k, "crs": "EPSG:3857"}]
        meta = vf.array_meta(root / str(k) / "t2m")
        assert meta["chunks"] == [1, PPT, PPT], meta["chunks"]
        assert meta["dtype"] == "float32"
        assert any(c in ("gzip", "zlib") for c in meta["codecs"]), meta["codecs"]
        assert meta["attrs"].get("_ARRAY_DIMENSIONS") == ["time", "y", "x"], meta["attrs"]
    if fmt == 2:
        # consolidated at the view root, where a map viewer opens it
        consolidated = json.loads((root / ".zmetadata").read_text())["metadata"]
        assert "0/t2m/.zarray" in consolidated and ".zattrs" in consolidated


def test_tiles_outside_a_regional_source_are_fill(module_mounts, tmp_path):
    """A regional source (lat 30..60, lon 0..40): tiles outside it are NaN."""
    import netCDF4

    path = tmp_path / "region.nc"
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("lat", 31)
        ds.createDimension("lon", 41)
        lat = ds.createVariable("lat", "f8", ("lat",))
        lat.units = "degrees_north"
        lat[:] = np.arange(30.0, 61.0)
        lon = ds.createVariable("lon", "f8", ("lon",))
        lon.units = "degrees_east"
        lon[:] = np.arange(0.0, 41.0)
        v = ds.createVariable("v", "f4", ("lat", "lon"))
        v[:] = np.ones((31, 41), "f4")
    m = vf.mount_views(module_mounts, [{"name": "region", "files": str(path)}],
                       [{"name": "t", "from": "region",
                         "pyramid": {"levels": 2, "crs": "EPSG:3857", "pixels_per_tile": 16}}])
    got = open_mounted(m / "t" / "1")
    v = got["v"].values
    dim = v.shape[-1]
    step = 2 * HALF / dim
    x_edges = np.degrees((-HALF + step * np.arange(dim + 1)) / R)
    y_edges = np.degrees(np.arctan(np.sinh((HALF - step * np.arange(dim + 1)) / R)))
    south, north = y_edges[1:], y_edges[:-1]
    west, east = x_edges[:-1], x_edges[1:]
    # the source's cells cover lat 29.5..60.5, lon -0.5..40.5
    inside = ((south > 29.5) & (north < 60.5))[:, None] & ((west > -0.5) & (east < 40.5))[None]
    outside = ((north < 29.5) | (south > 60.5))[:, None] | ((east < -0.5) | (west > 40.5))[None]
    assert inside.any() and outside.any()
    np.testing.assert_allclose(v[inside], 1.0, rtol=1e-6)
    assert np.isnan(v[outside]).all()
