//! Sums of Kubernetes quantities for the ResourceQuota, kept exact: CPU in millicores,
//! everything else in whole units (bytes, GPUs).

use rayward_rules::util::quantity;

/// Parses a quantity into millicores (for `cpu`) or units rounded up.
pub fn parse(resource: &str, text: &str) -> Option<u128> {
    let v = quantity::parse(text)?;
    if !(v.is_finite() && v >= 0.0) {
        return None;
    }
    let scaled = if resource == "cpu" { v * 1000.0 } else { v };
    // Round up, allowing for float noise (0.1 * 1000 = 100.00000000000001).
    Some((scaled - 1e-6).ceil().max(0.0) as u128)
}

/// Writes a sum back as a quantity: `4`, `2500m`, `8Gi`, `1536Mi`, `1000`.
pub fn format(resource: &str, amount: u128) -> String {
    if resource == "cpu" {
        return if amount.is_multiple_of(1000) {
            (amount / 1000).to_string()
        } else {
            format!("{amount}m")
        };
    }
    for (suffix, unit) in [
        ("Ti", 1u128 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ] {
        if amount >= unit && amount.is_multiple_of(unit) {
            return format!("{}{suffix}", amount / unit);
        }
    }
    amount.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_in_millicores() {
        assert_eq!(parse("cpu", "500m"), Some(500));
        assert_eq!(parse("cpu", "2"), Some(2000));
        assert_eq!(parse("cpu", "0.1"), Some(100));
        assert_eq!(format("cpu", 2500), "2500m");
        assert_eq!(format("cpu", 4000), "4");
    }

    #[test]
    fn memory_in_bytes() {
        assert_eq!(parse("memory", "8Gi"), Some(8 << 30));
        assert_eq!(parse("memory", "1G"), Some(1_000_000_000));
        assert_eq!(format("memory", 8 << 30), "8Gi");
        assert_eq!(format("memory", 1536 << 20), "1536Mi");
        assert_eq!(format("memory", 1000), "1000");
        assert_eq!(parse("memory", "lots"), None);
    }
}
