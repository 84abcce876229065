//! Integration tests of `vantage-tower`.

// Requests through the layer allocate exactly what they allocate through the bare service.
mod allocations;
