//! Fuzzes the device's PAC subset (`mdelab_sensor::pac::parse`): any bytes must give a value or an error, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = mdelab_sensor::pac::parse(text);
    }
});
