//! A stopped gateway leaves nothing running: aborting the serving task also stops its
//! reloaders (htpasswd, Ray token, OIDC keys), which each hold the gateway.

use crate::common;

use common::*;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn aborting_serve_stops_the_reloaders() {
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("ray_token");
    std::fs::write(&tok, "cluster-token").unwrap();
    let text = config(dir.path(), "http://127.0.0.1:9", &tok, "");
    let cfg = rayward_gateway::Config::parse(&text, "t.toml").unwrap();
    let server = rayward_gateway::Server::bind(&cfg).await.unwrap();
    let gw = server.gateway().clone();
    let task = tokio::spawn(server.serve());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        Arc::strong_count(&gw) > 2,
        "serving and reloading hold the gateway"
    );
    task.abort();
    let _ = task.await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(Arc::strong_count(&gw), 1, "a task still holds the gateway");
}
