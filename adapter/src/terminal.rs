//! `latch run-in-terminal`: what the editor's terminal runs for a launch with
//! `console: integratedTerminal` (DAP's `runInTerminal`). It lets latch trace it, connects
//! to latch's socket, waits there until latch has seized it, and then execs the program,
//! so that latch sees the program from its first instruction while the program's input
//! and output are the terminal's.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct RunInTerminalOptions {
    /// The socket of the latch that waits for this program.
    #[arg(long)]
    socket: PathBuf,
    /// latch's pid: allowed to trace this process where Yama's ptrace_scope is 1.
    #[arg(long)]
    debugger: i32,
    /// Start the program with address space randomization off.
    #[arg(long)]
    disable_aslr: bool,
    /// The program and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<OsString>,
}

pub fn run(options: RunInTerminalOptions) -> ExitCode {
    // SAFETY: prctl with plain integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_SET_PTRACER,
            options.debugger as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if options.disable_aslr {
        // SAFETY: personality with a query, then the same flags plus one.
        unsafe {
            let current = libc::personality(0xffff_ffff);
            if current != -1 {
                libc::personality((current | libc::ADDR_NO_RANDOMIZE) as libc::c_ulong);
            }
        }
    }
    let mut socket = match UnixStream::connect(&options.socket) {
        Ok(socket) => socket,
        Err(err) => {
            eprintln!(
                "latch: cannot reach the debugger at {}: {err}",
                options.socket.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let mut go = [0u8; 1];
    if socket.read_exact(&mut go).is_err() {
        eprintln!("latch: the debug session ended before the program started");
        return ExitCode::FAILURE;
    }
    let program = &options.command[0];
    let err = std::process::Command::new(program)
        .args(&options.command[1..])
        .exec();
    let text = format!("{}: {err}", program.to_string_lossy());
    let _ = socket.write_all(text.as_bytes());
    eprintln!("latch: cannot start {text}");
    ExitCode::from(127)
}
