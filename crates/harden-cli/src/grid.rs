//! A PNG grid of clean inputs, adversarial inputs and their amplified perturbations.
//!
//! Each row is one sample: the clean image with its predicted class, the adversarial image
//! with its predicted class (green when correct, red when wrong), and the perturbation mapped
//! to grey (`0.5 + delta / (2 eps)`: mid-grey is unchanged, white `+eps`, black `-eps`).
//! Class numbers are drawn with a 3x5 pixel font written here: plotters' bitmap text needs a
//! font file at run time, which a headless machine may not have.

use std::path::Path;

use anyhow::{Context, Result};

/// 3x5 glyphs of the digits 0-9, one row per `u8` (low 3 bits, leftmost pixel highest).
const DIGITS: [[u8; 5]; 10] = [
    [0b111, 0b101, 0b101, 0b101, 0b111],
    [0b010, 0b110, 0b010, 0b010, 0b111],
    [0b111, 0b001, 0b111, 0b100, 0b111],
    [0b111, 0b001, 0b111, 0b001, 0b111],
    [0b101, 0b101, 0b111, 0b001, 0b001],
    [0b111, 0b100, 0b111, 0b001, 0b111],
    [0b111, 0b100, 0b111, 0b101, 0b111],
    [0b111, 0b001, 0b010, 0b010, 0b010],
    [0b111, 0b101, 0b111, 0b101, 0b111],
    [0b111, 0b101, 0b111, 0b001, 0b111],
];

const GREEN: [u8; 3] = [40, 170, 60];
const RED: [u8; 3] = [210, 40, 40];
const INK: [u8; 3] = [20, 20, 20];

/// One row of the grid.
pub struct Row<'a> {
    /// Clean image `[C, H, W]`, values in `[0, 1]`.
    pub clean: &'a [f32],
    /// Adversarial image, same layout.
    pub adversarial: &'a [f32],
    /// True class.
    pub label: usize,
    /// Predicted class of the clean image.
    pub clean_prediction: usize,
    /// Predicted class of the adversarial image.
    pub adversarial_prediction: usize,
}

struct Canvas {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Canvas {
    fn put(&mut self, x: usize, y: usize, color: [u8; 3]) {
        if x < self.width && y < self.height {
            let i = 3 * (y * self.width + x);
            self.rgb[i..i + 3].copy_from_slice(&color);
        }
    }

    /// Draws image `[C, H, W]` (C = 1 or 3) scaled by `scale` at `(x0, y0)`; `map` turns a
    /// value into `[0, 1]`.
    #[allow(clippy::too_many_arguments)]
    fn image(
        &mut self,
        x0: usize,
        y0: usize,
        shape: [usize; 3],
        values: &[f32],
        scale: usize,
        map: impl Fn(f32) -> f32,
    ) {
        let [c, h, w] = shape;
        for y in 0..h {
            for x in 0..w {
                let channel = |k: usize| {
                    let v = values[(k.min(c - 1) * h + y) * w + x];
                    (map(v).clamp(0.0, 1.0) * 255.0).round() as u8
                };
                let color = [channel(0), channel(1), channel(2)];
                for dy in 0..scale {
                    for dx in 0..scale {
                        self.put(x0 + x * scale + dx, y0 + y * scale + dy, color);
                    }
                }
            }
        }
    }

    /// Draws `number` with the 3x5 font at `(x0, y0)`, each font pixel `size` pixels wide.
    fn number(&mut self, x0: usize, y0: usize, number: usize, size: usize, color: [u8; 3]) {
        for (i, ch) in number.to_string().bytes().enumerate() {
            let glyph = DIGITS[usize::from(ch - b'0')];
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..3 {
                    if bits & (0b100 >> col) != 0 {
                        for dy in 0..size {
                            for dx in 0..size {
                                self.put(
                                    x0 + (i * 4 + col) * size + dx,
                                    y0 + row * size + dy,
                                    color,
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Writes the grid of `rows` (images of `shape` `[C, H, W]`, C = 1 or 3) to `path`.
///
/// # Errors
///
/// The I/O or encoding error of writing the PNG.
pub fn write_png(path: &Path, shape: [usize; 3], rows: &[Row<'_>], eps: f64) -> Result<()> {
    let [_, h, w] = shape;
    let scale = (96 / w.max(h)).max(1);
    let (tile_w, tile_h) = (w * scale, h * scale);
    let font = 2;
    let label_h = 5 * font + 6;
    let gap = 6;
    let width = 3 * tile_w + 4 * gap;
    let height = rows.len() * (tile_h + label_h + gap) + gap;
    let mut canvas = Canvas {
        width,
        height,
        rgb: vec![255; width * height * 3],
    };
    let eps = eps.max(f64::MIN_POSITIVE) as f32;
    for (r, row) in rows.iter().enumerate() {
        let y = gap + r * (tile_h + label_h + gap);
        let columns = [gap, 2 * gap + tile_w, 3 * gap + 2 * tile_w];
        canvas.image(columns[0], y, shape, row.clean, scale, |v| v);
        canvas.image(columns[1], y, shape, row.adversarial, scale, |v| v);
        let delta: Vec<f32> = row
            .adversarial
            .iter()
            .zip(row.clean)
            .map(|(a, c)| a - c)
            .collect();
        canvas.image(columns[2], y, shape, &delta, scale, |d| {
            0.5 + d / (2.0 * eps)
        });
        let color = |p: usize| if p == row.label { GREEN } else { RED };
        let text_y = y + tile_h + 3;
        canvas.number(
            columns[0],
            text_y,
            row.clean_prediction,
            font,
            color(row.clean_prediction),
        );
        canvas.number(
            columns[1],
            text_y,
            row.adversarial_prediction,
            font,
            color(row.adversarial_prediction),
        );
        canvas.number(columns[2], text_y, row.label, font, INK);
    }
    harden_model::atomic::write_with::<anyhow::Error>(path, |tmp| {
        let file = std::fs::File::create(tmp)?;
        let mut encoder =
            png::Encoder::new(std::io::BufWriter::new(file), width as u32, height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&canvas.rgb)?;
        writer.finish()?;
        Ok(())
    })
    .with_context(|| format!("writing {}", path.display()))
}
