"""The independent reference for the DataTree, fix, pattern and catalog tests.

Expected values never come from atlasfs: each original file is read with netCDF4-python (raw,
encoded values and every attribute), the declared fixes are applied here with numpy/xarray
(``apply_fixes``, written from the fix-file contract, not from the product's code), the result
is decoded with ``xr.decode_cf`` (the decoding ``xr.open_dataset`` does), and aggregations are
built with xarray (``merge_union``, ``join_along``, ``stack_new_dims``).

``assert_equivalent`` compares such an expected dataset with one read through the mount:
names, dims, sizes, dtypes, values (NaN == NaN) and attributes; the ``history`` attribute is
checked separately (``check_history``): the original text is kept first, then
``atlasfs fix <n> (<file>): <action> ...`` lines naming exactly the (rule, action) pairs that
changed the variable (the words after the action are the product's own).
"""

from __future__ import annotations

import fnmatch
import re
import warnings

import netCDF4
import numpy as np
import xarray as xr

from conftest import assert_attrs_equal, dtype_class

ACTIONS = ("drop_vars", "rename", "flip", "coords", "scale", "cast", "fill_value", "time",
           "set_attrs", "drop_attrs", "promote_attrs")
HISTORY_LINE = re.compile(r"^atlasfs fix (\d+) \(([^)]+)\): (.+)$")


# --------------------------------------------------------------------------
# reading


def read_raw(path) -> xr.Dataset:
    """Every variable of a file's root group with its raw (encoded) values and all attributes,
    read with netCDF4-python (no masking, no scaling, no time decoding)."""
    with netCDF4.Dataset(path) as nc:
        nc.set_auto_maskandscale(False)
        variables = {}
        for name, v in nc.variables.items():
            values = np.array(v[...])
            attrs = {k: v.getncattr(k) for k in v.ncattrs()}
            variables[name] = xr.Variable(v.dimensions, values, attrs)
        gattrs = {k: nc.getncattr(k) for k in nc.ncattrs()}
    return xr.Dataset(variables, attrs=gattrs)


def decode(raw: xr.Dataset) -> xr.Dataset:
    """CF decoding as xr.open_dataset does it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xr.decode_cf(raw)


def open_mounted(path, **kw) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_zarr(str(path), chunks=None, **kw) as ds:
            return ds.load()


# --------------------------------------------------------------------------
# fixes, applied independently


class History:
    """Per variable: (rule number, action) pairs a fix certainly applied (``required``) and
    pairs an implementation may or may not record (``optional``)."""

    def __init__(self):
        self.required: dict[str, set] = {}
        self.optional: dict[str, set] = {}

    def add(self, var, rule_no, action, optional=False):
        (self.optional if optional else self.required).setdefault(var, set()).add((rule_no, action))

    def rename(self, old, new):
        for d in (self.required, self.optional):
            if old in d:
                d.setdefault(new, set()).update(d.pop(old))

    def drop(self, var):
        self.required.pop(var, None)
        self.optional.pop(var, None)

    def merged(self, other: "History") -> "History":
        """Other's pairs become optional here (variables taken from this file may or may not
        carry the history of the other files joined with it)."""
        out = History()
        for k, v in self.required.items():
            out.required[k] = set(v)
        for src in (self.optional, other.required, other.optional):
            for k, v in src.items():
                out.optional.setdefault(k, set()).update(v)
        return out


def rule_matches(rule: dict, keys: dict, relpath: str) -> bool:
    if "match" in rule and not all(str(keys.get(k)) == str(v) for k, v in rule["match"].items()):
        return False
    if "match_path" in rule and not fnmatch.fnmatchcase(relpath, rule["match_path"]):
        return False
    return True


def matching_rules(rules, keys: dict, relpath: str) -> list[int]:
    """1-based numbers of the rules matching a file."""
    return [i + 1 for i, r in enumerate(rules) if rule_matches(r, keys, relpath)]


def _same_kind(value, dtype):
    return np.asarray(value).astype(dtype)[()]


def apply_fixes(ds: xr.Dataset, rules, keys: dict, relpath: str, concat_dim=None):
    """The fix rules applied to one raw file (as read by ``read_raw``), in rule order and, within
    a rule, in the contract's action order.  Returns (dataset, History)."""
    hist = History()
    for number, rule in enumerate(rules, start=1):
        unknown = set(rule) - set(ACTIONS) - {"match", "match_path"}
        assert not unknown, f"reference does not know {unknown}"
        if not rule_matches(rule, keys, relpath):
            continue
        if "drop_vars" in rule:
            present = [v for v in rule["drop_vars"] if v in ds.variables]
            ds = ds.drop_vars(present)
            for v in present:
                hist.drop(v)
        if "rename" in rule:
            for old, new in rule["rename"].items():
                if old not in ds.variables and old not in ds.dims:
                    continue
                users = [n for n, v in ds.variables.items() if old in v.dims and n != old]
                is_var = old in ds.variables
                ds = ds.rename({old: new})
                hist.rename(old, new)
                if is_var:
                    hist.add(new, number, "rename")
                for u in users:
                    hist.add(u, number, "rename", optional=True)
        if "flip" in rule:
            for dim in rule["flip"]:
                ds = ds.isel({dim: slice(None, None, -1)})
                for n, v in ds.variables.items():
                    if dim in v.dims:
                        hist.add(n, number, "flip")
        if "coords" in rule:
            for name, spec in rule["coords"].items():
                var = ds.variables[name]
                n = var.shape[0]
                if isinstance(spec, dict):
                    values = spec["start"] + spec["step"] * np.arange(n, dtype="f8")
                else:
                    values = np.asarray(spec, dtype="f8")
                    assert values.shape == (n,)
                values = values.astype(var.dtype) if var.dtype.kind == "f" else values
                ds = ds.assign_coords({name: xr.Variable(var.dims, values, var.attrs)})
                hist.add(name, number, "coords")
        if "scale" in rule:
            for name, factor in rule["scale"].items():
                var = ds.variables[name]
                vals = np.asarray(var.values)
                if vals.dtype.kind in "iu":
                    new = vals.astype("f8") * float(factor)
                else:
                    new = (vals * factor).astype(vals.dtype)
                ds = _replace(ds, name, xr.Variable(var.dims, new, var.attrs))
                hist.add(name, number, "scale")
        if "cast" in rule:
            for name, dtype in rule["cast"].items():
                var = ds.variables[name]
                ds = _replace(ds, name, xr.Variable(var.dims, var.values.astype(dtype), var.attrs))
                hist.add(name, number, "cast")
        if "fill_value" in rule:
            for name, fill in rule["fill_value"].items():
                var = ds.variables[name]
                attrs = dict(var.attrs)
                attrs["_FillValue"] = _same_kind(fill, var.dtype)
                ds = _replace(ds, name, xr.Variable(var.dims, var.values, attrs))
                hist.add(name, number, "fill_value")
        if "time" in rule:
            targets = ["time"]
            bounds = ds["time"].attrs.get("bounds")
            if bounds in ds.variables:
                targets.append(bounds)
            for i, name in enumerate(targets):
                var = ds.variables[name]
                attrs = dict(var.attrs)
                if i == 0 or "units" in attrs or "calendar" in attrs:
                    attrs.update(rule["time"])
                ds = _replace(ds, name, xr.Variable(var.dims, var.values, attrs))
                hist.add(name, number, "time", optional=i > 0)
        if "set_attrs" in rule:
            for name, attrs_new in rule["set_attrs"].items():
                if name == ".":
                    ds.attrs.update(attrs_new)
                    continue
                var = ds.variables[name]
                attrs = dict(var.attrs)
                attrs.update(attrs_new)
                ds = _replace(ds, name, xr.Variable(var.dims, var.values, attrs))
                hist.add(name, number, "set_attrs")
        if "drop_attrs" in rule:
            for name, names in rule["drop_attrs"].items():
                if name == ".":
                    ds.attrs = {k: v for k, v in ds.attrs.items() if k not in names}
                    continue
                var = ds.variables[name]
                present = [a for a in names if a in var.attrs]
                attrs = {k: v for k, v in var.attrs.items() if k not in names}
                ds = _replace(ds, name, xr.Variable(var.dims, var.values, attrs))
                hist.add(name, number, "drop_attrs", optional=not present)
        if "promote_attrs" in rule:
            for attr, name in rule["promote_attrs"].items():
                value = ds.attrs[attr]
                if concat_dim is not None and concat_dim in ds.dims:
                    values = np.full(ds.sizes[concat_dim], value,
                                     dtype=object if isinstance(value, str) else None)
                    ds[name] = xr.Variable((concat_dim,), values)
                else:
                    ds[name] = xr.Variable((), np.array(value, dtype=object)
                                           if isinstance(value, str) else np.asarray(value))
                hist.add(name, number, "promote_attrs", optional=True)
    return ds, hist


def _replace(ds: xr.Dataset, name: str, var: xr.Variable) -> xr.Dataset:
    if name in ds.dims and ds.variables[name].dims == (name,):
        return ds.assign_coords({name: var})
    ds = ds.copy()
    ds[name] = var
    return ds


def load_fixed(path, rules=(), keys=None, relpath="", concat_dim=None):
    """One file: read raw, fixed, decoded.  Returns (dataset, History)."""
    raw = read_raw(path)
    fixed, hist = apply_fixes(raw, rules, keys or {}, relpath, concat_dim)
    return decode(fixed), hist


# --------------------------------------------------------------------------
# aggregation, independently


def merge_union(datasets, hists=None):
    """Union of variables; a variable present in several datasets comes from the first.
    Global attributes from the first."""
    out = datasets[0].copy()
    hist = hists[0] if hists else History()
    for i, ds in enumerate(datasets[1:], start=1):
        for name in ds.variables:
            if name not in out.variables:
                out[name] = ds.variables[name]
                if hists:
                    for d_from, d_to in ((hists[i].required, hist.required),
                                         (hists[i].optional, hist.optional)):
                        if name in d_from:
                            d_to.setdefault(name, set()).update(d_from[name])
    return out, hist


def join_along(datasets, dim: str, hists=None):
    """Join along an existing dimension, ordered by its first coordinate value; variables
    without the dimension come from the first (open_mfdataset's minimal/override)."""
    order = sorted(range(len(datasets)), key=lambda i: datasets[i][dim].values[0])
    ordered = [datasets[i] for i in order]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        joined = xr.concat(ordered, dim=dim, data_vars="minimal", coords="minimal",
                           compat="override", join="exact", combine_attrs="override")
    hist = None
    if hists:
        hist = hists[order[0]]
        for i in order[1:]:
            hist = hist.merged(hists[i])
    return joined, hist


def stack_new_dims(cells: dict, dims: list[str], coords: dict[str, np.ndarray],
                   template: xr.Dataset, fill=np.nan) -> xr.Dataset:
    """NcML joinNew over a grid of cells.  ``cells``: tuple of coordinate values (in ``dims``
    order) -> decoded dataset (absent = a gap); ``coords``: dim -> sorted coordinate values;
    ``template``: the first present cell, whose coordinate variables, bounds and grid mappings
    are kept unchanged.  Data variables get the new dims prepended; gaps read as ``fill``."""
    shape = tuple(len(coords[d]) for d in dims)
    out = xr.Dataset(attrs=template.attrs)
    keep = set()
    for name, var in template.variables.items():
        if var.dims == (name,):
            keep.add(name)
            b = var.attrs.get("bounds")
            if b:
                keep.add(b)
        if "grid_mapping_name" in var.attrs and var.ndim == 0:
            keep.add(name)
    for name in keep:
        if name in template.variables:
            out[name] = template.variables[name]
    for name, var in template.variables.items():
        if name in keep:
            continue
        if var.dtype.kind == "f":
            data = np.full(shape + var.shape, fill, dtype=var.dtype)
        else:
            data = np.zeros(shape + var.shape, dtype=var.dtype)
        for idx in np.ndindex(*shape):
            key = tuple(coords[d][i] for d, i in zip(dims, idx))
            if key in cells:
                data[idx] = cells[key].variables[name].values
        out[name] = xr.Variable(tuple(dims) + var.dims, data, var.attrs)
    for d in dims:
        out = out.assign_coords({d: coords[d]})
    return out


# --------------------------------------------------------------------------
# comparing


def values_equal(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        return np.array_equal(a, b, equal_nan=True)
    if a.dtype.kind in "OUST" or b.dtype.kind in "OUST":
        return [str(x) for x in a.ravel()] == [str(x) for x in b.ravel()]
    return np.array_equal(a, b)


def assert_equivalent(expected: xr.Dataset, got: xr.Dataset, where: str, *,
                      hist: History | None = None, fix_file: str | None = None,
                      global_attrs=True, close=()) -> None:
    """``got`` (read through the mount, decoded) equals ``expected`` (the reference, decoded):
    variable names, coordinate names, dims, sizes, dtypes, values and attributes (``history``
    is checked with ``check_history`` when ``hist`` is given; it is never compared as text).
    ``close``: variables compared to 1 microsecond (datetimes re-encoded by a join)."""
    ev, gv = set(expected.variables), set(got.variables)
    assert ev == gv, f"{where}: variables differ: missing {sorted(ev - gv)}, extra {sorted(gv - ev)}"
    assert set(expected.coords) == set(got.coords), (
        f"{where}: coordinates {sorted(expected.coords)} vs {sorted(got.coords)}")
    assert dict(expected.sizes) == dict(got.sizes), (
        f"{where}: sizes {dict(expected.sizes)} vs {dict(got.sizes)}")
    if global_attrs:
        assert_attrs_equal(_no_history(expected.attrs), _no_history(got.attrs),
                           f"{where}: global attributes")
    for name in expected.variables:
        e, g = expected.variables[name], got.variables[name]
        w = f"{where}: variable {name!r}"
        assert e.dims == g.dims, f"{w}: dims {e.dims} vs {g.dims}"
        assert dtype_class(e.values) == dtype_class(g.values), f"{w}: dtype {e.dtype} vs {g.dtype}"
        if name in close and e.dtype.kind == "M":
            gap = np.abs(e.values - g.values).max() if e.size else np.timedelta64(0)
            assert gap <= np.timedelta64(1, "us"), f"{w}: values off by {gap}"
        else:
            assert values_equal(e.values, g.values), (
                f"{w}: values differ\nexpected:\n{e.values}\ngot:\n{g.values}")
        assert_attrs_equal(_no_history(e.attrs), _no_history(g.attrs), w)
        if hist is not None:
            check_history(e.attrs.get("history"), g.attrs.get("history"),
                          hist.required.get(name, set()), hist.optional.get(name, set()),
                          fix_file, w)


def _no_history(attrs: dict) -> dict:
    return {k: v for k, v in attrs.items() if k != "history"}


def parse_history(text: str | None, fix_file: str | None = None, where: str = "") -> list:
    """(rule number, description) of each ``atlasfs fix <n> (<file>): <description>`` line of a
    history attribute; other lines are ignored."""
    entries = []
    for line in (text or "").split("\n"):
        if not line.startswith("atlasfs fix"):
            continue
        m = HISTORY_LINE.match(line)
        assert m, f"{where}: malformed history line {line!r}"
        if fix_file is not None:
            assert m.group(2) == fix_file, f"{where}: history names {m.group(2)!r}, not {fix_file!r}"
        assert m.group(3).strip(), f"{where}: history line says nothing: {line!r}"
        entries.append((int(m.group(1)), m.group(3)))
    return entries


def history_rules(attrs: dict) -> set:
    """Rule numbers an ``atlasfs fix`` history line names."""
    return {n for n, _ in parse_history(attrs.get("history"))}


def check_history(original: str | None, got: str | None, required: set, optional: set,
                  fix_file: str | None, where: str) -> None:
    """The mount's ``history`` keeps the original text first, then has ``atlasfs fix <n>
    (<file>): <action> ...`` lines: every (rule, action) of ``required`` appears, and nothing
    outside ``required | optional`` does (the words after the action are the product's own)."""
    if original:
        assert got is not None and got.startswith(original), (
            f"{where}: the original history {original!r} is not kept at the start of {got!r}")
        rest = got[len(original):]
    else:
        rest = got or ""
    found = set()
    for n, description in parse_history(rest, fix_file, where):
        action = description.split()[0]
        assert action in ACTIONS, (
            f"{where}: history line {description!r} of rule {n} does not start with an action")
        found.add((n, action))
    assert required <= found, f"{where}: history {got!r} lacks fixes {sorted(required - found)}"
    assert found <= required | optional, (
        f"{where}: history {got!r} records fixes that did not change it: "
        f"{sorted(found - required - optional)}")
    if not required and not optional and not original:
        assert not got, f"{where}: a variable no fix changed has history {got!r}"
