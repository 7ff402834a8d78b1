//! Integration tests: test vectors and properties.
