//! Fuzzes the KQL subset of advanced hunting (`mdelab_mock_cloud::hunting::kql::parse`): any text gives a query or a positioned error, never a panic or a stack overflow: any bytes must give a value or an error, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = mdelab_mock_cloud::hunting::kql::parse(text) {
            assert!(e.position <= text.len().max(mdelab_mock_cloud::hunting::kql::MAX_QUERY_BYTES));
        }
    }
});
