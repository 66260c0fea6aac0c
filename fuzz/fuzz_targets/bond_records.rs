//! Fuzzes the Bond CompactBinary decoder of 1DS bodies (`mdelab_mock_cloud::bond`): any bytes
//! must give records or a `BondError` whose offset lies inside the body, never a panic, a hang
//! or an allocation larger than the body allows.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match mdelab_mock_cloud::bond::decode_records(data, 64 * 1024) {
        Ok(body) => {
            let total: usize = body.records.iter().map(|r| r.size).sum();
            assert!(total <= data.len());
        }
        Err(e) => assert!(e.offset <= data.len(), "{e}"),
    }
});
