//! latch: attach to running Linux processes and serve them over the Debug Adapter Protocol.
//!
//! The rooms, each with one job: [`dap`] is the wire protocol and nothing else,
//! [`session`] the DAP state machine, [`ptrace`] every ptrace call on one OS thread,
//! [`procfs`] reading `/proc`, [`waitfor`] finding a process as it starts, and
//! [`symbols`] turning addresses into names.

pub mod priority;
pub mod procfs;
pub mod waitfor;
