//! `ferrymq`: the FerryMQ server binary.

fn main() {}
