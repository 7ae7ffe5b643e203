//! Recognising credentials in plain text: cloud key formats, secret-looking variable
//! names, and masking a value so a report never repeats the secret it found.

/// A value shown in a finding: its first 4 characters and `***` when it is long enough
/// for that to give nothing away (12 characters or more), else only `***`.
pub fn mask(value: &str) -> String {
    if value.chars().count() >= 12 {
        format!("{}***", value.chars().take(4).collect::<String>())
    } else {
        "***".to_string()
    }
}

/// What kind of credential a value is, when its format says so.
pub fn credential_format(value: &str) -> Option<&'static str> {
    if has_key_id(value, &["LTAI"], 12, 30, |b| b.is_ascii_alphanumeric()) {
        return Some("an Alibaba Cloud AccessKey ID");
    }
    if has_key_id(value, &["AKIA", "ASIA"], 16, 16, |b| {
        b.is_ascii_uppercase() || b.is_ascii_digit()
    }) {
        return Some("an AWS access key ID");
    }
    if has_key_id(
        value,
        &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        36,
        36,
        |b| b.is_ascii_alphanumeric(),
    ) {
        return Some("a GitHub token");
    }
    if has_key_id(value, &["hf_"], 34, 34, |b| b.is_ascii_alphabetic()) {
        return Some("a Hugging Face token");
    }
    if value.len() >= 13
        && (value.contains("\"private_key\"")
            || (value.contains("-----BEGIN") && value.contains("PRIVATE KEY-----")))
    {
        return Some("a private key");
    }
    None
}

/// Whether `value` holds `prefix` followed by `min..=max` characters accepted by `ok`,
/// as a whole word (no alphanumeric character right before or after).
fn has_key_id(value: &str, prefixes: &[&str], min: usize, max: usize, ok: fn(u8) -> bool) -> bool {
    let b = value.as_bytes();
    for prefix in prefixes {
        let p = prefix.as_bytes();
        if b.len() < p.len() + min {
            continue;
        }
        // A plain window scan: env values are short, and building a substring searcher
        // for each of them cost more than the scan.
        let mut from = 0;
        while let Some(i) = b[from..]
            .windows(p.len())
            .position(|w| w == p)
            .map(|i| i + from)
        {
            from = i + p.len();
            if i > 0 && b[i - 1].is_ascii_alphanumeric() {
                continue;
            }
            let n = b[from..].iter().take_while(|&&c| ok(c)).count();
            let end = from + n;
            let boundary = end == b.len() || !b[end].is_ascii_alphanumeric();
            if (min..=max).contains(&n) && boundary {
                return true;
            }
        }
    }
    false
}

/// The words of a variable name, upper-cased: split at `_`, `-`, `.` and camelCase
/// boundaries (`ossAccessKeySecret` → `OSS ACCESS KEY SECRET`).
fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for ch in name.chars() {
        if !ch.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if ch.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = ch.is_ascii_lowercase() || ch.is_ascii_digit();
        cur.push(ch.to_ascii_uppercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Words that make a name a secret's.
const SECRET_WORDS: &[&str] = &[
    "SECRET",
    "SECRETS",
    "TOKEN",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "CREDENTIAL",
    "CREDENTIALS",
    "APIKEY",
    "ACCESSKEY",
    "PRIVATEKEY",
    "SECRETKEY",
];

/// Word pairs that do (`ACCESS_KEY`, `API_KEY`, `PRIVATE_KEY`).
const SECRET_PAIRS: &[(&str, &str)] = &[("ACCESS", "KEY"), ("API", "KEY"), ("PRIVATE", "KEY")];

/// Last words that make a secret-looking name something else: where a secret is, or
/// how it is used (`TOKEN_PATH`, `SECRET_NAME`, `TOKEN_TTL`, `PASSWORD_FILE`).
const NOT_SECRET_SUFFIXES: &[&str] = &[
    "PATH",
    "PATHS",
    "FILE",
    "FILES",
    "FILENAME",
    "DIR",
    "DIRECTORY",
    "URL",
    "URI",
    "ENDPOINT",
    "HOST",
    "PORT",
    "NAME",
    "REF",
    "MODE",
    "ENABLED",
    "ENABLE",
    "TTL",
    "TIMEOUT",
    "EXPIRY",
    "EXPIRATION",
    "LENGTH",
    "SIZE",
    "TYPE",
    "AUDIENCE",
    "ISSUER",
    "SCOPE",
    "SCOPES",
    "PROVIDER",
    "VERSION",
    "FORMAT",
    "HEADER",
    "PREFIX",
    "LIMIT",
    "COUNT",
];

/// Whether an env var name says it holds a secret: it has a word such as `SECRET`,
/// `TOKEN`, `PASSWORD`, `PASSWD`, `CREDENTIAL(S)`, or `ACCESS_KEY`, `API_KEY`,
/// `PRIVATE_KEY`, and does not end in a word like `PATH`, `FILE`, `NAME` or `TTL`.
/// `TOKENIZER` and `MAX_TOKENS` are not secrets: words are matched whole.
pub fn secret_name(name: &str) -> bool {
    // Most names have none of the words: decide those without allocating.
    if ![
        "SECRET",
        "TOKEN",
        "PASSW",
        "PASSPHRASE",
        "CREDENTIAL",
        "KEY",
    ]
    .iter()
    .any(|k| contains_ignore_case(name, k))
    {
        return false;
    }
    let w = words(name);
    let Some(last) = w.last() else { return false };
    if NOT_SECRET_SUFFIXES.contains(&last.as_str()) {
        return false;
    }
    w.iter().any(|x| SECRET_WORDS.contains(&x.as_str()))
        || w.windows(2)
            .any(|p| SECRET_PAIRS.iter().any(|(a, b)| p[0] == *a && p[1] == *b))
}

/// Whether `hay` contains `needle` (upper-case ASCII), ignoring ASCII case.
fn contains_ignore_case(hay: &str, needle: &str) -> bool {
    hay.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Whether a literal value stands for no secret at all: empty, a reference expanded
/// later (`$(VAR)`, `${VAR}`, `$VAR`), a file path, or a boolean-like switch.
pub fn not_a_secret_value(value: &str) -> bool {
    let v = value.trim();
    v.is_empty()
        || v.starts_with('$')
        || v.starts_with('/')
        || v.starts_with("./")
        || v.starts_with("~/")
        || v.starts_with("file://")
        || [
            "true", "false", "yes", "no", "on", "off", "0", "1", "none", "null", "enabled",
            "disabled",
        ]
        .iter()
        .any(|b| v.eq_ignore_ascii_case(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_without_revealing_short_values() {
        assert_eq!(mask("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"), "wJal***");
        assert_eq!(mask("minioadmin"), "***");
        assert_eq!(mask(""), "***");
    }

    #[test]
    fn recognises_key_formats() {
        assert!(credential_format("LTAI5tExampleKeyId1234").is_some());
        assert!(credential_format("key=LTAI5tExampleKeyId1234;").is_some());
        assert!(credential_format("LTAIshort").is_none());
        assert!(credential_format("XLTAI5tExampleKeyId1234").is_none());
        assert!(credential_format("AKIAIOSFODNN7EXAMPLE").is_some());
        assert!(credential_format("ASIAIOSFODNN7EXAMPLE").is_some());
        // 17 characters after the prefix is not an AWS key id.
        assert!(credential_format("AKIAIOSFODNN7EXAMPLEX").is_none());
        assert!(credential_format("akiaiosfodnn7example").is_none());
        assert!(
            credential_format("{\"type\": \"service_account\", \"private_key\": \"x\"}").is_some()
        );
        assert!(credential_format("-----BEGIN RSA PRIVATE KEY-----\nMII").is_some());
        assert!(credential_format("-----BEGIN CERTIFICATE-----").is_none());
        assert!(credential_format("minioadmin").is_none());
    }

    #[test]
    fn secret_names_match_whole_words() {
        for n in [
            "AWS_SECRET_ACCESS_KEY",
            "AWS_ACCESS_KEY_ID",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            "OSS_ACCESS_KEY_ID",
            "HF_TOKEN",
            "HUGGING_FACE_HUB_TOKEN",
            "REDIS_PASSWORD",
            "DB_PASSWD",
            "OPENAI_API_KEY",
            "WANDB_APIKEY",
            "ossAccessKeySecret",
            "GCP_PRIVATE_KEY",
            "AZURE_CLIENT_SECRET",
            "AWS_SESSION_TOKEN",
            "MY_CREDENTIALS",
        ] {
            assert!(secret_name(n), "{n}");
        }
        for n in [
            "TOKENIZER_MODE",
            "MAX_TOKENS",
            "RAY_AUTH_TOKEN_PATH",
            "GOOGLE_APPLICATION_CREDENTIALS_FILE",
            "SECRET_NAME",
            "PWD",
            "KEY",
            "S3_BUCKET",
            "RAY_AUTH_MODE",
            "",
        ] {
            assert!(!secret_name(n), "{n}");
        }
    }

    #[test]
    fn references_paths_and_switches_are_not_secrets() {
        for v in [
            "",
            "  ",
            "$(AWS_KEY)",
            "${KEY}",
            "$MODEL_ID",
            "/var/run/secrets/token",
            "true",
            "0",
            "Disabled",
        ] {
            assert!(not_a_secret_value(v), "{v}");
        }
        for v in ["minioadmin", "5241590000000000", "hunter2"] {
            assert!(!not_a_secret_value(v), "{v}");
        }
    }
}
