//! Loading Kubernetes manifests for rayward: YAML/JSON with line:column spans, bounded
//! against hostile input, and a typed view of every pod template (KubeRay's included).

pub mod edit;
pub mod emit;
pub mod error;
#[doc(hidden)]
pub mod fast;
pub mod inputs;
pub mod inventory;
pub mod limits;
pub mod load;
pub mod names;
pub mod node;
pub mod object;
pub mod par;
pub mod pod;
pub mod quantity;
pub mod ray;
pub mod selector;
pub mod source;
pub mod terminal;
pub mod yaml11;

pub use error::{LoadError, LoadErrorKind};
pub use inputs::{Input, Inputs};
pub use inventory::{Inventory, PodRef};
pub use load::Limits;
pub use node::{JsonPath, Node, Pos, Value};
pub use object::{Kind, Object};
pub use pod::{Container, ContainerKind, EnvVar, PodRole, PodTemplate, RayClusterSpec, Workload};
pub use selector::{LabelValue, Labels, Selector};
pub use source::{expand_paths, load_bytes, load_file, Loaded};
