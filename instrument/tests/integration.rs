//! Integration tests of `vantage-instrument`.

// The hot paths allocate nothing: traceparent parsing and formatting, the timing fast path.
mod allocations;

// Installing the exporter where the application installed its own recorder.
mod existing_recorder;
