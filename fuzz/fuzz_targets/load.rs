//! Arbitrary bytes through the whole pipeline: decode, YAML/JSON parse, objects,
//! inventory, every rule.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::check(data);
});
