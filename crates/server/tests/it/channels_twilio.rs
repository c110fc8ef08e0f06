//! End-to-end tests of the twilio adapter (to be written).
