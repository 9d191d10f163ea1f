//! The hsmsign command line.
fn main() {}
