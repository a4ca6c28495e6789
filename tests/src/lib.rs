//! Integration tests for the hardening suite live in `tests/`.
