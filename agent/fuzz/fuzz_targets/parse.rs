//! Arbitrary bytes into the agent's framing and request parser (must never panic).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sallyport_agent::fuzz_parse(data);
});
