//! End-to-end tests: the real `latch` binary against real target processes.

mod support;
