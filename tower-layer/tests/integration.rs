//! Integration tests of `vantage-tower`.

// Requests through the layers allocate exactly what a baseline making the same recorder calls
// allocates, with the real recorder and a subscriber installed, on every path.
mod allocations;
