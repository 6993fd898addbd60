//! Bar charts as SVG, drawn on the server by `plotters` (its SVG backend alone: no fonts, no
//! bitmaps), to be put inline in a page.

use plotters::prelude::*;

/// A vertical bar chart of `bars` (label, value), `width` × `height` pixels, as an SVG document.
pub(crate) fn bars(caption: &str, bars: &[(String, i64)], width: u32, height: u32) -> String {
    svg_of(|svg| draw(svg, caption, bars, width, height))
}

/// What `draw` writes, or nothing (and a warning) when drawing fails.
fn svg_of(draw: impl FnOnce(&mut String) -> Result<(), Box<dyn std::error::Error>>) -> String {
    let mut svg = String::new();
    if let Err(error) = draw(&mut svg) {
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

/// A line chart of several `series` (name, one value per label, colour) over `labels` (months,
/// say), `width` × `height` pixels, with a legend, as an SVG document.
pub(crate) fn lines(
    caption: &str,
    labels: &[String],
    series: &[(&str, Vec<i64>, RGBColor)],
    width: u32,
    height: u32,
) -> String {
    svg_of(|svg| draw_lines(svg, caption, labels, series, width, height))
}

fn draw_lines(
    svg: &mut String,
    caption: &str,
    labels: &[String],
    series: &[(&str, Vec<i64>, RGBColor)],
    width: u32,
    height: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let top = series
        .iter()
        .flat_map(|(_, values, _)| values.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let last = labels.len().max(2) - 1;
    // About a dozen labels on the axis, whatever the number of months.
    let step = labels.len().div_ceil(12).max(1);
    {
        let root = SVGBackend::with_string(svg, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .margin_right(40)
            .build_cartesian_2d(0usize..last, 0i64..top + top / 10 + 1)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(labels.len().div_ceil(step).max(2))
            .x_label_formatter(&|i| {
                if i % step == 0 {
                    labels.get(*i).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .label_style(("sans-serif", 12))
            .draw()?;
        for (name, values, colour) in series {
            let colour = *colour;
            chart
                .draw_series(LineSeries::new(
                    values.iter().enumerate().map(|(i, v)| (i, *v)),
                    colour.stroke_width(2),
                ))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .draw()?;
        root.present()?;
    }
    Ok(())
}
