//! Arbitrary bytes as the body of every webhook endpoint: `App::handle` must answer
//! (HTTP 400/404/405, or a well-formed AdmissionReview naming the request's uid), never
//! panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rayward_rules::engine::Selection;
use rayward_rules::settings::Settings;
use rayward_rules::Severity;
use rayward_webhook::{App, Mode, Policy};
use std::sync::OnceLock;

fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(|| {
        let policy = Policy::new(
            Settings::default(),
            &Selection::default(),
            Mode::Enforce,
            Severity::High,
            Some("rayward-system".into()),
        )
        .expect("the default selection is valid");
        let mut app = App::new(policy);
        app.log = false;
        app
    })
}

fuzz_target!(|data: &[u8]| {
    for path in ["/validate", "/validate/warn", "/validate/dry-run", "/mutate"] {
        let r = app().handle("POST", path, data);
        match r.status {
            200 => {
                let v: serde_json::Value =
                    serde_json::from_slice(&r.body).expect("a 200 is a JSON AdmissionReview");
                assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
                assert!(v["response"]["uid"].as_str().is_some_and(|u| !u.is_empty()));
                assert!(v["response"]["allowed"].is_boolean());
            }
            400 => {}
            s => panic!("unexpected status {s} for {path}"),
        }
    }
});
