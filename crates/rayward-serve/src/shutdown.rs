//! The signal a server stops on.

/// Resolves on SIGTERM (Kubernetes stopping the pod) or Ctrl-C. If the SIGTERM handler
/// cannot be installed, Ctrl-C alone stops the server.
pub async fn signal() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
