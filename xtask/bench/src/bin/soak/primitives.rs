/// The primitives soaked, by the name the command line and the table use, in the order of the
/// table. One list for the soak program and for `cargo xtask soak`, which includes this file.
const PRIMITIVES: &[&str] = &[
    "queue",
    "joinable-queue",
    "channel",
    "lock",
    "rlock",
    "semaphore",
    "barrier",
    "value",
    "pool",
];
