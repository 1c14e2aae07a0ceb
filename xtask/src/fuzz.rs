//! `cargo xtask fuzz [--cases N]`: the property-based fuzz targets of
//! `svc-bench` (`bench/tests/fuzz.rs`: discovery names and values, facade
//! path joining, `Retry-After` handling) with many more cases than the
//! normal test run gives them.

use crate::cmd::{Step, cargo};

/// Cases per property when `--cases` is not given.
const DEFAULT_CASES: u64 = 5_000;

/// Parses the options and runs the fuzz targets in release mode.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut cases = DEFAULT_CASES;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--cases" => {
                let value = args.next().ok_or("fuzz: `--cases` needs a number")?;
                cases = parse_cases(value)?;
            }
            other => {
                return Err(format!(
                    "fuzz: unknown option `{other}` (expected --cases N)"
                ));
            }
        }
    }
    let mut command = cargo();
    command
        .args([
            "test",
            "--locked",
            "--release",
            "--package",
            "svc-bench",
            "--test",
            "fuzz",
        ])
        .env("PROPTEST_CASES", cases.to_string());
    Step::new(
        "fuzz",
        command,
        "proptest prints the minimal failing input; it is saved under bench/proptest-regressions",
    )
    .run()
}

fn parse_cases(value: &str) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "fuzz: `--cases` takes a positive number, not `{value}`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_are_positive() {
        assert_eq!(parse_cases("100000"), Ok(100_000));
        assert!(parse_cases("0").is_err());
        assert!(parse_cases("many").unwrap_err().contains("`many`"));
        let err = run(&["--runs".to_owned()]).unwrap_err();
        assert!(err.contains("`--runs`"), "{err}");
    }
}
