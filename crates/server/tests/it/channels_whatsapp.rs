//! End-to-end tests of the whatsapp adapter (to be written).
