//! Pictures as PNG: a plane of values coloured through a [`Colormap`] (RGBA, NaN
//! transparent), and the colour bar of a map. Knows nothing of arrays or HTTP.

use super::colormap::Colormap;
use super::render::Plane;

/// Pixel rows of a colour bar.
const BAR_ROWS: usize = 12;

/// `plane` as an RGBA PNG, `vmin` the first colour of `map` and `vmax` the last.
///
/// # Errors
/// The encoder's error.
pub(crate) fn picture(
    plane: &Plane,
    map: Colormap,
    vmin: f64,
    vmax: f64,
) -> Result<Vec<u8>, png::EncodingError> {
    let pixels: Vec<u8> = plane
        .values
        .iter()
        .flat_map(|&v| map.rgba(v, vmin, vmax))
        .collect();
    encode(plane.cols, plane.rows, &pixels)
}

/// The colour bar of `map`: its 256 entries from left to right, [`BAR_ROWS`] rows high.
///
/// # Errors
/// The encoder's error.
pub(crate) fn colour_bar(map: Colormap) -> Result<Vec<u8>, png::EncodingError> {
    let row: Vec<u8> = (0..=255u8)
        .flat_map(|l| {
            let [r, g, b] = map.rgb(l);
            [r, g, b, 255]
        })
        .collect();
    encode(256, BAR_ROWS, &row.repeat(BAR_ROWS))
}

/// RGBA `pixels` of a `width × height` picture as PNG.
fn encode(width: usize, height: usize, pixels: &[u8]) -> Result<Vec<u8>, png::EncodingError> {
    let width = u32::try_from(width).map_err(|_| png::EncodingError::LimitsExceeded)?;
    let height = u32::try_from(height).map_err(|_| png::EncodingError::LimitsExceeded)?;
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(pixels)?;
    writer.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    #[test]
    fn pictures_are_coloured_rgba_with_nan_transparent() {
        let plane = Plane {
            rows: 1,
            cols: 3,
            values: vec![0.0, f64::NAN, 1.0],
            step: 1,
            range: Some((0.0, 1.0)),
        };
        let (w, h, px) = decode(&picture(&plane, Colormap::Viridis, 0.0, 1.0).unwrap());
        assert_eq!((w, h), (3, 1));
        assert_eq!(&px[0..4], &[68, 1, 84, 255]);
        assert_eq!(px[7], 0);
        assert_eq!(&px[8..12], &[253, 231, 37, 255]);
    }

    #[test]
    fn the_colour_bar_runs_through_the_map() {
        let (w, h, px) = decode(&colour_bar(Colormap::Gray).unwrap());
        assert_eq!((w, h), (256, BAR_ROWS as u32));
        assert_eq!(&px[4 * 200..4 * 201], &[200, 200, 200, 255]);
    }
}
