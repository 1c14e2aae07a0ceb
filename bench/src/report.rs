//! Report output: the flat `key<TAB>value` file `cargo xtask bench` reads
//! (xtask has no JSON parser), and fixed-width text tables.

use std::fmt::Write as _;

/// Ordered `key<TAB>value` pairs. Keys are dotted paths
/// (`latency.reqwest.p50_ns`); values are numbers or short text without
/// tabs or newlines.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Flat {
    entries: Vec<(String, String)>,
}

impl Flat {
    /// An empty set of pairs.
    pub fn new() -> Flat {
        Flat::default()
    }

    /// Appends a number (written with up to three decimals).
    pub fn num(&mut self, key: impl Into<String>, value: f64) {
        let text = if value.is_finite() {
            let s = format!("{value:.3}");
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            "nan".to_owned()
        };
        self.entries.push((key.into(), text));
    }

    /// Appends text; tabs and line breaks are replaced by spaces.
    pub fn text(&mut self, key: impl Into<String>, value: &str) {
        let clean: String = value
            .chars()
            .map(|c| {
                if c == '\t' || c == '\n' || c == '\r' {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        self.entries.push((key.into(), clean));
    }

    /// The pairs, in insertion order.
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }

    /// The file contents: one `key<TAB>value` line per pair.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (key, value) in &self.entries {
            let _ = writeln!(out, "{key}\t{value}");
        }
        out
    }

    /// Parses [`Flat::render`]'s output (lines without a tab are skipped).
    pub fn parse(text: &str) -> Flat {
        let entries = text
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Flat { entries }
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A text table with a header row, columns padded to their widest cell
/// (the first column left-aligned, the others right-aligned).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        for (i, cell) in cells.enumerate().take(columns) {
            if i > 0 {
                out.push_str("  ");
            }
            let pad = widths[i].saturating_sub(cell.chars().count());
            if i == 0 {
                out.push_str(cell);
                out.extend(std::iter::repeat_n(' ', pad));
            } else {
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(cell);
            }
        }
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out.push('\n');
    };
    line(&mut out, &mut header.iter().copied());
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&mut out, &mut rule.iter().map(String::as_str));
    for row in rows {
        line(&mut out, &mut row.iter().map(String::as_str));
    }
    out
}

/// A duration in nanoseconds, shown with a unit that keeps 3-4 digits.
pub fn human_ns(ns: f64) -> String {
    if !ns.is_finite() {
        "n/a".to_owned()
    } else if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1_000_000_000.0 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// A byte count with a binary unit.
pub fn human_bytes(bytes: f64) -> String {
    if !bytes.is_finite() {
        "n/a".to_owned()
    } else if bytes.abs() < 1024.0 {
        format!("{bytes:.0} B")
    } else if bytes.abs() < 1024.0 * 1024.0 {
        format!("{:.1} KiB", bytes / 1024.0)
    } else {
        format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_round_trips_and_cleans_values() {
        let mut flat = Flat::new();
        flat.num("latency.reqwest.p50_ns", 41_250.0);
        flat.num("ratio", 1.0456789);
        flat.num("bad", f64::NAN);
        flat.text("note", "two\tparts\nand a line");
        let text = flat.render();
        assert_eq!(
            text,
            "latency.reqwest.p50_ns\t41250\nratio\t1.046\nbad\tnan\nnote\ttwo parts and a line\n"
        );
        let parsed = Flat::parse(&text);
        assert_eq!(parsed, flat);
        assert_eq!(parsed.get("ratio"), Some("1.046"));
        assert_eq!(parsed.get("missing"), None);
    }

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["reqwest".to_owned(), "41.2 µs".to_owned()],
            vec!["svc-client".to_owned(), "1.1 ms".to_owned()],
        ];
        let text = table(&["client", "p50"], &rows);
        assert_eq!(
            text,
            "client          p50\n----------  -------\nreqwest     41.2 µs\nsvc-client   1.1 ms\n"
        );
    }

    #[test]
    fn human_units() {
        assert_eq!(human_ns(12.34), "12.3 ns");
        assert_eq!(human_ns(41_250.0), "41.2 µs");
        assert_eq!(human_ns(2_500_000.0), "2.50 ms");
        assert_eq!(human_ns(f64::NAN), "n/a");
        assert_eq!(human_bytes(512.0), "512 B");
        assert_eq!(human_bytes(2048.0), "2.0 KiB");
        assert_eq!(human_bytes(3.5 * 1024.0 * 1024.0), "3.5 MiB");
    }
}
