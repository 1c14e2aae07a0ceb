//! Criterion's estimates, read back from the `new/estimates.json` files a
//! run wrote (and the `benchmark.json` beside each, for its id).

use std::path::Path;
use std::time::SystemTime;

/// The figures of one criterion benchmark (nanoseconds).
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// `group/function`.
    pub id: String,
    /// The mean.
    pub mean_ns: f64,
    /// The median.
    pub median_ns: f64,
}

impl Estimate {
    /// The function part of the id (`svc-breaker` in `closed_path/svc-breaker`).
    pub(super) fn name(&self) -> &str {
        self.id.rsplit('/').next().unwrap_or(&self.id)
    }
}

/// Every `<dir>/**/new/estimates.json` modified in `[from, to)`, with its
/// id from the `benchmark.json` beside it, sorted by id.
pub fn collect_estimates(dir: &Path, from: SystemTime, to: SystemTime) -> Vec<Estimate> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "estimates.json")
                && path
                    .parent()
                    .and_then(Path::file_name)
                    .is_some_and(|n| n == "new")
            {
                let fresh = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t >= from && t < to);
                if fresh && let Some(estimate) = read_estimate(&path) {
                    found.push(estimate);
                }
            }
        }
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found
}

fn read_estimate(estimates: &Path) -> Option<Estimate> {
    let text = std::fs::read_to_string(estimates).ok()?;
    let meta = std::fs::read_to_string(estimates.with_file_name("benchmark.json")).ok()?;
    parse_estimate(&text, &meta)
}

/// An [`Estimate`] from criterion's `estimates.json` and `benchmark.json`.
fn parse_estimate(estimates: &str, benchmark: &str) -> Option<Estimate> {
    let estimates: serde_json::Value = serde_json::from_str(estimates).ok()?;
    let benchmark: serde_json::Value = serde_json::from_str(benchmark).ok()?;
    let point = |key: &str| estimates.get(key)?.get("point_estimate")?.as_f64();
    Some(Estimate {
        id: benchmark.get("full_id")?.as_str()?.to_owned(),
        mean_ns: point("mean")?,
        median_ns: point("median")?,
    })
}

/// An estimate whose mean is its median, for the other modules' tests.
#[cfg(test)]
pub(super) fn estimate(id: &str, median: f64) -> Estimate {
    Estimate {
        id: id.to_owned(),
        mean_ns: median,
        median_ns: median,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ESTIMATES: &str = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":70.1,"upper_bound":72.9},"point_estimate":71.5,"standard_error":0.7},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":69.0,"upper_bound":70.0},"point_estimate":69.5,"standard_error":0.2},"median_abs_dev":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0},"point_estimate":1.5,"standard_error":0.1},"slope":null,"std_dev":{"confidence_interval":{"confidence_level":0.95,"lower_bound":3.0,"upper_bound":4.0},"point_estimate":3.5,"standard_error":0.2}}"#;

    #[test]
    fn reads_criterion_estimates() {
        let meta = r#"{"group_id":"closed","function_id":"svc-breaker","full_id":"closed/svc \"fast\"\u00e9","directory_name":"closed/svc-breaker"}"#;
        let e = parse_estimate(ESTIMATES, meta).unwrap();
        assert_eq!(e.mean_ns, 71.5);
        assert_eq!(e.median_ns, 69.5);
        assert_eq!(e.id, "closed/svc \"fast\"é");
        let exponent = parse_estimate(
            r#"{"mean":{"point_estimate":1.5e3},"median":{"point_estimate":2}}"#,
            r#"{"full_id":"a/b"}"#,
        )
        .unwrap();
        assert_eq!(exponent.mean_ns, 1500.0);
        assert_eq!(exponent.median_ns, 2.0);
        assert!(parse_estimate(r#"{"mean":{"point_estimate":1}}"#, meta).is_none());
        assert!(parse_estimate(ESTIMATES, r#"{"title":"x"}"#).is_none());
    }
}
