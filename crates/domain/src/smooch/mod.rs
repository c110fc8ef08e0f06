//! SPEC 8: the Smooch v1 compatibility API's rules.

pub mod integrations;
