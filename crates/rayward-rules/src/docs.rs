//! Rule documentation generated from the rules' doc comments (`docs/rules.md`).

use crate::registry;

/// The whole catalog as Markdown. `harden` says how `rayward harden` answers a rule id
/// (None: it does not); it is passed in because harden builds on this crate.
pub fn catalog_markdown(harden: &dyn Fn(&str) -> Option<String>) -> String {
    let rules = registry::all();
    let mut s = String::from(
        "# rayward rules\n\n<!-- Generated from the rules' doc comments by `rayward rules --format markdown`. Do not edit. -->\n\n\
         The *harden* column says whether `rayward harden` fixes what the rule reports: \
         **safe** (a fix in the object that needs no choice from the user; the webhook's \
         `/mutate` applies it too), **fix** (a fix in the object that rests on a choice, such \
         as the CA Secret or resource defaults), **companion** (answered by an object harden \
         writes beside it) or — (reported, never guessed).\n\n\
         | id | name | severity | guide § | harden | summary |\n|---|---|---|---|---|---|\n",
    );
    for r in &rules {
        let m = r.meta();
        let how = harden(m.id);
        let column = match (&how, r.fixer()) {
            (_, Some(f)) if f.safe() => "safe",
            (_, Some(_)) => "fix",
            (Some(_), None) => "companion",
            (None, None) => "—",
        };
        s.push_str(&format!(
            "| [{}](#{}) | `{}` | {} | {} | {} | {} |\n",
            m.id,
            m.id.to_lowercase(),
            m.name,
            m.severity,
            m.section,
            column,
            m.summary
        ));
    }
    for r in &rules {
        s.push('\n');
        s.push_str(&rule_markdown(r.meta(), harden(r.meta().id).as_deref()));
    }
    s
}

/// One rule's documentation, as `rayward explain` prints it, with how `rayward harden`
/// answers it when it does.
pub fn rule_markdown(m: &crate::RuleMeta, harden: Option<&str>) -> String {
    let doc = m.doc().replace("\n## ", "\n### ");
    let doc = doc
        .strip_prefix("## ")
        .map_or(doc.clone(), |d| format!("### {d}"));
    let harden = harden.map_or(String::new(), |h| format!("\n**`rayward harden`:** {h}.\n"));
    format!(
        "## {}\n\n`{}` · severity **{}** · guide §{}\n\n{}\n\n{}\n{}",
        m.id, m.name, m.severity, m.section, m.summary, doc, harden
    )
}
