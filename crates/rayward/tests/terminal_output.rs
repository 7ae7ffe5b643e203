//! Output that cannot attack the terminal (issue 10 §5): names, paths and values with
//! ESC/CSI/OSC sequences, CR, BEL, C1 controls and bidi overrides come out escaped in
//! every human-readable output (text report, stderr errors, harden's diff headers), while
//! JSON keeps the exact value and JUnit stays well-formed XML.

use std::io::Write;
use std::process::{Command, Stdio};

fn rayward(args: &[&str], input: &str) -> (i32, Vec<u8>, Vec<u8>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rayward"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    (o.status.code().unwrap(), o.stdout, o.stderr)
}

/// A cluster whose name, container name and suppression reason carry terminal sequences
/// (YAML escapes: `\e` is ESC, `\a` BEL).
const HOSTILE: &str = r#"apiVersion: ray.io/v1
kind: RayCluster
metadata:
  name: "x\e]0;pwned\a\e[2J\r\u202Eevil\x9b"
  namespace: t
  annotations:
    rayward.io/ignore: "RW701 # reason\e[31m\r"
spec:
  headGroupSpec:
    template:
      spec:
        containers:
        - name: "head\e[8m\u2066"
          image: rayproject/ray:2.40.0
          securityContext: {privileged: true}
"#;

/// No byte that acts on a terminal (C0 but LF, DEL, the UTF-8 of C1 and bidi controls).
fn assert_inert(label: &str, out: &[u8]) {
    let text = String::from_utf8_lossy(out);
    for (i, c) in text.chars().enumerate() {
        let bad = (c.is_control() && c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        assert!(!bad, "{label}: raw {:?} at char {i}:\n{text}", c);
    }
}

#[test]
fn text_report_escapes_what_the_input_chose() {
    let (code, out, err) = rayward(&["audit", "-", "--show-suppressed"], HOSTILE);
    assert_eq!(code, 1, "{}", String::from_utf8_lossy(&err));
    assert_inert("audit text", &out);
    assert_inert("audit stderr", &err);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("x\\x1b]0;pwned\\x07\\x1b[2J\\r\\u{202e}evil\\x9b"),
        "{text}"
    );
}

#[test]
fn json_keeps_the_exact_value_and_junit_stays_xml() {
    let (_, out, _) = rayward(&["audit", "-", "--format", "json"], HOSTILE);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let name = v["findings"][0]["object"]["name"].as_str().unwrap();
    assert_eq!(name, "x\x1b]0;pwned\x07\x1b[2J\r\u{202e}evil\u{9b}");
    let (_, out, _) = rayward(&["audit", "-", "--format", "junit"], HOSTILE);
    let xml = String::from_utf8(out).unwrap();
    // XML 1.0 allows no C0 control but tab, LF and CR, raw or as a character reference.
    for c in xml.chars() {
        assert!(
            !c.is_control() || matches!(c, '\t' | '\n' | '\r') || (c as u32) >= 0x7f,
            "raw {c:?} in JUnit XML"
        );
    }
    for bad in ["&#x1b;", "&#27;", "&#x7;", "&#7;"] {
        assert!(!xml.contains(bad), "{bad} is not allowed in XML 1.0");
    }
}

#[test]
fn errors_and_harden_output_are_escaped_too() {
    // A load error names the file: a hostile --stdin-name comes out escaped.
    let (code, out, err) = rayward(
        &[
            "audit",
            "-",
            "--stdin-name",
            "a\x1b[2Jb.yaml",
            "--format",
            "json",
        ],
        "a: [",
    );
    assert_eq!(code, 2);
    assert_inert("audit error line", &err);
    assert!(String::from_utf8_lossy(&err).contains("a\\x1b[2Jb.yaml"));
    let _ = out;
    let (_, out, err) = rayward(&["harden", "-", "--diff"], HOSTILE);
    assert_inert("harden --diff", &out);
    assert_inert("harden stderr", &err);
}
