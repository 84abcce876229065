//! Function timing: `function_calls_total` and `function_calls_duration_seconds`.
