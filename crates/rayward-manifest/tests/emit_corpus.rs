//! The emitter over every document of the real KubeRay manifests in
//! `../shared/corpus/kuberay`: what it writes loads back to the same tree (positions
//! aside), and writing that again gives the same bytes.

use rayward_manifest::emit::to_yaml;
use rayward_manifest::load::{decode, parse_documents};
use rayward_manifest::{expand_paths, Limits};
use std::path::Path;

#[test]
fn every_corpus_document_round_trips() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/kuberay");
    assert!(
        corpus.is_dir(),
        "the shared corpus must sit at ../shared: {}",
        corpus.display()
    );
    let (files, errors) = expand_paths(&[corpus]);
    assert!(errors.is_empty(), "{errors:?}");
    let limits = Limits::default();
    let mut docs = 0;
    for f in &files {
        let name = f.display().to_string();
        let bytes = std::fs::read(f).unwrap();
        let text = decode(&name, &bytes, &limits).unwrap();
        for d in parse_documents(&name, text, &limits).unwrap() {
            let out = to_yaml(&d.root);
            let back = parse_documents("emitted", &out, &limits).unwrap_or_else(|e| {
                panic!(
                    "{name} doc {}: emitted YAML does not load: {e}\n{out}",
                    d.index
                )
            });
            assert_eq!(
                back.len(),
                1,
                "{name} doc {}: one document in, one out",
                d.index
            );
            assert!(
                d.root.same_as(&back[0].root),
                "{name} doc {}: the tree changed in a round trip:\n{out}",
                d.index
            );
            assert_eq!(
                to_yaml(&back[0].root),
                out,
                "{name} doc {}: not stable",
                d.index
            );
            docs += 1;
        }
    }
    // INDEX.md: 241 documents in 132 files.
    assert!(docs >= 241, "only {docs} documents");
}
