//! Bytes through the same pure path `render --stdout` takes: parse, validate,
//! render. Any panic, runaway allocation or hang is a finding; so is a
//! rendering that does not render to itself again.

#![no_main]

use insights_policy_render::commands::render_response;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((tree, _warnings)) = render_response(data) else {
        return;
    };
    let stream = tree.to_stream();
    // Rendered output is accepted input that renders to the same files. If
    // it did not, the emitter wrote something that reads back differently
    // from what was validated, which is what kubectl and Flux would apply.
    let (again, warnings) = render_response(stream.as_bytes())
        .unwrap_or_else(|e| panic!("rendered output is refused: {e}\n{stream}"));
    assert!(
        warnings.is_empty(),
        "rendered output warns: {warnings:?}\n{stream}"
    );
    assert!(
        again == tree,
        "rendered output renders differently:\n{stream}\n---- became ----\n{}",
        again.to_stream()
    );
});
