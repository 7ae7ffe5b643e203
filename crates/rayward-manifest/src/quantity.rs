//! Kubernetes resource quantities (`500m`, `2Gi`, `1e3`): as plain numbers for the rules'
//! comparisons, and exactly (millicores, bytes) for the sums harden writes into a
//! ResourceQuota.

use crate::node::Node;

/// Parses a quantity to a float in base units (cores, bytes, GPUs). `None` when invalid.
pub fn parse(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => 10f64.powi(e[1..].parse().ok()?),
        _ => return None,
    };
    Some(n * mult)
}

/// A quantity node (string or number).
pub fn of(node: &Node) -> Option<f64> {
    parse(node.as_str()?)
}

/// Parses a quantity exactly, for sums: millicores for `cpu`, whole units (bytes, GPUs)
/// rounded up for everything else.
pub fn units(resource: &str, text: &str) -> Option<u128> {
    let v = parse(text)?;
    if !(v.is_finite() && v >= 0.0) {
        return None;
    }
    let scaled = if resource == "cpu" { v * 1000.0 } else { v };
    // Round up, allowing for float noise (0.1 * 1000 = 100.00000000000001).
    Some((scaled - 1e-6).ceil().max(0.0) as u128)
}

/// Writes a sum back as a quantity: `4`, `2500m`, `8Gi`, `1536Mi`, `1000`.
pub fn format_units(resource: &str, amount: u128) -> String {
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

/// Whether `name` is a GPU resource name: `nvidia.com/gpu`, `amd.com/gpu`,
/// `aliyun.com/gpu-mem`, `aliyun.com/gpu-count`, or any `<vendor>/gpu`.
pub fn is_gpu_resource(name: &str) -> bool {
    matches!(name, "aliyun.com/gpu-mem" | "aliyun.com/gpu-count") || name.ends_with("/gpu")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quantities() {
        assert_eq!(parse("500m"), Some(0.5));
        assert_eq!(parse("2Gi"), Some(2.0 * 1024f64.powi(3)));
        assert_eq!(parse("1e3"), Some(1000.0));
        assert_eq!(parse("4"), Some(4.0));
        assert_eq!(parse("abc"), None);
    }

    #[test]
    fn cpu_in_millicores() {
        assert_eq!(units("cpu", "500m"), Some(500));
        assert_eq!(units("cpu", "2"), Some(2000));
        assert_eq!(units("cpu", "0.1"), Some(100));
        assert_eq!(format_units("cpu", 2500), "2500m");
        assert_eq!(format_units("cpu", 4000), "4");
    }

    #[test]
    fn memory_in_bytes() {
        assert_eq!(units("memory", "8Gi"), Some(8 << 30));
        assert_eq!(units("memory", "1G"), Some(1_000_000_000));
        assert_eq!(format_units("memory", 8 << 30), "8Gi");
        assert_eq!(format_units("memory", 1536 << 20), "1536Mi");
        assert_eq!(format_units("memory", 1000), "1000");
        assert_eq!(units("memory", "lots"), None);
    }
}
