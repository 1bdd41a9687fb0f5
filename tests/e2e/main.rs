//! End-to-end tests: the real `latch` binary against real target processes.

mod support;

mod attach;
mod breakpoints;
mod cli;
mod cli_goroutines;
mod clients;
mod errors;
mod globals;
mod go_stripped;
mod goroutines;
mod languages;
mod launch;
mod lifecycle;
mod listen;
mod listen_access;
mod malformed;
mod nvim;
mod replaced;
mod schema_oracle;
mod signals;
mod stacks;
mod stepping;
mod stops;
mod symbol_files;
mod thread_events;
mod variables;
mod views_cpp;
mod views_go;
mod views_rust;
mod waitfor;
