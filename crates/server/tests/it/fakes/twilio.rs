//! A fake of twilio (to be written).
