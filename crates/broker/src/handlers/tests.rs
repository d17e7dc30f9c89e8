//! Tests of the handler registry, and of every handler's declared request
//! shape ([`shapes`]).

mod shapes;

use super::*;

#[test]
fn every_registered_range_is_one_kafka_protocol_can_decode() {
    let mut keys: Vec<i16> = SUPPORTED_APIS.iter().map(|s| s.api_key as i16).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(
        keys.len(),
        SUPPORTED_APIS.len(),
        "an API is registered twice"
    );
    for api in SUPPORTED_APIS {
        let valid = api.api_key.valid_versions();
        assert!(
            valid.min <= api.min_version
                && api.min_version <= api.max_version
                && api.max_version <= valid.max,
            "{api:?} is outside {valid}"
        );
    }
}
