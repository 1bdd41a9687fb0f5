//! Tests on C programs built at test time: no process involved.
