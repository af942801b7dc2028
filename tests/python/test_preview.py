"""The preview page of `atlasfs serve`, in a real headless browser (Debian's Chromium, driven
by selenium through Debian's chromium-driver).

The page must list the tree with shapes; a slice drawn for a chosen index must have, at every
pixel, the viridis colour of the value xarray reads from the original files (matplotlib's
viridis is the reference table), with masked and NaN cells transparent; zooming a pyramid view
must ask for finer levels and only the visible region. Pack views (int16 + zstd) and Zarr v2
keys decode to the same pictures; a large slice is the mean of square blocks. The render
endpoint answers 400/404 naming what is wrong, and a failed chunk as its key does (500). A screenshot of the page goes to the test's directory (and to
``$ATLASFS_TEST_ARTEFACTS`` when set).
"""

from __future__ import annotations

import io
import os
import shutil
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import matplotlib
import netCDF4
import numpy as np
import pytest
import requests
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import view_fixtures as vf
from test_http import Server
from view_fixtures import daily  # noqa: F401 (fixture)

LEVELS = 3
PYRAMID = {"name": "pyr", "from": "daily", "pyramid": {"levels": LEVELS, "method": "mean"}}
PACKED = {"name": "packed", "from": "daily", "pack": {"dtype": "int16", "range": "data"}}
WAIT = 30  # seconds for the page to show something

# viridis as matplotlib ships it, each channel rounded to a byte
VIRIDIS = np.round(np.asarray(matplotlib.colormaps["viridis"].colors) * 255).astype(np.uint8)


def expected_rgba(values: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """The picture of ``values``: entry floor(clip((v - vmin) / (vmax - vmin), 0, 1) * 255 + 0.5)
    of viridis, opaque; NaN transparent (all four channels 0)."""
    values = np.asarray(values, dtype="f8")
    nan = np.isnan(values)
    t = np.clip((np.where(nan, vmin, values) - vmin) / (vmax - vmin), 0.0, 1.0)
    level = np.floor(t * 255.0 + 0.5).astype(int)
    out = np.zeros(values.shape + (4,), dtype=np.uint8)
    out[..., :3] = VIRIDIS[level]
    out[..., 3] = 255
    out[nan] = 0
    return out


def decode_png(body: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(body))
    assert image.mode == "RGBA", image.mode
    return np.asarray(image)


@pytest.fixture(scope="module")
def servers(atlasfs_bin, daily, tmp_path_factory):  # noqa: F811 (fixture)
    """`atlasfs serve` of the daily archive, a pyramid and a pack view, in Zarr v3 and v2."""
    base = tmp_path_factory.mktemp("preview")
    running = {}
    for fmt in (3, 2):
        config = vf.write_views_config(base / f"v{fmt}.toml", [vf.daily_entry(daily)],
                                       [PYRAMID, PACKED],
                                       cache_dir=base / f"cache{fmt}", zarr_format=fmt)
        running[fmt] = Server(atlasfs_bin, config)
    yield running
    for server in running.values():
        assert server.stop() == 0, server.log_text()[-2000:]


@pytest.fixture(scope="module")
def server(servers):
    return servers[3]


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    assert chromium and driver_path, "install Debian's chromium and chromium-driver (scripts/setup)"
    os.environ["SE_OFFLINE"] = "true"  # never let selenium fetch a browser or a driver
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_script_timeout(WAIT)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(browser, server):
    """The page loaded, its tree listed."""
    browser.get(server.url + "/")
    WebDriverWait(browser, WAIT).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#tree[data-loaded=true]"))
    return browser


def shown(driver, predicate):
    """Waits until the canvas shows a picture whose URL satisfies ``predicate``; the URL."""
    def ready(d):
        canvas = d.find_element(By.ID, "view")
        src = canvas.get_attribute("data-src") or ""
        error = d.find_element(By.ID, "error").text
        assert not error, error
        return src if canvas.get_attribute("data-state") == "ready" and predicate(src) else None
    return WebDriverWait(driver, WAIT).until(ready)


def params(src: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(src).query).items()}


def test_the_page_lists_groups_and_arrays_with_shapes(page):
    items = {li.get_attribute("data-path"): li.find_element(By.CLASS_NAME, "shape").text
             for li in page.find_elements(By.CSS_SELECTOR, "#tree li.array")}
    grid = f"{vf.NLAT}×{vf.NLON}"
    assert items["daily/sst"] == f"{vf.NTIME}×{grid}"
    assert items["daily/chl"] == f"{vf.NTIME}×{grid}"
    assert items["daily/depth"] == grid
    assert items["daily/lat"] == f"{vf.NLAT}"
    for k in range(LEVELS):  # level k: blocks of 2**(LEVELS-1-k), partial blocks trimmed
        f = 2 ** (LEVELS - 1 - k)
        assert items[f"pyr/{k}/sst"] == f"{vf.NTIME}×{vf.NLAT // f}×{vf.NLON // f}"
    groups = [d.get_attribute("data-path")
              for d in page.find_elements(By.CSS_SELECTOR, "#tree details.group")]
    assert {"daily", "packed", "pyr", "pyr/0", "pyr/2"} <= set(groups)
    tags = page.find_element(By.CSS_SELECTOR, 'details[data-path="pyr"] > summary').text
    assert f"pyramid, {LEVELS} levels" in tags


def test_a_chosen_slice_has_the_colours_of_its_values(page, server, daily):  # noqa: F811
    page.find_element(By.CSS_SELECTOR, '#tree li.array[data-path="daily/sst"]').click()
    first = shown(page, lambda s: params(s).get("array") == "daily/sst")
    assert params(first)["index"] == "time:0"
    index = page.find_element(By.CSS_SELECTOR, '#indices input[data-dim="time"]')
    index.clear()
    index.send_keys("3")
    src = shown(page, lambda s: params(s).get("index") == "time:3")
    got = requests.get(f"{server.url}/{src}", timeout=60)
    assert got.status_code == 200 and got.headers["Content-Type"] == "image/png"
    want = vf.open_daily(daily).sst.isel(time=3).values.astype("f8")  # masked cells are NaN
    vmin, vmax = np.nanmin(want), np.nanmax(want)
    assert float(got.headers["X-Atlas-Vmin"]) == vmin
    assert float(got.headers["X-Atlas-Vmax"]) == vmax
    pixels = decode_png(got.content)
    assert pixels.shape == (vf.NLAT, vf.NLON, 4)
    np.testing.assert_array_equal(pixels, expected_rgba(want, vmin, vmax))
    # known positions: a land cell (masked with _FillValue) is transparent, the extremes
    # are the ends of viridis
    mask = vf.land_mask(vf.NLAT, vf.NLON)
    assert mask[0, 0] and pixels[0, 0, 3] == 0
    lo = np.unravel_index(np.nanargmin(want), want.shape)
    hi = np.unravel_index(np.nanargmax(want), want.shape)
    assert tuple(pixels[lo]) == (68, 1, 84, 255) and tuple(pixels[hi]) == (253, 231, 37, 255)
    # the page labels its colour bar with the same range
    assert page.find_element(By.ID, "vmin-label").text == f"{float(f'{vmin:.6g}'):g}"


@pytest.mark.parametrize("name", ["sal", "chl"])
def test_nan_cells_are_transparent_and_packed_values_decoded(server, servers, daily,  # noqa: F811
                                                            name):
    """sal stores NaN as is; chl is int16 with scale_factor/add_offset and a _FillValue."""
    want = getattr(vf.open_daily(daily), name).isel(time=5).values.astype("f8")
    assert np.isnan(want).any()
    vmin, vmax = np.nanmin(want), np.nanmax(want)
    query = f".atlas/render.png?array=daily/{name}&index=time:5"
    got = requests.get(f"{server.url}/{query}", timeout=60)
    assert got.status_code == 200, got.text
    pixels = decode_png(got.content)
    np.testing.assert_array_equal(pixels, expected_rgba(want, vmin, vmax))
    assert (pixels[np.isnan(want)][:, 3] == 0).all()
    # Zarr v2 keys decode to the same picture
    v2 = requests.get(f"{servers[2].url}/{query}", timeout=60)
    assert v2.status_code == 200 and v2.content == got.content
    # a fixed range and the other axis order: the transposed picture
    lo, hi = map(float, np.nanpercentile(want, [25, 75]))
    fixed = requests.get(f"{server.url}/{query}&y=lon&x=lat&vmin={lo!r}&vmax={hi!r}",
                         timeout=60)
    np.testing.assert_array_equal(decode_png(fixed.content), expected_rgba(want.T, lo, hi))


def test_zooming_a_pyramid_asks_for_finer_levels_and_the_visible_region(page, server, tmp_path):
    page.find_element(By.CSS_SELECTOR,
                      '#tree li.pyramid-var[data-pyramid="pyr"][data-var="sst"]').click()
    first = shown(page, lambda s: params(s).get("array") == "pyr/0/sst")
    assert "region" not in params(first)  # the coarsest level, whole
    page.find_element(By.ID, "zoom-in").click()
    shown(page, lambda s: params(s).get("array") == "pyr/1/sst")
    page.find_element(By.ID, "zoom-in").click()
    src = shown(page, lambda s: params(s).get("array") == "pyr/2/sst")
    assert page.find_element(By.ID, "view").get_attribute("data-level") == "2"
    asked = [params(u)["array"] for u in page.execute_script("return window.atlasRequests")]
    assert asked.index("pyr/0/sst") < asked.index("pyr/1/sst") < asked.index("pyr/2/sst")
    # zoom 2 shows a quarter of each side around the centre, in the finest level's indices
    h, w = vf.NLAT, vf.NLON
    region = [int(np.floor(h / 2 - h / 8)), int(np.ceil(h / 2 + h / 8)),
              int(np.floor(w / 2 - w / 8)), int(np.ceil(w / 2 + w / 8))]
    assert params(src)["region"] == "{}:{},{}:{}".format(*region)
    got = requests.get(f"{server.url}/{src}", timeout=60)
    assert decode_png(got.content).shape[:2] == (region[1] - region[0], region[3] - region[2])
    page.find_element(By.ID, "pan-right").click()
    moved = shown(page, lambda s: params(s).get("region", src) != params(src)["region"])
    x0 = int(params(moved)["region"].split(",")[1].split(":")[0])
    assert x0 > region[2]
    shot = tmp_path / "preview.png"
    assert page.save_screenshot(str(shot))
    assert Image.open(shot).size[0] > 0
    artefacts = os.environ.get("ATLASFS_TEST_ARTEFACTS")
    if artefacts:
        Path(artefacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artefacts) / "preview.png")


@pytest.mark.parametrize("query,status,named", [
    ("array=daily/nothing", 404, "daily/nothing"),
    ("array=daily", 404, "daily"),
    ("array=daily/sst&y=depth", 400, "depth"),
    ("array=daily/sst&x=lat&y=lat", 400, "lat"),
    ("array=daily/sst&index=time:8", 400, "time"),
    ("array=daily/sst&index=time:-1", 400, "time:-1"),
    ("array=daily/sst&index=level:0", 400, "level"),
    ("array=daily/sst&region=0:38,0:5", 400, "0:38"),
    ("array=daily/sst&cmap=rainbow", 400, "rainbow"),
    ("array=daily/lat", 400, "daily/lat"),
    ("y=lat", 400, "array"),
])
def test_bad_render_requests_name_what_is_wrong(server, query, status, named):
    got = requests.get(f"{server.url}/.atlas/render.png?{query}", timeout=60)
    assert got.status_code == status, got.text
    assert named in got.text and got.headers["Content-Type"].startswith("text/plain")


def test_a_pack_view_is_decoded_and_unpacked(server, daily):  # noqa: F811
    """The pack view's chunks are int16 + zstd with scale_factor/add_offset: the picture is the
    source's within one colour step (packing rounds to half a packing step)."""
    want = vf.open_daily(daily).sst.isel(time=2).values.astype("f8")
    vmin, vmax = np.nanmin(want), np.nanmax(want)
    got = requests.get(f"{server.url}/.atlas/render.png?array=packed/sst&index=time:2"
                       f"&vmin={float(vmin)!r}&vmax={float(vmax)!r}", timeout=60)
    assert got.status_code == 200, got.text
    pixels = decode_png(got.content)
    nan = np.isnan(want)
    assert (pixels[nan][:, 3] == 0).all() and (pixels[~nan][:, 3] == 255).all()
    table = {tuple(c): i for i, c in enumerate(VIRIDIS)}
    levels = np.array([table[tuple(p)] for p in pixels[~nan][:, :3]])
    t = np.clip((want[~nan] - vmin) / (vmax - vmin), 0, 1)
    assert np.abs(levels - np.floor(t * 255 + 0.5)).max() <= 1


def test_the_api_is_beside_the_keys(server):
    assert requests.get(f"{server.url}/.atlas/nothing", timeout=60).status_code == 404
    assert requests.get(f"{server.url}/daily/zarr.json", timeout=60).json()["node_type"] == "group"
    tree = requests.get(f"{server.url}/.atlas/tree?path=daily/sst", timeout=60).json()
    assert tree["shape"] == [vf.NTIME, vf.NLAT, vf.NLON] and tree["attrs"]["units"] == "K"
    assert requests.get(f"{server.url}/.atlas/tree?path=nope", timeout=60).status_code == 404


def test_a_failed_chunk_answers_as_its_key_does(atlasfs_bin, daily, tmp_path):  # noqa: F811
    """A source truncated under a running server: the picture that needs it is a 500 naming
    the file and chunk (the key space's status), the others still draw."""
    src = tmp_path / "src"
    src.mkdir()
    files = [shutil.copy(f, src) for f in sorted(daily)]
    config = vf.write_views_config(tmp_path / "atlasfs.toml",
                                   [vf.daily_entry(files)], [], cache_dir=tmp_path / "cache")
    server = Server(atlasfs_bin, config)
    try:
        victim = files[2]  # times 4 and 5
        with open(victim, "r+b") as f:
            f.truncate(os.path.getsize(victim) // 2)
        bad = requests.get(f"{server.url}/.atlas/render.png?array=daily/sst&index=time:4",
                           timeout=60)
        assert bad.status_code == 500, bad.text
        assert victim in bad.text and "daily/sst" in bad.text, bad.text
        good = requests.get(f"{server.url}/.atlas/render.png?array=daily/sst&index=time:0",
                            timeout=60)
        assert good.status_code == 200 and decode_png(good.content).shape == (vf.NLAT, vf.NLON, 4)
    finally:
        assert server.stop() == 0


def test_large_slices_are_means_of_square_blocks(atlasfs_bin, tmp_path):
    """A 2050 x 40 slice is drawn 684 x 14: each pixel the mean of a 3 x 3 block (NaN left
    out, a block of NaN transparent), the colour range the slice's own finite extremes."""
    ny, nx, step = 2050, 40, 3
    yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    values = (yy + 7 * xx).astype("f8")  # integers: block sums are exact
    values[:6, :6] = np.nan  # whole blocks missing
    values[10, 10] = np.nan  # one value of a block missing
    path = tmp_path / "tall.nc"
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("y", ny)
        ds.createDimension("x", nx)
        v = ds.createVariable("v", "f8", ("y", "x"), chunksizes=(500, 40), zlib=True)
        v[:] = values
    config = vf.write_views_config(tmp_path / "atlasfs.toml",
                                   [{"name": "tall", "files": str(path)}], [],
                                   cache_dir=tmp_path / "cache")
    server = Server(atlasfs_bin, config)
    try:
        got = requests.get(f"{server.url}/.atlas/render.png?array=tall/v", timeout=60)
        assert got.status_code == 200, got.text
        assert got.headers["X-Atlas-Step"] == str(step)
        vmin, vmax = np.nanmin(values), np.nanmax(values)
        assert float(got.headers["X-Atlas-Vmin"]) == vmin
        assert float(got.headers["X-Atlas-Vmax"]) == vmax
        rows, cols = -(-ny // step), -(-nx // step)
        padded = np.full((rows * step, cols * step), np.nan)
        padded[:ny, :nx] = values
        blocks = padded.reshape(rows, step, cols, step).swapaxes(1, 2).reshape(rows, cols, -1)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            means = np.nanmean(blocks, axis=2)
        pixels = decode_png(got.content)
        assert pixels.shape == (rows, cols, 4)
        np.testing.assert_array_equal(pixels, expected_rgba(means, vmin, vmax))
        assert pixels[0, 0, 3] == 0 and pixels[3, 3, 3] == 255
    finally:
        assert server.stop() == 0
