//! (regrid: separable rectilinear part, being written)
