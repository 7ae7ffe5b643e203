//! Bar charts as inline SVG, drawn here: no charting library, no request. Colours come
//! from the page's stylesheet (classes), so they follow light and dark mode and print.

use super::{esc, grouped};

const WIDTH: u32 = 560;
const LABEL: u32 = 250;
const ROW: u32 = 26;
const BAR_MAX: u32 = 230;

/// Horizontal bars: one row per (label, value, CSS class). `title` names the chart for
/// screen readers; each bar also carries its number as text.
pub(crate) fn bars(id: &str, title: &str, rows: &[(String, u64, String)]) -> String {
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let height = ROW * rows.len() as u32 + 8;
    let mut s = format!(
        "<svg id=\"{id}\" class=\"bars\" role=\"img\" aria-labelledby=\"{id}-t\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\"><title id=\"{id}-t\">{}: {}</title>",
        esc(title),
        rows.iter()
            .map(|(l, n, _)| format!("{} {}", esc(l), grouped(*n)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (i, (label, n, class)) in rows.iter().enumerate() {
        let y = 4 + ROW * i as u32;
        // A bar of at least 2 px where the value is not zero, so it is seen.
        let w = if *n == 0 {
            0
        } else {
            ((*n as f64 / max as f64) * f64::from(BAR_MAX))
                .round()
                .max(2.0) as u32
        };
        s.push_str(&format!(
            "<text class=\"label\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect class=\"bar {}\" x=\"{LABEL}\" y=\"{}\" width=\"{w}\" height=\"{}\" rx=\"2\"/><text class=\"value\" x=\"{}\" y=\"{}\">{}</text>",
            LABEL - 8,
            y + ROW / 2 + 4,
            esc(label),
            esc(class),
            y + 3,
            ROW - 8,
            LABEL + w + 6,
            y + ROW / 2 + 4,
            grouped(*n),
        ));
    }
    s.push_str("</svg>");
    s
}
