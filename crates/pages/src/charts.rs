//! Bar charts as SVG, drawn on the server by `plotters` (its SVG backend alone: no fonts, no
//! bitmaps), to be put inline in a page.

use plotters::prelude::*;

/// A vertical bar chart of `bars` (label, value), `width` × `height` pixels, as an SVG document.
pub(crate) fn bars(caption: &str, bars: &[(String, i64)], width: u32, height: u32) -> String {
    let mut svg = String::new();
    if let Err(error) = draw(&mut svg, caption, bars, width, height) {
        tracing::warn!(%error, "drawing a chart failed");
        return String::new();
    }
    svg
}

fn draw(
    svg: &mut String,
    caption: &str,
    bars: &[(String, i64)],
    width: u32,
    height: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    // The SVG backend escapes text itself.
    let labels: Vec<String> = bars.iter().map(|(l, _)| l.clone()).collect();
    let top = bars.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    // A segmented range of n values draws n + 1 slots: the last value is the last bar.
    let last = (bars.len().max(2) - 1) as u32;
    {
        let root = SVGBackend::with_string(svg, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((0u32..last).into_segmented(), 0i64..top + top / 10 + 1)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(bars.len().max(1))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                    labels.get(*i as usize).cloned().unwrap_or_default()
                }
                SegmentValue::Last => String::new(),
            })
            .label_style(("sans-serif", 12))
            .draw()?;
        chart.draw_series(
            Histogram::vertical(&chart)
                .style(RGBColor(31, 95, 168).filled())
                .margin(6)
                .data(bars.iter().enumerate().map(|(i, (_, v))| (i as u32, *v))),
        )?;
        root.present()?;
    }
    Ok(())
}
