//! A fake of graph (to be written).
