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
    let results: Vec<SarifResult> = r
        .findings
        .iter()
        .map(|f| {
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
                .rule_index(index_of(f.rule_id).unwrap_or(-1))
                .build();
            if let Some(reason) = &f.suppressed {
                let mut s = Suppression::builder().kind(json!("inSource")).build();
                if !reason.is_empty() {
                    s.justification = Some(reason.clone());
                }
                res.suppressions = Some(vec![s]);
            }
            res
        })
        .collect();
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
        .results(results)
        .invocations(vec![invocation])
        .column_kind(json!("unicodeCodePoints"))
        .build();
    let sarif = Sarif::builder()
        .version(json!("2.1.0"))
        .schema(serde_sarif::sarif::SCHEMA_URL)
        .runs(vec![run])
        .build();
    serde_json::to_writer_pretty(&mut *out, &sarif)?;
    out.write_all(b"\n")
}
