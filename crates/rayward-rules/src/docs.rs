//! Rule documentation generated from the rules' doc comments (`docs/rules.md`).

use crate::registry;

/// The whole catalog as Markdown.
pub fn catalog_markdown() -> String {
    let rules = registry::all();
    let mut s = String::from(
        "# rayward rules\n\n<!-- Generated from the rules' doc comments by `rayward rules --markdown`. Do not edit. -->\n\n| id | name | severity | guide § | summary |\n|---|---|---|---|---|\n",
    );
    for r in &rules {
        let m = r.meta();
        s.push_str(&format!(
            "| [{}](#{}) | `{}` | {} | {} | {} |\n",
            m.id,
            m.id.to_lowercase(),
            m.name,
            m.severity,
            m.section,
            m.summary
        ));
    }
    for r in &rules {
        s.push('\n');
        s.push_str(&rule_markdown(r.meta()));
    }
    s
}

/// One rule's documentation, as `rayward explain` prints it.
pub fn rule_markdown(m: &crate::RuleMeta) -> String {
    let doc = m.doc().replace("\n## ", "\n### ");
    let doc = doc
        .strip_prefix("## ")
        .map_or(doc.clone(), |d| format!("### {d}"));
    format!(
        "## {}\n\n`{}` · severity **{}** · guide §{}\n\n{}\n\n{}\n",
        m.id, m.name, m.severity, m.section, m.summary, doc
    )
}
