//! SARIF 2.1.0 for code-scanning UIs: rule metadata with help text, results with regions,
//! suppressions, and input errors as tool notifications.

use crate::Report;
use rayward_rules::{registry, Severity};
use serde_json::json;
use serde_sarif::sarif::{
    ArtifactLocation, Invocation, Location, Message, MultiformatMessageString, Notification,
    PhysicalLocation, PropertyBag, Region, ReportingConfiguration, ReportingDescriptor,
    Result as SarifResult, ResultLevel, Run, Sarif, Suppression, Tool, ToolComponent,
};
use std::collections::BTreeMap;

fn level(s: Severity) -> ResultLevel {
    match s {
        Severity::Critical | Severity::High => ResultLevel::Error,
        Severity::Medium => ResultLevel::Warning,
        Severity::Low | Severity::Info => ResultLevel::Note,
    }
}

/// GitHub code scanning ranks security results by `security-severity` (0-10).
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "1.0",
    }
}

fn props(tags: Vec<String>, extra: &[(&str, serde_json::Value)]) -> PropertyBag {
    let mut bag = PropertyBag::builder().tags(tags).build();
    let mut map = BTreeMap::new();
    for (k, v) in extra {
        map.insert(k.to_string(), v.clone());
    }
    bag.additional_properties = map;
    bag
}

/// Turns a path into a relative URI (SARIF wants `/` separators, no leading `./`).
fn uri(file: &str) -> String {
    let f = file.replace('\\', "/");
    f.strip_prefix("./").unwrap_or(&f).to_string()
}

/// One finding as a SARIF result.
fn result(f: &rayward_rules::Finding, rule_index: i64) -> SarifResult {
    let region = Region::builder()
        .start_line(i64::from(f.line.max(1)))
        .start_column(i64::from(f.column.max(1)))
        .build();
    let loc = Location::builder()
        .physical_location(
            PhysicalLocation::builder()
                .artifact_location(ArtifactLocation::builder().uri(uri(&f.file)).build())
                .region(region)
                .build(),
        )
        .build();
    let mut fp = BTreeMap::new();
    fp.insert(
        "rayward/v1".to_string(),
        format!("{}:{}:{}", f.rule_id, f.object.id(), f.path),
    );
    let text = format!(
        "{} ({}; at {}). Fix: {}",
        f.message,
        f.object.id(),
        f.path,
        f.fix
    );
    let mut res = SarifResult::builder()
        .rule_id(f.rule_id)
        .message(Message::builder().text(text).build())
        .level(level(f.severity))
        .locations(vec![loc])
        .partial_fingerprints(fp)
        .properties(props(
            vec![],
            &[
                ("object", json!(f.object.id())),
                ("jsonPath", json!(f.path)),
                ("severity", json!(f.severity.as_str())),
            ],
        ))
        .rule_index(rule_index)
        .build();
    if let Some(reason) = &f.suppressed {
        let mut s = Suppression::builder().kind(json!("inSource")).build();
        if !reason.is_empty() {
            s.justification = Some(reason.clone());
        }
        res.suppressions = Some(vec![s]);
    }
    res
}

/// Writes the SARIF log; streamed, so a large report is not held twice (log + text).
pub(crate) fn write(r: &Report, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let rules = registry::all();
    let descriptors: Vec<ReportingDescriptor> = rules
        .iter()
        .map(|rule| {
            let m = rule.meta();
            ReportingDescriptor::builder()
                .id(m.id)
                .name(m.name)
                .short_description(MultiformatMessageString::builder().text(m.summary).build())
                .full_description(MultiformatMessageString::builder().text(m.summary).build())
                .help(
                    MultiformatMessageString::builder()
                        .text(m.doc())
                        .markdown(m.doc())
                        .build(),
                )
                .default_configuration(
                    ReportingConfiguration::builder()
                        .level(json!(level(m.severity).to_string()))
                        .build(),
                )
                .properties(props(
                    vec!["security".into(), format!("guide-section-{}", m.section)],
                    &[("security-severity", json!(security_severity(m.severity)))],
                ))
                .build()
        })
        .collect();
    let index_of = |id: &str| {
        rules
            .iter()
            .position(|x| x.meta().id == id)
            .map(|i| i as i64)
    };
    let notifications: Vec<Notification> = r
        .errors
        .iter()
        .map(|e| {
            let mut pl = PhysicalLocation::builder()
                .artifact_location(ArtifactLocation::builder().uri(uri(&e.file)).build())
                .build();
            if e.line > 0 {
                pl.region = Some(
                    Region::builder()
                        .start_line(i64::from(e.line))
                        .start_column(i64::from(e.column.max(1)))
                        .build(),
                );
            }
            Notification::builder()
                .message(Message::builder().text(e.message.clone()).build())
                .level(json!("error"))
                .locations(vec![Location::builder().physical_location(pl).build()])
                .build()
        })
        .collect();
    let invocation = Invocation::builder()
        .execution_successful(r.errors.is_empty())
        .tool_execution_notifications(notifications)
        .build();
    let driver = ToolComponent::builder()
        .name("rayward")
        .version(r.version)
        .semantic_version(r.version)
        .information_uri("https://github.com/rayward/rayward")
        .rules(descriptors)
        .build();
    let run = Run::builder()
        .tool(Tool::builder().driver(driver).build())
        .results(Vec::new())
        .invocations(vec![invocation])
        .column_kind(json!("unicodeCodePoints"))
        .build();
    let sarif = Sarif::builder()
        .version(json!("2.1.0"))
        .schema(serde_sarif::sarif::SCHEMA_URL)
        .runs(vec![run])
        .build();
    // The log is written around its results, which are made and written one at a time:
    // 200,000 results built as `serde_sarif` values took 1.3 GB. The bytes are those of
    // the whole log pretty-printed at once (the results array at its indentation).
    let skeleton = serde_json::to_string_pretty(&sarif).map_err(std::io::Error::other)?;
    let marker = "\"results\": []";
    let at = skeleton
        .find(marker)
        .ok_or_else(|| std::io::Error::other("SARIF skeleton without results"))?;
    let (head, tail) = (&skeleton[..at], &skeleton[at + marker.len()..]);
    let indent = &head[head.rfind('\n').map_or(0, |i| i + 1)..];
    out.write_all(head.as_bytes())?;
    if r.findings.is_empty() {
        out.write_all(marker.as_bytes())?;
    } else {
        out.write_all(b"\"results\": [")?;
        let mut buf = Vec::new();
        for (i, f) in r.findings.iter().enumerate() {
            out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
            buf.clear();
            serde_json::to_writer_pretty(&mut buf, &result(f, index_of(f.rule_id).unwrap_or(-1)))?;
            // JSON strings hold no raw newline, so lines are the printer's own.
            for (j, line) in buf.split(|b| *b == b'\n').enumerate() {
                if j > 0 {
                    out.write_all(b"\n")?;
                }
                out.write_all(indent.as_bytes())?;
                out.write_all(b"  ")?;
                out.write_all(line)?;
            }
        }
        out.write_all(b"\n")?;
        out.write_all(indent.as_bytes())?;
        out.write_all(b"]")?;
    }
    out.write_all(tail.as_bytes())?;
    out.write_all(b"\n")
}
