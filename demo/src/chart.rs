//! The timeline chart of a demo run, as a self-contained SVG written by hand
//! (a few rectangles and polylines; no plotting dependency).
//!
//! Three panels share the time axis: latency p50/p99 (log scale; with, in
//! the deadline phases, auth-svc's work past each request's deadline, mean
//! per request), outcomes
//! per second (stacked bars) with the calls that reached `auth-svc`, and the
//! state of each breaker of `profile-svc`. Dashed lines mark the phases.

use std::fmt::Write;

/// One second of the run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Point {
    /// Seconds since the load started, at the end of this second.
    pub t: f64,
    /// Full profiles.
    pub ok: u64,
    /// Degraded profiles.
    pub degraded: u64,
    /// 503 circuit open.
    pub unavailable: u64,
    /// Other failures.
    pub error: u64,
    /// Median latency, milliseconds.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: Option<f64>,
    /// `auth-svc` breaker state in profile-svc (`closed`, `open`, `half-open`).
    pub auth_state: Option<String>,
    /// `chat-svc` breaker state in profile-svc.
    pub chat_state: Option<String>,
    /// Requests that reached `auth-svc` during this second.
    pub auth_calls: u64,
    /// For the requests with a budget whose deadline fell in this second:
    /// `auth-svc`'s work past that deadline, mean per request, milliseconds.
    pub auth_late_ms: Option<f64>,
    /// The same, per replica of `auth-svc` (empty or one: not drawn).
    pub auth_replicas: Vec<u64>,
}

/// A phase of the scenario, in seconds since the load started.
#[derive(Clone, Debug, PartialEq)]
pub struct PhaseSpan {
    /// Its name.
    pub name: String,
    /// Start.
    pub start: f64,
    /// End.
    pub end: f64,
}

const WIDTH: f64 = 960.0;
const LEFT: f64 = 95.0;
const RIGHT: f64 = 20.0;
const LAT_TOP: f64 = 50.0;
const LAT_BOTTOM: f64 = 220.0;
const OUT_TOP: f64 = 250.0;
const OUT_BOTTOM: f64 = 420.0;
const STATE_TOP: f64 = 445.0;
const STATE_ROW: f64 = 22.0;
const HEIGHT: f64 = 580.0;
const LAT_MIN_MS: f64 = 0.5;
const LAT_MAX_MS: f64 = 5000.0;

const OK: &str = "#2ca02c";
const DEGRADED: &str = "#ff9f1c";
const UNAVAILABLE: &str = "#d62728";
const ERROR: &str = "#7b1fa2";
const HALF_OPEN: &str = "#f0c419";
const UNKNOWN: &str = "#bbbbbb";
const LATE: &str = "#8c564b";
/// The requests per auth replica.
const REPLICA_COLORS: [&str; 4] = ["#1f77b4", "#17becf", "#e377c2", "#7f7f7f"];

/// Renders the chart. `title` is escaped.
pub fn render(title: &str, points: &[Point], phases: &[PhaseSpan]) -> String {
    let t_max = phases
        .iter()
        .map(|p| p.end)
        .chain(points.iter().map(|p| p.t))
        .fold(1.0_f64, f64::max);
    let x = |t: f64| LEFT + (t / t_max).clamp(0.0, 1.0) * (WIDTH - LEFT - RIGHT);
    let lat_y = |ms: f64| {
        let ms = ms.clamp(LAT_MIN_MS, LAT_MAX_MS);
        let f = (ms.log10() - LAT_MIN_MS.log10()) / (LAT_MAX_MS.log10() - LAT_MIN_MS.log10());
        LAT_BOTTOM - f * (LAT_BOTTOM - LAT_TOP)
    };
    let max_rate = points
        .iter()
        .map(|p| p.ok + p.degraded + p.unavailable + p.error)
        .max()
        .unwrap_or(0)
        .max(10) as f64
        * 1.1;
    let rate_y = |n: f64| OUT_BOTTOM - (n / max_rate) * (OUT_BOTTOM - OUT_TOP);
    let bar_w = (x(1.0) - x(0.0)).max(1.0);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/><text x="{LEFT}" y="20" font-size="14" font-weight="bold">{}</text>"#,
        escape(title)
    );

    // Phases: shaded alternately, dashed boundaries, names on top.
    for (i, phase) in phases.iter().enumerate() {
        let (x0, x1) = (x(phase.start), x(phase.end));
        if i % 2 == 1 {
            let _ = writeln!(
                svg,
                r##"<rect x="{x0:.1}" y="{LAT_TOP}" width="{:.1}" height="{:.1}" fill="#f3f3f3"/>"##,
                x1 - x0,
                STATE_TOP + 2.0 * STATE_ROW - LAT_TOP
            );
        }
        let _ = writeln!(
            svg,
            r##"<line x1="{x0:.1}" y1="{}" x2="{x0:.1}" y2="{}" stroke="#888" stroke-dasharray="4 3"/><text x="{:.1}" y="{}" fill="#333">{}</text>"##,
            LAT_TOP - 12.0,
            STATE_TOP + 2.0 * STATE_ROW,
            x0 + 3.0,
            LAT_TOP - 3.0,
            escape(&phase.name)
        );
    }

    // Panel 1: latency.
    for ms in [1.0, 10.0, 100.0, 1000.0] {
        let y = lat_y(ms);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e0e0e0"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 5.0,
            y + 4.0,
            if ms >= 1000.0 {
                format!("{}s", ms / 1000.0)
            } else {
                format!("{ms}ms")
            }
        );
    }
    axis_label(&mut svg, (LAT_TOP + LAT_BOTTOM) / 2.0, "latency");
    for (values, color, dash) in [
        (
            points.iter().map(|p| (p.t, p.p99_ms)).collect::<Vec<_>>(),
            "#1f77b4",
            "4 2",
        ),
        (
            points.iter().map(|p| (p.t, p.p50_ms)).collect::<Vec<_>>(),
            "#1f77b4",
            "",
        ),
    ] {
        let coords: Vec<String> = values
            .iter()
            .filter_map(|&(t, v)| v.map(|v| format!("{:.1},{:.1}", x(t - 0.5), lat_y(v))))
            .collect();
        if !coords.is_empty() {
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/>"#,
                coords.join(" ")
            );
        }
    }
    // auth-svc's work past the requests' deadlines (deadline phases).
    let late: Vec<String> = points
        .iter()
        .filter_map(|p| {
            p.auth_late_ms
                .map(|v| format!("{:.1},{:.1}", x(p.t - 0.5), lat_y(v)))
        })
        .collect();
    if !late.is_empty() {
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{LATE}" stroke-width="2.5"/>"#,
            late.join(" ")
        );
    }
    frame(&mut svg, LAT_TOP, LAT_BOTTOM);

    // Panel 2: outcomes per second, stacked, and the calls reaching auth.
    axis_label(&mut svg, (OUT_TOP + OUT_BOTTOM) / 2.0, "requests/s");
    let step = nice_step(max_rate);
    let mut tick = 0.0;
    while tick <= max_rate {
        let y = rate_y(tick);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e0e0e0"/><text x="{:.1}" y="{:.1}" text-anchor="end">{tick}</text>"##,
            WIDTH - RIGHT,
            LEFT - 5.0,
            y + 4.0
        );
        tick += step;
    }
    for p in points {
        let mut base = 0.0;
        for (count, color) in [
            (p.ok, OK),
            (p.degraded, DEGRADED),
            (p.unavailable, UNAVAILABLE),
            (p.error, ERROR),
        ] {
            if count == 0 {
                continue;
            }
            let top = base + count as f64;
            let _ = writeln!(
                svg,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}"/>"#,
                x(p.t - 1.0),
                rate_y(top),
                bar_w * 0.9,
                rate_y(base) - rate_y(top)
            );
            base = top;
        }
    }
    let auth: Vec<String> = points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x(p.t - 0.5), rate_y(p.auth_calls as f64)))
        .collect();
    if !auth.is_empty() {
        let _ = writeln!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="#111" stroke-width="1.5"/>"##,
            auth.join(" ")
        );
    }
    // Requests per auth replica, dashed, one color each.
    let replicas = points
        .iter()
        .map(|p| p.auth_replicas.len())
        .max()
        .unwrap_or(0);
    if replicas > 1 {
        for replica in 0..replicas {
            let color = REPLICA_COLORS[replica % REPLICA_COLORS.len()];
            let line: Vec<String> = points
                .iter()
                .map(|p| {
                    let n = p.auth_replicas.get(replica).copied().unwrap_or(0);
                    format!("{:.1},{:.1}", x(p.t - 0.5), rate_y(n as f64))
                })
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.2" stroke-dasharray="4 2"/>"#,
                line.join(" ")
            );
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" fill="{color}" font-size="11">→auth-{}</text>"#,
                WIDTH - RIGHT - 60.0,
                OUT_TOP + 14.0 + replica as f64 * 13.0,
                replica + 1
            );
        }
    }
    frame(&mut svg, OUT_TOP, OUT_BOTTOM);

    // Panel 3: breaker states.
    for (row, (name, state_of)) in [
        (
            "auth breaker",
            (|p: &Point| p.auth_state.clone()) as fn(&Point) -> _,
        ),
        ("chat breaker", |p: &Point| p.chat_state.clone()),
    ]
    .into_iter()
    .enumerate()
    {
        let y = STATE_TOP + row as f64 * STATE_ROW;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{name}</text>"#,
            LEFT - 5.0,
            y + 14.0
        );
        for p in points {
            let color = match state_of(p).as_deref() {
                Some("closed") => OK,
                Some("open") => UNAVAILABLE,
                Some("half-open") => HALF_OPEN,
                _ => UNKNOWN,
            };
            let _ = writeln!(
                svg,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}"/>"#,
                x(p.t - 1.0),
                y + 2.0,
                bar_w,
                STATE_ROW - 4.0
            );
        }
    }

    // Time axis and legend.
    let axis_y = STATE_TOP + 2.0 * STATE_ROW + 14.0;
    let t_step = nice_step(t_max);
    let mut t = 0.0;
    while t <= t_max + 1e-9 {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{axis_y:.1}" text-anchor="middle">{t}s</text>"#,
            x(t)
        );
        t += t_step;
    }
    let legend_y = HEIGHT - 38.0;
    let mut lx = LEFT;
    for (label, color, kind) in [
        ("p50", "#1f77b4", "line"),
        ("p99", "#1f77b4", "dash"),
        ("ok", OK, "box"),
        ("degraded", DEGRADED, "box"),
        ("503 circuit open", UNAVAILABLE, "box"),
        ("other failure", ERROR, "box"),
        ("calls reaching auth-svc", "#111", "line"),
        ("auth work past deadline", LATE, "line"),
    ] {
        match kind {
            "box" => {
                let _ = write!(
                    svg,
                    r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{color}"/>"#,
                    legend_y - 10.0
                );
            }
            _ => {
                let _ = write!(
                    svg,
                    r#"<line x1="{lx:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="2" stroke-dasharray="{}"/>"#,
                    legend_y - 4.0,
                    lx + 12.0,
                    legend_y - 4.0,
                    if kind == "dash" { "4 2" } else { "" }
                );
            }
        }
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{legend_y:.1}">{label}</text>"#,
            lx + 16.0
        );
        lx += 22.0 + label.len() as f64 * 6.5;
    }
    let legend_y = legend_y + 20.0;
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="{legend_y:.1}" text-anchor="end">breakers:</text>"#,
        LEFT - 5.0
    );
    let mut lx = LEFT;
    for (label, color) in [
        ("closed", OK),
        ("open", UNAVAILABLE),
        ("half-open", HALF_OPEN),
    ] {
        let _ = writeln!(
            svg,
            r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{color}"/><text x="{:.1}" y="{legend_y:.1}">{label}</text>"#,
            legend_y - 10.0,
            lx + 16.0
        );
        lx += 22.0 + label.len() as f64 * 6.5;
    }
    svg.push_str("</svg>\n");
    svg
}

fn frame(svg: &mut String, top: f64, bottom: f64) {
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{top}" width="{:.1}" height="{:.1}" fill="none" stroke="#666"/>"##,
        WIDTH - LEFT - RIGHT,
        bottom - top
    );
}

fn axis_label(svg: &mut String, y: f64, label: &str) {
    let _ = writeln!(
        svg,
        r#"<text transform="translate(14 {y:.1}) rotate(-90)" text-anchor="middle">{label}</text>"#
    );
}

/// A round tick step giving about 5 to 10 ticks up to `max`.
fn nice_step(max: f64) -> f64 {
    let raw = (max / 6.0).max(1e-9);
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    step.max(1.0)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_second_and_phase() {
        let points: Vec<Point> = (1..=4)
            .map(|t| Point {
                t: t as f64,
                ok: 40,
                degraded: 5,
                unavailable: 3,
                error: 1,
                p50_ms: Some(2.0),
                p99_ms: Some(40.0),
                auth_state: Some(if t == 3 { "open" } else { "closed" }.to_owned()),
                chat_state: Some("half-open".to_owned()),
                auth_calls: 45,
                auth_late_ms: (t == 4).then_some(500.0),
                auth_replicas: vec![20, 20, 5],
            })
            .collect();
        let phases = [
            PhaseSpan {
                name: "healthy".to_owned(),
                start: 0.0,
                end: 2.0,
            },
            PhaseSpan {
                name: "a <b> & c".to_owned(),
                start: 2.0,
                end: 4.0,
            },
        ];
        let svg = render("demo", &points, &phases);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("healthy"));
        assert!(svg.contains("a &lt;b&gt; &amp; c"));
        // Four outcome kinds per second, one state cell per breaker per second.
        assert_eq!(svg.matches(&format!(r#"fill="{ERROR}""#)).count(), 4 + 1);
        assert_eq!(
            svg.matches(&format!(r#"fill="{HALF_OPEN}""#)).count(),
            4 + 1
        );
        // p50, p99, reached auth, auth's work past the deadline, and one
        // line per auth replica.
        assert_eq!(svg.matches("<polyline").count(), 4 + 3);
        assert!(svg.contains(&format!(r#"stroke="{LATE}" stroke-width="2.5""#)));
        assert!(svg.contains("→auth-3"));
    }

    #[test]
    fn empty_run_still_renders() {
        let svg = render("empty", &[], &[]);
        assert!(svg.contains("</svg>"));
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn tick_steps_are_round() {
        assert_eq!(nice_step(60.0), 10.0);
        assert_eq!(nice_step(100.0), 20.0);
        assert_eq!(nice_step(25.0), 5.0);
        assert_eq!(nice_step(3.0), 1.0);
    }
}
