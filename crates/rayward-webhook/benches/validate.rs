//! Where the time of one `/validate` review goes, stage by stage, for a RayCluster with a
//! head and three worker groups (KubeRay's `ray-cluster-label-selector.yaml`, wrapped as
//! kube-apiserver sends it; `bench/webhook/make_review.py` builds it):
//!
//! 1. `review_json`: the AdmissionReview body → [`rayward_webhook::review::Request`]
//!    (the object stays raw JSON);
//! 2. `load_object`: the raw object → the audit loader's object tree with spans;
//! 3. `rules`: the audit engine over that object, as configured for admission;
//! 4. `response`: the verdict's AdmissionReview response serialised;
//! 5. `handle`: all of it through [`App::handle`] (plus metrics), as the server calls it.
//!
//! `bench/webhook/run.sh` runs it and reports each stage's share of `handle`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rayward_manifest::load_bytes;
use rayward_rules::engine::Selection;
use rayward_rules::settings::Settings;
use rayward_rules::Severity;
use rayward_webhook::review::{self, ReviewOut};
use rayward_webhook::{App, Mode, Policy};
use std::hint::black_box;

const REVIEW: &[u8] = include_bytes!("../../../bench/webhook/raycluster-3-groups.review.json");

fn policy() -> Policy {
    Policy::new(
        Settings::default(),
        &Selection::default(),
        Mode::Enforce,
        Severity::High,
        Some("rayward-system".into()),
    )
    .expect("the default selection names known rules")
}

fn stages(c: &mut Criterion) {
    let policy = policy();
    let req = review::parse(REVIEW).expect("the fixture is an AdmissionReview");
    let raw = req
        .object
        .as_ref()
        .expect("a CREATE carries the object")
        .get();
    let loaded = load_bytes("object", raw.as_bytes(), &policy.limits);
    assert!(loaded.error.is_none() && loaded.objects.len() == 1);
    let objects = loaded.objects;
    // The fixture is an insecure sample: enforce mode denies it, so the response carries
    // the full deny message (the larger answer).
    let d = policy.review(&req, Mode::Enforce);
    assert!(!d.response.allowed && !d.findings.is_empty());

    let mut g = c.benchmark_group("validate");
    g.bench_function("1_review_json", |b| {
        b.iter(|| review::parse(black_box(REVIEW)).unwrap())
    });
    g.bench_function("2_load_object", |b| {
        b.iter(|| load_bytes("object", black_box(raw.as_bytes()), &policy.limits))
    });
    g.bench_function("3_rules", |b| {
        b.iter(|| policy.engine().run(black_box(&objects)))
    });
    g.bench_function("4_response", |b| {
        b.iter_batched(
            || policy.review(&req, Mode::Enforce).response,
            |r| serde_json::to_vec(&ReviewOut::new(r)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    let mut app = App::new(policy);
    // The server logs one line per review to stderr; a benchmark printing 10^5 lines
    // would measure the terminal.
    app.log = false;
    g.bench_function("5_handle", |b| {
        b.iter(|| {
            let r = app.handle("POST", "/validate", black_box(REVIEW));
            assert_eq!(r.status, 200);
            r
        })
    });
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
