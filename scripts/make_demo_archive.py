#!/usr/bin/env python3
"""Writes a small demo archive: one NetCDF-4 file per day of a synthetic sea-surface temperature,
chunked and compressed like real L4 products, with land masked as _FillValue. Half the files use
"days since 1981-01-01" and half "hours since 2000-01-01", as archives assembled over years do."""
import argparse
import datetime
import os

import netCDF4
import numpy as np

p = argparse.ArgumentParser(description=__doc__)
p.add_argument("out")
p.add_argument("--days", type=int, default=60)
p.add_argument("--ny", type=int, default=180)
p.add_argument("--nx", type=int, default=360)
a = p.parse_args()
os.makedirs(a.out, exist_ok=True)
lat = np.linspace(-90 + 90 / a.ny, 90 - 90 / a.ny, a.ny)
lon = np.linspace(-180 + 180 / a.nx, 180 - 180 / a.nx, a.nx)
LON, LAT = np.meshgrid(lon, lat)
land = (np.sin(np.radians(LON) * 3) * np.cos(np.radians(LAT) * 2)) > 0.6
rng = np.random.default_rng(0)
start = datetime.date(2021, 1, 1)
for i in range(a.days):
    day = start + datetime.timedelta(days=i)
    path = os.path.join(a.out, f"sst_{day:%Y%m%d}.nc")
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("time", None)
        ds.createDimension("lat", a.ny)
        ds.createDimension("lon", a.nx)
        t = ds.createVariable("time", "f8", ("time",))
        t.standard_name = "time"
        t.calendar = "standard"
        if i % 2:
            t.units = "hours since 2000-01-01 00:00:00"
            t[:] = [(day - datetime.date(2000, 1, 1)).days * 24.0]
        else:
            t.units = "days since 1981-01-01"
            t[:] = [(day - datetime.date(1981, 1, 1)).days]
        y = ds.createVariable("lat", "f4", ("lat",))
        y.units = "degrees_north"
        y[:] = lat
        x = ds.createVariable("lon", "f4", ("lon",))
        x.units = "degrees_east"
        x[:] = lon
        v = ds.createVariable("sst", "f4", ("time", "lat", "lon"), zlib=True, shuffle=True,
                              chunksizes=(1, a.ny // 2, a.nx // 2), fill_value=np.float32(-999.0))
        v.units = "K"
        v.standard_name = "sea_surface_temperature"
        field = 288 + 12 * np.cos(np.radians(LAT)) + 2 * np.sin(np.radians(LON + 3 * i))
        field = (field + rng.normal(0, 0.3, LAT.shape)).astype("f4")
        field[land] = np.nan
        v[0] = np.ma.masked_invalid(field)
        ds.title = "atlasfs demo: synthetic daily SST"
print(f"wrote {a.days} files to {a.out}")
