//! Integration tests and examples of the `procs` workspace live in `tests/` and `examples/`.
