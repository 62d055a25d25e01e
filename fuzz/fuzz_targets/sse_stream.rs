#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| slmgate_core::fuzzing::sse_stream(data));
