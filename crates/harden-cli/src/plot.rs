//! SVG plots of evaluation results.

use std::path::Path;

use anyhow::{Result, anyhow};
use harden_adversarial::suite::CurvePoint;
use plotters::prelude::*;

/// Robust accuracy against eps as a line with points, written as SVG to `path`.
pub fn robustness_svg(path: &Path, points: &[CurvePoint], suite: &str) -> Result<()> {
    let max_eps = points
        .iter()
        .map(|p| p.eps)
        .fold(0.0f64, f64::max)
        .max(1e-6);
    let root = SVGBackend::new(path, (640, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("Robust accuracy ({suite})"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..max_eps * 1.05, 0.0..1.0)
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("eps")
        .y_desc("robust accuracy")
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| a.eps.total_cmp(&b.eps));
    let series: Vec<(f64, f64)> = sorted.iter().map(|p| (p.eps, p.robust_accuracy)).collect();
    chart
        .draw_series(LineSeries::new(series.clone(), &BLUE))
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .draw_series(
            series
                .iter()
                .map(|&(x, y)| Circle::new((x, y), 4, BLUE.filled())),
        )
        .map_err(|e| anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}
