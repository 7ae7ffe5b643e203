//! Suppression by annotation: `rayward.io/ignore: "RW401,RW501 # reason"` on an object
//! turns those rules off for it, and the reason is kept with each finding it hides.

use rayward_manifest::Object;

/// The annotation that suppresses rules on one object: `"RW401,RW501 # reason"`.
pub const IGNORE_ANNOTATION: &str = "rayward.io/ignore";

/// Why an object's ignore annotation suppresses a rule, if it does.
pub fn suppression(obj: &Object, id: &str, name: &str) -> Option<String> {
    let (tokens, reason) = parse_ignore(obj.annotation(IGNORE_ANNOTATION)?);
    tokens
        .iter()
        .any(|t| {
            *t == "*"
                || t.eq_ignore_ascii_case("all")
                || t.eq_ignore_ascii_case(id)
                || t.eq_ignore_ascii_case(name)
        })
        .then(|| reason.to_string())
}

/// Parses an ignore annotation into (tokens, reason).
pub fn parse_ignore(value: &str) -> (Vec<&str>, &str) {
    let (list, reason) = value.split_once('#').unwrap_or((value, ""));
    let tokens = list
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .collect();
    (tokens, reason.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_annotation_parses() {
        assert_eq!(
            parse_ignore("RW401,RW501 # dev only"),
            (vec!["RW401", "RW501"], "dev only")
        );
        assert_eq!(parse_ignore("all"), (vec!["all"], ""));
    }
}
