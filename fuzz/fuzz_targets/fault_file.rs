//! Fuzzes fault files (`mdelab_mock_cloud::faults::Faults::load_toml`): any bytes must give a value or an error, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let faults = mdelab_mock_cloud::faults::Faults::new(1);
        let _ = faults.load_toml(text);
    }
});
