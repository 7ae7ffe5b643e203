//! Label selectors, matched against the labels pods will really carry.

use crate::node::Node;
use std::borrow::Cow;

/// A label value; `Any` stands for one that is generated at run time (the name of a
/// cluster that a RayJob or RayService creates), which any selector term may match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelValue<'a> {
    Known(Cow<'a, str>),
    Any,
}

/// The labels of a pod. Keys and values borrow from the manifests (or are KubeRay's
/// constants) wherever they can: a run over thousands of clusters holds many of them.
pub type Labels<'a> = Vec<(Cow<'a, str>, LabelValue<'a>)>;

fn lookup<'l, 'a>(labels: &'l Labels<'a>, key: &str) -> Option<&'l LabelValue<'a>> {
    labels
        .iter()
        .rev()
        .find(|(k, _)| k.as_ref() == key)
        .map(|(_, v)| v)
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Term {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
    /// An operator we do not know: matches nothing, so coverage is never overstated.
    Never,
}

/// A parsed selector: `matchLabels` + `matchExpressions`, or a Service's plain map.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Selector {
    terms: Vec<Term>,
}

impl Selector {
    /// A `metav1.LabelSelector`. An empty or missing selector selects everything.
    pub fn from_label_selector(node: Option<&Node>) -> Selector {
        let mut terms = Vec::new();
        let Some(node) = node else {
            return Selector { terms };
        };
        if let Some(ml) = node.get("matchLabels") {
            for (k, v) in ml.as_map() {
                if let (Some(k), Some(v)) = (k.as_str(), v.as_str()) {
                    terms.push(Term::In(k.to_string(), vec![v.to_string()]));
                }
            }
        }
        if let Some(me) = node.get("matchExpressions") {
            for e in me.as_seq() {
                let key = e
                    .get("key")
                    .and_then(Node::as_str)
                    .unwrap_or("")
                    .to_string();
                let values: Vec<String> = e
                    .get("values")
                    .map(Node::as_seq)
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                terms.push(match e.get("operator").and_then(Node::as_str) {
                    Some("In") => Term::In(key, values),
                    Some("NotIn") => Term::NotIn(key, values),
                    Some("Exists") => Term::Exists(key),
                    Some("DoesNotExist") => Term::DoesNotExist(key),
                    _ => Term::Never,
                });
            }
        }
        Selector { terms }
    }

    /// A Service's `spec.selector` (a plain map).
    pub fn from_map(node: &Node) -> Selector {
        let terms = node
            .as_map()
            .iter()
            .filter_map(|(k, v)| {
                Some(Term::In(
                    k.as_str()?.to_string(),
                    vec![v.as_str()?.to_string()],
                ))
            })
            .collect();
        Selector { terms }
    }

    /// Selects every pod.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The label keys the selector tests.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().filter_map(|t| match t {
            Term::In(k, _) | Term::NotIn(k, _) | Term::Exists(k) | Term::DoesNotExist(k) => {
                Some(k.as_str())
            }
            Term::Never => None,
        })
    }

    /// The `key=value` pairs the selector requires (from `In` terms with one value).
    pub fn required_values(&self) -> impl Iterator<Item = (&str, &str)> {
        self.terms.iter().filter_map(|t| match t {
            Term::In(k, vs) if vs.len() == 1 => Some((k.as_str(), vs[0].as_str())),
            _ => None,
        })
    }

    pub fn matches(&self, labels: &Labels<'_>) -> bool {
        self.matches_with(labels, true)
    }

    /// Like [`Selector::matches`], but a generated value (`Any`) matches no `In` term: for
    /// telling which named cluster a selector means, where the optimistic reading would
    /// name every RayJob of the namespace as well.
    pub fn matches_known(&self, labels: &Labels<'_>) -> bool {
        self.matches_with(labels, false)
    }

    fn matches_with(&self, labels: &Labels<'_>, any_matches: bool) -> bool {
        self.terms.iter().all(|t| match t {
            Term::In(k, vs) => match lookup(labels, k) {
                Some(LabelValue::Any) => any_matches,
                Some(LabelValue::Known(v)) => vs.iter().any(|x| x == v.as_ref()),
                None => false,
            },
            Term::NotIn(k, vs) => match lookup(labels, k) {
                Some(LabelValue::Known(v)) => !vs.iter().any(|x| x == v.as_ref()),
                _ => true,
            },
            Term::Exists(k) => lookup(labels, k).is_some(),
            Term::DoesNotExist(k) => lookup(labels, k).is_none(),
            Term::Never => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{parse_documents, Limits};

    fn node(s: &str) -> Node {
        parse_documents("t", s, &Limits::default())
            .unwrap()
            .remove(0)
            .root
    }

    fn labels<'a>(pairs: &[(&'a str, Option<&'a str>)]) -> Labels<'a> {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    Cow::Borrowed(*k),
                    v.map_or(LabelValue::Any, |v| LabelValue::Known(Cow::Borrowed(v))),
                )
            })
            .collect()
    }

    #[test]
    fn match_labels_and_expressions() {
        let s = Selector::from_label_selector(Some(&node(
            "matchLabels: {ray.io/node-type: head}\nmatchExpressions:\n- {key: team, operator: In, values: [a, b]}\n- {key: x, operator: DoesNotExist}\n",
        )));
        assert!(s.matches(&labels(&[
            ("ray.io/node-type", Some("head")),
            ("team", Some("b"))
        ])));
        assert!(!s.matches(&labels(&[
            ("ray.io/node-type", Some("worker")),
            ("team", Some("b"))
        ])));
        assert!(!s.matches(&labels(&[
            ("ray.io/node-type", Some("head")),
            ("team", Some("c"))
        ])));
        assert!(!s.matches(&labels(&[
            ("ray.io/node-type", Some("head")),
            ("team", Some("a")),
            ("x", Some(""))
        ])));
    }

    #[test]
    fn generated_values_match_only_optimistically() {
        let s = Selector::from_map(&node("{ray.io/cluster: a}"));
        let generated = labels(&[("ray.io/cluster", None)]);
        assert!(s.matches(&generated));
        assert!(!s.matches_known(&generated));
        assert!(s.matches_known(&labels(&[("ray.io/cluster", Some("a"))])));
    }

    #[test]
    fn generated_values_match_optimistically() {
        let s = Selector::from_map(&node("ray.io/cluster: job-abc12\n"));
        assert!(s.matches(&labels(&[("ray.io/cluster", None)])));
        assert!(!s.matches(&labels(&[("ray.io/cluster", Some("other"))])));
    }

    #[test]
    fn empty_selects_all_and_unknown_operator_none() {
        assert!(Selector::from_label_selector(None).matches(&vec![]));
        let s = Selector::from_label_selector(Some(&node(
            "matchExpressions: [{key: a, operator: Gt}]\n",
        )));
        assert!(!s.matches(&labels(&[("a", Some("1"))])));
    }
}
