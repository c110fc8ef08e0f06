//! End-to-end tests of the messenger adapter (to be written).
