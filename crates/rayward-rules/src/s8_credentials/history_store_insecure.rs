use crate::s9_jobs::rayjob_no_history::is_collector;
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::{Node, Workload};

declare_rule! {
    /// ## What it checks
    /// The configuration of every history collector (a container running `rayward history
    /// collect`, docs/history.md) in a Ray object:
    /// - a `--store` URL (`--store URL` or `--store=URL`) that holds a user name or
    ///   password (`s3://KEY:SECRET@bucket/…`), or that is plain `http://`;
    /// - the collector's env pointing the S3 client at a plain-HTTP endpoint
    ///   (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT`, `AWS_ENDPOINT_URL_S3` starting with `http://`)
    ///   or allowing HTTP (`AWS_ALLOW_HTTP`, `AZURE_ALLOW_HTTP`, `GOOGLE_ALLOW_HTTP` true).
    ///
    /// Store keys written as literal env values or arguments are RW801's finding.
    ///
    /// ## Why it matters (guide §1.1, §8)
    /// The collector ships every log line, traceback, environment summary and task table of
    /// the cluster. Over plain HTTP anyone on the path reads them and can alter what is
    /// stored as evidence; with request signing on an HTTP endpoint, the signed requests
    /// can be replayed. A key in the URL is in every manifest copy and every `ps` listing.
    ///
    /// ## Example
    /// ```yaml
    /// - name: rayward-history
    ///   args: [history, collect, --store, s3://history/prod, ...]
    ///   env:
    ///   - {name: AWS_ENDPOINT_URL, value: "http://minio.storage:9000"}
    ///   - {name: AWS_ALLOW_HTTP, value: "true"}
    /// ```
    ///
    /// ## Fix
    /// Serve the store over HTTPS (`AWS_ENDPOINT_URL: https://…`, no `AWS_ALLOW_HTTP`) and
    /// give credentials through workload identity or `--credentials-file` from a Secret.
    pub struct HistoryStoreInsecure {
        id: "RW803",
        name: "history-store-insecure",
        severity: Medium,
        section: "8",
        summary: "History collector ships to a store over plain HTTP, or holds credentials in its store URL",
        fix: "Use an HTTPS store endpoint (no AWS_ALLOW_HTTP) and credentials from workload identity or a mounted Secret (`--credentials-file`), never in the URL.",
        scope: Object,
        fixer: None,
        companion: None,
    }
}

const ENDPOINT_VARS: &[&str] = &["AWS_ENDPOINT_URL", "AWS_ENDPOINT", "AWS_ENDPOINT_URL_S3"];
const ALLOW_HTTP_VARS: &[&str] = &["AWS_ALLOW_HTTP", "AZURE_ALLOW_HTTP", "GOOGLE_ALLOW_HTTP"];

/// What is wrong with a store URL, if anything.
fn store_problem(url: &str) -> Option<&'static str> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.contains('@') {
        return Some("holds credentials in the URL");
    }
    scheme
        .eq_ignore_ascii_case("http")
        .then_some("is plain HTTP")
}

impl Rule for HistoryStoreInsecure {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        for (_, c) in w.containers() {
            if !is_collector(c.node) {
                continue;
            }
            let args = c.node.get("args").map(Node::as_seq).unwrap_or(&[]);
            for (i, a) in args.iter().enumerate() {
                let Some(s) = a.as_str() else { continue };
                // The URL's own item: `--store=URL`, or the item after `--store`.
                let (at, url) = match s.strip_prefix("--store=") {
                    Some(u) => (i, Some(u)),
                    None if s == "--store" => (i + 1, args.get(i + 1).and_then(Node::as_str)),
                    None => (i, None),
                };
                let Some(url) = url else { continue };
                if let Some(why) = store_problem(url) {
                    // Never echo a URL that may hold a key.
                    out.report(
                        w.obj,
                        c.path.key("args").idx(at),
                        args[at].pos,
                        format!("the history collector's store URL {why}"),
                    );
                }
            }
            for (i, e) in c
                .node
                .get("env")
                .map(Node::as_seq)
                .unwrap_or(&[])
                .iter()
                .enumerate()
            {
                let (Some(name), Some(value)) =
                    (e.get("name").and_then(Node::as_str), e.get("value"))
                else {
                    continue;
                };
                let text = value
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| value.as_bool().map(|b| b.to_string()));
                let Some(text) = text else { continue };
                let plain = (ENDPOINT_VARS.contains(&name)
                    && text.to_ascii_lowercase().starts_with("http://"))
                    || (ALLOW_HTTP_VARS.contains(&name) && text.eq_ignore_ascii_case("true"));
                if plain {
                    out.report(
                        w.obj,
                        c.path.key("env").idx(i),
                        value.pos,
                        format!(
                            "the history collector talks to its store over plain HTTP ({name}={text}): the logs and job records it ships can be read and altered on the way"
                        ),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn store_urls() {
        use super::store_problem;
        assert_eq!(store_problem("s3://b/p"), None);
        assert_eq!(store_problem("s3://b/p@x"), None);
        assert_eq!(
            store_problem("s3://AKIA:s@b/p"),
            Some("holds credentials in the URL")
        );
        assert_eq!(store_problem("http://minio/b"), Some("is plain HTTP"));
        assert_eq!(store_problem("/data"), None);
    }
}
