//! The fast YAML path construct by construct: what it takes must equal saphyr's documents
//! exactly, and what lies outside its subset must come back `None`.

use rayward_manifest::fast::parse_fast;
use rayward_manifest::load::{parse_documents_saphyr, Document, Limits};
use rayward_manifest::{Node, Pos, Value};

fn flat(docs: &[Document]) -> Vec<(usize, Node)> {
    docs.iter().map(|d| (d.index, d.root.clone())).collect()
}

/// The fast path takes `text`, and gives exactly saphyr's documents.
#[track_caller]
fn same(text: &str) -> Vec<(usize, Node)> {
    let limits = Limits::default();
    let slow = parse_documents_saphyr("t.yaml", text, &limits)
        .unwrap_or_else(|e| panic!("saphyr rejects {text:?}: {e}"));
    let Some(mut fast) = parse_fast(text, &limits) else {
        panic!("the fast path gave up on {text:?}");
    };
    // What the loader does with the fast path's tree before anyone sees it.
    for d in &mut fast {
        rayward_manifest::yaml11::resolve_tree(&mut d.root)
            .unwrap_or_else(|r| panic!("refused {text:?}: {r:?}"));
    }
    assert_eq!(flat(&fast), flat(&slow), "on {text:?}");
    flat(&fast)
}

/// The fast path gives up on `text`.
#[track_caller]
fn bails(text: &str) {
    assert!(
        parse_fast(text, &Limits::default()).is_none(),
        "the fast path should give up on {text:?}"
    );
}

fn pos(line: u32, col: u32) -> Pos {
    Pos { line, col }
}

fn root(text: &str) -> Node {
    let docs = same(text);
    assert_eq!(docs.len(), 1, "{text:?}");
    docs[0].1.clone()
}

fn text_of(n: &Node) -> (&str, bool) {
    match &n.value {
        Value::Scalar { text, plain } => (text.as_ref(), *plain),
        other => panic!("not a scalar: {other:?}"),
    }
}

#[test]
fn block_mappings_and_sequences() {
    same("a: 1\nb: two words\nc:\n  d: x\n  e:\n    f: y\ng: z\n");
    same("  a: 1\n  b: 2\n");
    same("- a\n- b\n-  c\n");
    same("a:\n  - x\n  - y\nb: 1\n");
    same("a:\n    - x\n    -   y\n");
    same("- - a\n  - b\n- - - c\n");
    same("- a: 1\n  b: 2\n- c: 3\n");
    same("-   a: 1\n    b: 2\n");
    same("a:\n  - b: 1\n    c:\n      - d\n");
    same("\"quoted key\": 1\n'single': 2\n\"\": 3\n");
    same("a : 1\nb  :   2  \n");
    same("key with spaces: value with:colon\n");
}

#[test]
fn kubernetes_style_sequences_at_the_key_indentation() {
    let r = root("containers:\n- name: x\n  image: y\n- name: z\nafter: 1\n");
    let seq = r.get("containers").unwrap();
    // saphyr places an indentless sequence after its first `- `, not at the dash.
    assert_eq!(seq.pos, pos(2, 3));
    assert_eq!(seq.as_seq().len(), 2);
    same("a:\n-\n- b\n-   # c\n  x: 1\nc: 2\n");
    same("a:\n- - x\n  - y\n- z\n");
    same("a:\n  b:\n  - 1\n  c:\n  - 2\n");
}

#[test]
fn positions_follow_saphyr() {
    let r = root("a:\nb: # c\nc:\n  - \n  -\n  - d\n");
    let (k, v) = r.get_entry("a").unwrap();
    assert_eq!(k.pos, pos(1, 1));
    // An empty mapping value sits at its `:`.
    assert_eq!((text_of(v), v.pos), (("", true), pos(1, 2)));
    assert_eq!(r.get("b").unwrap().pos, pos(2, 2));
    let c = r.get("c").unwrap().as_seq();
    // An empty sequence entry sits after its `-`, blanks and comment.
    assert_eq!(c[0].pos, pos(4, 5));
    assert_eq!(c[1].pos, pos(5, 4));
    assert_eq!(c[2].pos, pos(6, 5));
    // Block mappings and sequences start at their first key or dash; quoted scalars at
    // their quote; flow collections at their bracket.
    let r = root("x:\n  - 'q'\n  - {a: [1]}\n");
    let x = r.get("x").unwrap();
    assert_eq!(x.pos, pos(2, 3));
    assert_eq!(x.as_seq()[0].pos, pos(2, 5));
    assert_eq!(x.as_seq()[1].pos, pos(3, 5));
    assert_eq!(x.as_seq()[1].get("a").unwrap().pos, pos(3, 9));
}

#[test]
fn columns_count_characters() {
    let r = root("日本: 語\nb: |\n  x\n");
    assert_eq!(r.get("日本").unwrap().pos, pos(1, 5));
    let r = root("a:\n- # é\n");
    assert_eq!(r.get("a").unwrap().pos, pos(2, 6));
}

#[test]
fn plain_scalars() {
    let r = root(
        "a: b:c\nd: e#f\ng: h # comment\ni: -1\nj: --flag\nk: x, y [z] {w}\nl: ~\nm: a 'b' \"c\"\n",
    );
    assert_eq!(text_of(r.get("a").unwrap()), ("b:c", true));
    assert_eq!(text_of(r.get("d").unwrap()), ("e#f", true));
    assert_eq!(text_of(r.get("g").unwrap()), ("h", true));
    assert_eq!(text_of(r.get("k").unwrap()), ("x, y [z] {w}", true));
    same("url: http://example.com:8080/x?y=z&w=1\n");
    same("a: b   \n");
    same("a: true\nb: 0x1F\nc: null\nd: 1.5e3\n");
}

#[test]
fn quoted_scalars() {
    let r = root(
        "a: 'it''s'\nb: \"tab\\there \\\"q\\\" \\\\ \\u00e9 \\x41 \\U0001F600 \\/ \\N \\_ \\L \\P \\0 \\a \\b \\v \\f \\r \\e \\ \"\nc: ''\nd: \"#not a comment\" # but this is\ne: ' spaced '\n",
    );
    assert_eq!(text_of(r.get("a").unwrap()), ("it's", false));
    assert_eq!(text_of(r.get("c").unwrap()), ("", false));
    assert_eq!(text_of(r.get("d").unwrap()), ("#not a comment", false));
    assert_eq!(text_of(r.get("e").unwrap()), (" spaced ", false));
    same("a: \"raw\ttab\"\n");
    same("- \"x\"\n- 'y'  # c\n");
}

#[test]
fn flow_collections() {
    let r = root("a: []\nb: {}\nc: [a, \"b\", 1]\nd: {a: b, c: \"d\"}\ne: [[1, 2], {x: [y]}]\nf: [a, ]\ng: {\"j\":1, 'k':  [2]}\n");
    assert_eq!(r.get("c").unwrap().as_seq().len(), 3);
    assert_eq!(r.get("f").unwrap().as_seq().len(), 1);
    same("[a, b]\n");
    same("{a: 1}\n");
    same("- [ a , b ]  # c\n- {}\n");
    same("a: [a b, c:d, -1, é]\n");
}

#[test]
fn block_scalars() {
    same("a: |\n  line1\n  line2\nb: 1\n");
    same("a: |-\n  x\n\n\nb: 1\n");
    same("a: |+\n  x\n\n\nb: 1\n");
    same("a: >\n  f1\n  f2\n\n  f3\n    more\n  f4\nb: 1\n");
    same("a: >-\n  x\n  y\n");
    same("a: >+\n  x\n\n");
    same("a: | # comment\n  x\n");
    same("a: |\n\n  leading blank\n");
    same("a: |\n    deeper\n      more\n    back\nb: 1\n");
    same("a: |\nb: |\n\n\nc: >\n \n  x\n");
    same("- |\n  script\n  more\n- >-\n  folded\n");
    same("- a: |\n    x\n  b: y\n");
    same("a:\n- |\n  x\n- y\n");
    same("a: |\n  # not a comment\n  ---\n  x\n---\nb: 1\n");
    same("a: |\n  x\n  ");
    same("a: |+\n  x\n\n  ");
    same("a: |+\n");
    same("a: |+\n  ");
    same("a: |");
    same("a: |\n  x");
    same("a: >\n  x\n   \n  y\n");
    same("a: >\n  x\n\n   y\n  z\n");
    same("a: |\n  tab\tinside\n");
    let r = root("a: |\n  x\n");
    assert_eq!(r.get("a").unwrap().pos, pos(2, 3));
    assert_eq!(text_of(r.get("a").unwrap()), ("x\n", false));
}

#[test]
fn comments_and_documents() {
    let docs = same("# head\n---\na: 1 # c\n...\n---\n# only a comment\n---\nb\n--- # x\n[c]\n");
    let idx: Vec<usize> = docs.iter().map(|d| d.0).collect();
    assert_eq!(idx, vec![0, 2, 3]);
    same("a: 1\n---\n");
    same("---\n---\n");
    same("...\na: 1\n...\n...\n---\nb: 2\n");
    same("a: 1\n   # indented comment\nb: 2\n");
    same("null\n---\n~\n---\na: 1\n");
    same("");
    same("# nothing\n\n");
    same("a:\n  # comment between\n  b: 1\n");
}

#[test]
fn crlf_line_endings() {
    same("a: 1\r\nb:\r\n- x\r\nc: |\r\n  l1\r\n  l2\r\n");
    bails("a: 1\rb: 2\n");
}

#[test]
fn gives_up_outside_the_subset() {
    bails("a: &x 1\nb: *x\n");
    bails("a: !!str 1\n");
    bails("? a\n: b\n");
    bails("a: 1\n<<: {b: 2}\n");
    bails("a: {<<: 1}\n");
    bails("a: multi\n  line\n");
    bails("- multi\n  line\n");
    bails("a:\n  multi\n  line\n");
    bails("a: 'multi\n  line'\n");
    bails("a: \"multi\n  line\"\n");
    bails("a: \"escaped \\\n  break\"\n");
    bails("a:\tb\n");
    bails("\ta: b\n");
    bails("a: b\t# c\n");
    bails("%YAML 1.2\n---\na: 1\n");
    bails("a: [1,\n  2]\n");
    bails("{\n\"a\": 1\n}\n");
    bails("\u{feff}a: 1\n");
    bails("a: |2\n   x\n");
    bails("a: [a: b]\n");
    bails("a: {b}\n");
    bails("a: {b: }\n");
    bails("a: {b:[c]}\n");
    bails("a: {b:{c: d}}\n");
    bails("a: [a, , b]\n");
    bails("a: [a # c]\n");
    bails("--- a\n");
    bails("--- |\n  x\n");
    bails("a: b: c\n");
    bails("a: - b\n");
    bails("a: ?x\n");
    bails("a: :x\n");
    bails("a: @x\n");
    bails("a: `x\n");
    bails("[a]: b\n");
    bails("a: \"\\q\"\n");
    bails("a: \"\\ud800\"\n");
    bails("a: 'unclosed\n");
    bails("a: \"x\"y\n");
    bails("a: \"x\"#c\n");
    bails("a: 1\n b: 2\n");
    bails("a:\n  b: 1\n c: 2\n");
    bails("- a\nb: 1\n");
    bails("a: 1\n- b\n");
    bails("|\n  root block scalar\n");
    bails("a\nb\n");
    bails("a: |\n    x\n  b: 1\n");
    bails("a: |\n    deeper\n  less\n");
    // A blank line deeper than the first content line is an error in a block scalar.
    bails("a: |\n    \n  # comment\nb: 1\n");
    bails("key: value with: colon\n");
    bails("a: b\0\n");
    bails("a: b\n  # c\n  d\n");
    bails(&format!("{}: 1\n", "k".repeat(1100)));
}

#[test]
fn gives_up_past_the_limits() {
    let deep = "a:\n  b:\n    c:\n      d: 1\n";
    let shallow = Limits {
        max_depth: 3,
        ..Limits::default()
    };
    assert!(parse_fast(deep, &shallow).is_none());
    let ok = Limits {
        max_depth: 4,
        ..Limits::default()
    };
    assert!(parse_fast(deep, &ok).is_some());
    assert!(parse_fast("[[[[1]]]]", &shallow).is_none());
    let few = Limits {
        max_nodes: 4,
        ..Limits::default()
    };
    assert!(parse_fast("a: 1\nb: 2\n", &few).is_none());
    assert!(parse_fast("a: 1\nb: 2\n", &Limits::default()).is_some());
    // Nesting far beyond any limit neither overflows the stack nor succeeds.
    let unbounded = Limits {
        max_depth: usize::MAX,
        ..Limits::default()
    };
    let s = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(parse_fast(&s, &unbounded).is_none());
    let s: String = (0..5_000)
        .map(|i| format!("{}k:\n", " ".repeat(i)))
        .collect();
    assert!(parse_fast(&s, &unbounded).is_none());
}

#[test]
fn parse_documents_uses_the_fast_path_and_keeps_errors() {
    use rayward_manifest::load::parse_documents;
    let l = Limits::default();
    let text = "kind: Pod\nspec:\n  containers:\n  - name: x\n";
    assert_eq!(
        flat(&parse_documents("f", text, &l).unwrap()),
        flat(&parse_fast(text, &l).unwrap())
    );
    // Errors still come from saphyr, with its positions.
    let e = parse_documents("f", "a: 1\nb: [1, 2\nc: 3\n", &l).unwrap_err();
    assert!(e.line >= 2, "{e}");
    let deep = Limits {
        max_depth: 2,
        ..Limits::default()
    };
    let e = parse_documents("f", "a:\n  b:\n    c: 1\n", &deep).unwrap_err();
    assert!(
        matches!(e.kind, rayward_manifest::LoadErrorKind::TooDeep(2)),
        "{e}"
    );
}

#[test]
fn long_non_ascii_lines_stay_linear() {
    // 300,000 nodes on one 1.2 MB line: recounting columns from the line's start for each
    // would take tens of billions of steps.
    let line = format!("a: [{}é]\n", "é, ".repeat(300_000));
    let start = std::time::Instant::now();
    let docs = parse_fast(&line, &Limits::default()).expect("one-line flow sequence");
    assert!(start.elapsed().as_secs() < 10, "{:?}", start.elapsed());
    let items = docs[0].root.get("a").unwrap().as_seq();
    assert_eq!(items.len(), 300_001);
    assert_eq!(items[300_000].pos, pos(1, 5 + 3 * 300_000));
}
