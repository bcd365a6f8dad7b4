//! Windows: not written yet (see the helper's work); placeholder so that rustfmt resolves the module.
