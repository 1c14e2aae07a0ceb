//! Memory probes.
//!
//! The workspace forbids `unsafe_code`, so a counting `#[global_allocator]`
//! (whose `GlobalAlloc` impl needs `unsafe`) is not an option. We read the
//! resident set size the kernel reports instead: it is page-granular and
//! includes allocator slack, so figures derived from it are approximate and
//! only meaningful as deltas over many objects (a thousand clients, hundreds
//! of connections), measured in a fresh process.

/// The resident set size of this process in bytes (`VmRSS` of
/// `/proc/self/status`), or `None` where that file does not exist.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

/// Extracts `VmRSS` (reported in kB) from the text of `/proc/<pid>/status`.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut fields = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") | None => Some(value * 1024),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernel_format() {
        let status = "Name:\tcompare\nVmPeak:\t  10 kB\nVmRSS:\t   5120 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(5120 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\t12 MB\n"), None);
    }

    #[test]
    fn this_process_has_a_resident_set() {
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(rss_bytes().unwrap() > 0);
        }
    }
}
