//! Integration tests of the `edge-parser` library and binary.
