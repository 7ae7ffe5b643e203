//! The fast YAML path against saphyr: whenever the fast path answers, its documents must be
//! exactly saphyr's (tree, scalar styles, positions, document indices).

use rayward_manifest::fast::parse_fast;
use rayward_manifest::load::{parse_documents_saphyr, Document, Limits};
use rayward_manifest::Node;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn flat(docs: &[Document]) -> Vec<(usize, &Node)> {
    docs.iter().map(|d| (d.index, &d.root)).collect()
}

/// Checks one input; returns whether the fast path took it.
fn check(name: &str, text: &str) -> bool {
    let limits = Limits::default();
    let fast = std::panic::catch_unwind(|| parse_fast(text, &limits))
        .unwrap_or_else(|_| panic!("parse_fast panicked on {name}:\n{text}"));
    let Some(mut fast) = fast else { return false };
    // The loader resolves the fast path's tree as Kubernetes reads it (saphyr's builder does
    // the same as it goes); a document Kubernetes refuses must be refused by both.
    let resolved: Result<(), _> = fast
        .iter_mut()
        .try_for_each(|d| rayward_manifest::yaml11::resolve_tree(&mut d.root));
    if let Err(r) = resolved {
        assert!(
            parse_documents_saphyr(name, text, &limits).is_err(),
            "fast path refused ({r:?}) what saphyr accepts in {name}:\n{text}"
        );
        return true;
    }
    match parse_documents_saphyr(name, text, &limits) {
        Ok(slow) => assert!(
            flat(&fast) == flat(&slow),
            "fast path differs from saphyr on {name}:\n--- input\n{text}\n--- fast\n{:#?}\n--- saphyr\n{:#?}",
            flat(&fast),
            flat(&slow)
        ),
        Err(e) => panic!("fast path accepted what saphyr rejects ({e}) in {name}:\n{text}"),
    }
    true
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
}

fn corpus_texts() -> Vec<(String, String)> {
    let dir = corpus_dir();
    assert!(
        dir.is_dir(),
        "the shared corpus must be present at {}",
        dir.display()
    );
    let mut files = Vec::new();
    files_under(&dir, &mut files);
    files.retain(|p| {
        matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        )
    });
    files
        .into_iter()
        .filter_map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            let text = String::from_utf8(bytes).ok()?;
            Some((p.display().to_string(), text))
        })
        .collect()
}

#[test]
fn corpus_files_agree_with_saphyr() {
    let texts = corpus_texts();
    assert!(texts.len() > 100, "only {} corpus files", texts.len());
    let mut fast = 0;
    let mut slow = Vec::new();
    for (name, text) in &texts {
        if check(name, text) {
            fast += 1;
        } else {
            slow.push(name.clone());
        }
    }
    println!(
        "fast path took {fast} of {} corpus files; saphyr read {}:",
        texts.len(),
        slow.len()
    );
    for s in &slow {
        println!("  {s}");
    }
    // The point of the fast path: it must take the vast majority of real manifests (what
    // it leaves is anchors and aliases, and the CRDs' multi-line plain scalars).
    assert!(
        fast * 100 >= texts.len() * 80,
        "fast path took only {fast} of {}",
        texts.len()
    );

    // The repository's fuzz corpus, if there is one, goes through the same check.
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    if fuzz.is_dir() {
        let mut files = Vec::new();
        files_under(&fuzz, &mut files);
        for p in files {
            if let Ok(text) = String::from_utf8(std::fs::read(&p).unwrap()) {
                check(&p.display().to_string(), &text);
            }
        }
    }
}

#[test]
fn corpus_files_with_crlf_agree_with_saphyr() {
    let mut fast = 0;
    for (name, text) in corpus_texts() {
        if check(&name, &text.replace('\n', "\r\n")) {
            fast += 1;
        }
    }
    assert!(fast > 100, "fast path took only {fast} CRLF files");
}

/// Hand-picked inputs at the edges of the subset: whatever the fast path answers must be
/// saphyr's answer.
#[test]
fn tricky_inputs_agree_with_saphyr() {
    let cases = [
        "a: b\u{85}c\n",
        "a: b\u{2028}c # d\u{2029}\n",
        "# \u{85} comment\na: 1\n",
        "a: \u{a0}b\n",
        "\u{a0}a: b\n",
        "a: b\u{feff}\n",
        "\"a\"  : b\n",
        "\"a\":\n",
        "\"a\":b\n",
        "'a':\n- x\n",
        "- \"a\": b\n  'c': d\n",
        "-x: 1\n",
        "- -a: 1\n",
        "- -\n",
        "- - \n",
        "-\n  - a\n",
        "a: b #\tc\n",
        "a: b\t\n",
        "  # \t\na: 1\n",
        "a:    |\n  x\n",
        "a: |-  \n  x\n",
        "a: >+ # c\n  x\n\n\n",
        "a: |\n\n\n",
        "a: >\n\n  x\n\n  y\n\n\n",
        "a: >\n  x\n    y\n  z\n",
        "a: >\n   x\n  y\n",
        "a: >\n  \tx\n  y\n",
        "a: |\n  x\n...\n",
        "a: |\n  x\n--- \nb: 1\n",
        "---   \na: 1\n",
        "--- # c\n- a\n",
        "---\n- a\n...\n# c\n",
        "a: 1\n...\n",
        "a: 1\n... # c\nb: 2\n",
        "...\n",
        "---\n...\n",
        "a: [a,b]\n",
        "a: {a: [b,c],d: e}\n",
        "a: [ ]\n",
        "a: { }\n",
        "a: [\"\", '']\n",
        "a: {\"\": x}\n",
        "a: [a]  # c\n",
        "a: [a]# c\n",
        "a: [a]b\n",
        "a: [-]\n",
        "a: [a -]\n",
        "a: [a - b]\n",
        "a: [a:b]\n",
        "a: [\"a\":b]\n",
        "a: {a :b}\n",
        "a: {a: b:c}\n",
        "a: [a, [b, [c, [d]]]]\n",
        "a: [a}\n",
        "a: {a]\n",
        "a: [a]]\n",
        "a: b]\n",
        "a: b}\n",
        "a: ]b\n",
        "a: ,b\n",
        "a: b,\n",
        "a: 'b'c\n",
        "a: 'b' c\n",
        "a: 'b':\n",
        "a: \"b\" # c\n",
        "a:b: c\n",
        "a::\n",
        "a:: b\n",
        "::\n",
        "a: -\n",
        "a: - b\n",
        "a: --- b\n",
        "--- a: b\n",
        "---a: b\n",
        "...a: b\n",
        "a: '''\n",
        "a: ''''\n",
        "a: \"\\\"\"\n",
        "a: \"\\x4\"\n",
        "a: \"\\u00\"\n",
        "a: \"\\U00110000\"\n",
        "a: \"\\x00\"\n",
        "a: \"\\\t\"\n",
        "? \n",
        "a: ? b\n",
        "a: b ? c\n",
        "a: b - c\n",
        "a: b: \n",
        "a: |\n  x\n b: 1\n",
        "- a\n - b\n",
        "- a\n  - b\n",
        "a:\n - b\n - c\n",
        "a:\n - b\n- c\n",
        "a:\n- b\n - c\n",
        "a:\n  b: 1\n  c:\n  - x\n  d: 2\n",
        "- a:\n  - x\n  b: 1\n",
        "- a:\n  - x\n- b\n",
        "- a: 1\n b: 2\n",
        "- a: 1\n   b: 2\n",
        "a:\n\n\n  b: 1\n",
        "a:\n  \n  b: 1\n",
        "a: 1\n\n\n",
        "a: 1",
        "a:",
        "- ",
        "-",
        "'a'",
        "\"a\" # c",
        "[a]",
        "{a: b}   ",
        "a: b\n\u{feff}",
        "\u{3000}[a]\n",
        "\u{3000}[a\t]\n",
        "[a,\tb]\n",
        "a: \"x\ty\"\n",
        "{a: \"\t\"}\n",
        "a: 1\r\n",
        "a: |\r\n  x\r\n\r\n",
        "a: 'x'\r\n",
        "a: \"x\r\n\"\n",
        "a: b\r\r\n",
        "a:\n  |\n    x\n",
        "a:\n  >-\n   x\nb: 1\n",
        "a:\n  |\n  x\n",
        "-\n  |\n  x\n",
        "- - |\n    x\n  - y\n",
        "- - |\n   x\n",
        "- a: - b\n",
        "- a:\n    |\n     x\n",
        "a:\n- |\n x\n",
        "a:\n- |\n  x\n - y\n",
        "k:\n  - a: |\n      x\n    b: >\n      y\n  - c\n",
    ];
    let mut taken = 0;
    for (i, text) in cases.iter().enumerate() {
        if check(&format!("tricky case #{i}"), text) {
            taken += 1;
        }
    }
    println!("tricky inputs: {}, fast path took {taken}", cases.len());
}

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Scalars from the subset.
const WORDS: &[&str] = &[
    "a",
    "name",
    "ray-head",
    "true",
    "null",
    "~",
    "1",
    "-1",
    "0x1F",
    "3.5",
    "a b",
    "a:b",
    "a#b",
    "http://x/y",
    "é",
    "日本 語",
    "--flag",
    "x,y",
    "b]c",
    "a]",
];

/// Plain scalars that may stand in a flow collection.
const FLOW_WORDS: &[&str] = &["a", "true", "1", "-2", "a b", "a:b", "é", "~", "null"];

/// Scalars at or past the subset's edge.
const EDGE: &[&str] = &[
    "", "<<", "-", "?x", ":x", "a: b", "a #b", "[x]", "{x}", "'q'", "\"q\"", "a\tb", "\\", "&a x",
    "*a", "!!str x", "%x", "@x",
];

const QUOTED: &[&str] = &[
    "'a'",
    "'it''s'",
    "''",
    "' x '",
    "\"a\"",
    "\"\"",
    "\"a\\nb\"",
    "\"\\u00e9\\x41\\t\\\"\\\\\"",
    "\"\\U0001F600\"",
    "\"é # x\"",
    "\"tab\there\"",
];

/// Quoted scalars that saphyr rejects or that span lines.
const BAD_QUOTED: &[&str] = &["\"\\ud800\"", "\"\\q\"", "\"a\\", "'a", "\"a\\\n b\""];

fn scalar(r: &mut Rng) -> String {
    match r.below(200) {
        0..40 => r.pick(QUOTED).to_string(),
        40..43 => r.pick(BAD_QUOTED).to_string(),
        43..48 => r.pick(EDGE).to_string(),
        _ => r.pick(WORDS).to_string(),
    }
}

fn flow_scalar(r: &mut Rng) -> String {
    if r.chance(90) {
        r.pick(FLOW_WORDS).to_string()
    } else {
        scalar(r)
    }
}

fn flow(r: &mut Rng, depth: usize) -> String {
    let n = r.below(4);
    let map = r.chance(50);
    let mut parts = Vec::new();
    for _ in 0..n {
        let v = if depth < 2 && r.chance(20) {
            flow(r, depth + 1)
        } else {
            flow_scalar(r)
        };
        if map {
            parts.push(format!("{}: {v}", flow_scalar(r)));
        } else {
            parts.push(v);
        }
    }
    let sep = if r.chance(80) { ", " } else { "," };
    let body = parts.join(sep);
    if map {
        format!("{{{body}}}")
    } else {
        format!("[{body}]")
    }
}

fn comment(r: &mut Rng) -> &'static str {
    if r.chance(10) {
        r.pick(&[" # c", "  #", " # é", "#x"])
    } else {
        ""
    }
}

fn block_scalar(r: &mut Rng, indent: usize) -> String {
    let head = r.pick(&["|", "|-", "|+", ">", ">-", ">+", "|2", "| # c"]);
    let mut s = format!("{head}{}\n", comment(r));
    let extra = if r.chance(10) { 1 } else { 2 };
    for _ in 0..r.below(5) {
        let ind = indent + extra + if r.chance(15) { 2 } else { 0 };
        match r.below(6) {
            0 => s.push('\n'),
            1 => s.push_str(&format!("{}\n", " ".repeat(r.below(ind + 3)))),
            _ => s.push_str(&format!("{}{}\n", " ".repeat(ind), scalar(r))),
        }
    }
    s
}

/// A value after `key:` or `- `, at nesting `indent`; `s` ends right after the indicator.
fn value(r: &mut Rng, s: &mut String, indent: usize, depth: usize) {
    match r.below(10) {
        0 if depth < 4 => {
            s.push_str(comment(r));
            s.push('\n');
            let step = [2, 2, 4, 1][r.below(4)];
            block(r, s, indent + step, depth + 1);
        }
        1 if depth < 4 => {
            s.push('\n');
            seq(r, s, indent, depth + 1);
        }
        2 => {
            s.push_str(comment(r));
            s.push('\n');
        }
        3 => {
            s.push(' ');
            s.push_str(&block_scalar(r, indent));
        }
        4 => {
            s.push(' ');
            s.push_str(&flow(r, 0));
            s.push_str(comment(r));
            s.push('\n');
        }
        _ => {
            s.push(' ');
            s.push_str(&scalar(r));
            s.push_str(comment(r));
            s.push('\n');
        }
    }
}

fn seq(r: &mut Rng, s: &mut String, indent: usize, depth: usize) {
    for _ in 0..1 + r.below(3) {
        s.push_str(&" ".repeat(indent));
        s.push('-');
        if depth < 4 && r.chance(30) {
            // A compact mapping.
            s.push(' ');
            let inner = indent + 2;
            for i in 0..1 + r.below(3) {
                if i > 0 {
                    s.push_str(&" ".repeat(inner));
                }
                s.push_str(&scalar(r));
                s.push(':');
                value(r, s, inner, depth + 1);
            }
        } else if depth < 4 && r.chance(10) {
            s.push(' ');
            s.push_str("- ");
            s.push_str(&scalar(r));
            s.push('\n');
        } else {
            value(r, s, indent, depth);
        }
    }
}

fn block(r: &mut Rng, s: &mut String, indent: usize, depth: usize) {
    if r.chance(25) {
        return seq(r, s, indent, depth);
    }
    for _ in 0..1 + r.below(4) {
        if r.chance(5) {
            s.push_str(&format!("{}# comment\n", " ".repeat(r.below(6))));
        }
        if r.chance(3) {
            s.push('\n');
        }
        s.push_str(&" ".repeat(indent));
        s.push_str(&scalar(r));
        s.push(':');
        value(r, s, indent, depth);
    }
}

fn document(r: &mut Rng) -> String {
    let mut s = String::new();
    for i in 0..1 + r.below(3) {
        if i > 0 || r.chance(30) {
            s.push_str(r.pick(&["---\n", "--- # doc\n", "---\n\n", "...\n---\n"]));
        }
        match r.below(12) {
            0 => s.push_str(&format!("{}\n", scalar(r))),
            1 => s.push_str(&format!("{}\n", flow(r, 0))),
            2 => {}
            _ => {
                let indent = if r.chance(5) { 2 } else { 0 };
                block(r, &mut s, indent, 0)
            }
        }
    }
    if r.chance(10) {
        s.pop();
    }
    if r.chance(5) {
        s.push_str("...\n");
    }
    s
}

fn mutate(r: &mut Rng, text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..1 + r.below(3) {
        if chars.is_empty() {
            break;
        }
        let at = r.below(chars.len() + 1);
        let ins = [
            ':', '#', '\'', '"', '-', ' ', ' ', '\n', '|', '>', '{', '[', ']', '}', ',', '\t', '&',
            '*', '!', '?', '\\', '\r', 'x', 'é',
        ];
        match r.below(3) {
            0 if at < chars.len() => {
                chars.remove(at);
            }
            1 if at < chars.len() => {
                chars[at] = ins[r.below(ins.len())];
            }
            _ => chars.insert(at, ins[r.below(ins.len())]),
        }
    }
    chars.into_iter().collect()
}

/// Seed and duration of the randomized tests: fixed by default, so a failure reproduces;
/// `FAST_YAML_SEED` and `FAST_YAML_SECS` run other or longer campaigns.
fn campaign(default_seed: u64) -> (Rng, Instant) {
    let seed = std::env::var("FAST_YAML_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(default_seed, |s| s ^ default_seed);
    let secs = std::env::var("FAST_YAML_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    (Rng(seed | 1), Instant::now() + Duration::from_secs(secs))
}

#[test]
fn random_documents_agree_with_saphyr() {
    let (mut r, deadline) = campaign(0x5eed_1234_abcd_0001);
    let (mut n, mut taken) = (0, 0);
    while Instant::now() < deadline || n < 2000 {
        let doc = document(&mut r);
        let text = if r.chance(30) {
            mutate(&mut r, &doc)
        } else {
            doc
        };
        if check(&format!("random #{n}"), &text) {
            taken += 1;
        }
        n += 1;
    }
    println!("random documents: {n}, fast path took {taken}");
    assert!(taken * 4 > n, "fast path took only {taken} of {n}");
}

#[test]
fn mutated_corpus_files_agree_with_saphyr() {
    let mut texts = corpus_texts();
    // Smaller files first, so many files get mutated within the time budget.
    texts.sort_by_key(|(_, t)| t.len());
    let (mut r, deadline) = campaign(0x0dd_f00d_cafe_0002);
    let (mut n, mut taken) = (0, 0);
    'outer: loop {
        for (name, text) in &texts {
            if Instant::now() > deadline && n >= 500 {
                break 'outer;
            }
            let text = if text.len() > 20_000 {
                // Mutate a window of big files, so each check stays fast.
                let mut start = r.below(text.len() - 10_000);
                while !text.is_char_boundary(start) {
                    start -= 1;
                }
                let mut end = start + 10_000;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text[start..end].to_string()
            } else {
                text.clone()
            };
            if check(&format!("{name} (mutation #{n})"), &mutate(&mut r, &text)) {
                taken += 1;
            }
            n += 1;
        }
    }
    println!("mutated corpus files: {n}, fast path took {taken}");
}
