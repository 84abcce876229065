//! Integration tests of `vantage-instrument`.

// The hot paths allocate nothing: traceparent parsing and formatting, continuing or starting a
// trace, the timing fast path.
mod allocations;

// Installing the exporter where the application installed its own recorder.
mod existing_recorder;

// W3C Trace Context Level 2: one row per processing rule of the specification.
mod trace_context_level2;
