//! The goroutines scenario (issue 16): the Go target seen as goroutines, latch's
//! goroutine view against Delve's `dlv dap`.
//!
//! Timed per peer, on a fresh copy of the same Go binary:
//!
//! - attach until stopped: `attach {stopOnEntry: true}` (latch `{pid}`, Delve
//!   `{mode: "local", processId}`), `initialized`, `configurationDone`, until the latest
//!   of the attach and configurationDone responses and the first `stopped` event with
//!   `allThreadsStopped: true`: the thread rows' definition.
//! - `threads`: the goroutine list. Each peer lists what it lists (latch at most
//!   `maxGoroutines`, default 1000; Delve at most its own cap); how many is a row.
//! - `stackTrace {levels: 0}` of one parked goroutine: the middle one of the listed ids
//!   in id order, a blocked worker for both (the busy goroutines have the highest ids, the
//!   runtime's the lowest). Its stack must have a `main.` frame.
//! - the first 100 goroutines of the `threads` answer: pipelined (all written before any
//!   answer is read), then the same 100 one at a time.
//! - peak memory just before `disconnect`, as the thread rows measure it.
//!
//! Delve serves DAP on TCP only: `dlv dap --listen 127.0.0.1:0` says where it listens
//! on stdout, and the client connects there.

use super::{
    all_stacks, check_all_stopped, end_session, frames_of, initialize, kill_peer, log_file,
    measure_and_detach, ms, stack_args, start_adapter, timed_run, Peer, RunOpts,
};
use crate::dap::{check_success, Dap};
use crate::procfs;
use crate::report::{Measure, Outcome, Row, RunResult};
use crate::target::Target;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// latch's goroutine ids: 1<<22 + goid.
const LATCH_GOROUTINE_BASE: i64 = 1 << 22;

/// How many goroutines of the `threads` answer get their stacks traced.
pub const FIRST_STACKS: usize = 100;

/// The writing half of Delve's socket: dropped, it shuts the socket down for writing,
/// as closing an adapter's stdin does.
struct SocketWriter(TcpStream);

impl Write for SocketWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl Drop for SocketWriter {
    fn drop(&mut self) {
        let _ = self.0.shutdown(Shutdown::Write);
    }
}

/// Start `dlv dap --listen 127.0.0.1:0` in its own process group and connect to the
/// address it prints.
fn start_delve(program: &Path, target_pid: i32, opts: &RunOpts) -> Result<(i32, Dap), Outcome> {
    let stderr = match log_file(opts, &format!("delve-{target_pid}.stderr")) {
        Ok(f) => Stdio::from(f),
        Err(_) => Stdio::null(),
    };
    let mut child = procfs::normal_priority(&mut Command::new(program))
        .args(["dap", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(|e| Outcome::Failed(format!("cannot start {}: {e}", program.display())))?;
    let pid = child.id() as i32;
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let connected = (|| -> Result<Dap> {
        let mut line = String::new();
        loop {
            line.clear();
            if out.read_line(&mut line)? == 0 {
                bail!("dlv exited before saying where it listens");
            }
            // "DAP server listening at: 127.0.0.1:PORT"
            if let Some((_, addr)) = line.split_once("listening at:") {
                let stream = TcpStream::connect(addr.trim())
                    .with_context(|| format!("connecting to dlv at {}", addr.trim()))?;
                stream.set_nodelay(true)?;
                let writer = SocketWriter(stream.try_clone()?);
                return Ok(Dap::new(writer, stream));
            }
        }
    })();
    match connected {
        Ok(dap) => {
            // Whatever else it prints must not block it.
            std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
            Ok((pid, dap))
        }
        Err(e) => {
            kill_peer(pid, &[]);
            Err(Outcome::Failed(format!("{e:#}")))
        }
    }
}

/// The attach request each peer wants for a running process.
fn attach_args(peer: Peer, pid: i32) -> Value {
    match peer {
        Peer::Delve => json!({ "mode": "local", "processId": pid, "stopOnEntry": true }),
        _ => json!({ "pid": pid, "stopOnEntry": true }),
    }
}

/// The goroutine id behind a `threads` id: latch's are 1<<22 + goid, Delve's the goid.
fn goid(peer: Peer, id: i64) -> i64 {
    if peer == Peer::Latch && id >= LATCH_GOROUTINE_BASE {
        id - LATCH_GOROUTINE_BASE
    } else {
        id
    }
}

fn frame_names(resp: &Value) -> Vec<String> {
    resp["body"]["stackFrames"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .map(|f| f["name"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// One session of latch or Delve against the Go target.
pub fn run(peer: Peer, program: &Path, target: &mut Target, opts: &RunOpts) -> RunResult {
    let mut notes = Vec::new();
    let version = None;
    let t0 = Instant::now();
    let deadline = t0 + opts.timeout;
    let started = match peer {
        Peer::Delve => start_delve(program, target.pid(), opts),
        _ => start_adapter(peer, program, &["dap"], &target.pid().to_string(), opts),
    };
    let (pid, mut dap) = match started {
        Ok(started) => started,
        Err(outcome) => return RunResult::ended(outcome, notes, version),
    };
    let mut tree = Vec::new();
    let mut lines_at_detach = 0;

    let result = (|| -> Result<Measure> {
        let mut m = Measure::default();
        let (t_init, _) = initialize(&mut dap, peer, deadline)?;
        m.0.insert(Row::Initialize, ms(t_init - t0));

        let attach = dap.send("attach", attach_args(peer, target.pid()))?;
        dap.wait_until(deadline, "the `initialized` event", |s| {
            s.events.contains_key("initialized")
                || s.responses
                    .get(&attach)
                    .is_some_and(|r| r.1.success != Some(true))
        })?;
        if let Some((_, r)) = dap.seen.responses.get(&attach) {
            check_success(r.value())?;
        }
        let conf = dap.send("configurationDone", json!({}))?;
        dap.wait_until(deadline, "all threads stopped", |s| {
            s.responses.contains_key(&attach)
                && s.responses.contains_key(&conf)
                && s.all_stopped.is_some()
        })?;
        check_success(dap.seen.responses[&attach].1.value())?;
        let t_stopped = [
            dap.answered_at(attach)?,
            dap.answered_at(conf)?,
            dap.seen.all_stopped.unwrap(),
        ]
        .into_iter()
        .max()
        .unwrap();
        m.0.insert(Row::AttachStopped, ms(t_stopped - t_init));

        let t_sent = Instant::now();
        let threads = dap.send("threads", json!({}))?;
        let (t_threads, resp) = dap.response(threads, deadline, "the `threads` response")?;
        m.0.insert(Row::Threads, ms(t_threads - t_sent));
        m.0.insert(Row::UntilThreads, ms(t_threads - t0));
        check_success(&resp)?;
        let ids: Vec<i64> = resp["body"]["threads"]
            .as_array()
            .map(|ts| ts.iter().filter_map(|t| t["id"].as_i64()).collect())
            .unwrap_or_default();
        m.0.insert(Row::ThreadsListed, ids.len() as f64);

        // One parked goroutine: the middle of the listed ids in id order.
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        let Some(&parked) = sorted.get(sorted.len() / 2) else {
            bail!("`threads` listed nothing");
        };
        let t_sent = Instant::now();
        let seq = dap.send("stackTrace", stack_args(parked))?;
        let (at, one) = dap.response(seq, deadline, "the `stackTrace` response")?;
        m.0.insert(Row::GoroutineStack, ms(at - t_sent));
        check_success(&one)?;
        let (frames, _) = frames_of(&one);
        m.0.insert(Row::GoroutineFrames, frames as f64);
        let names = frame_names(&one);

        // The first 100 of the answer: pipelined, then one at a time.
        let first = &ids[..ids.len().min(FIRST_STACKS)];
        let (took, frames_piped, _) = all_stacks(&mut dap, first, deadline, &mut notes)?;
        m.0.insert(Row::FirstStacksPipelined, took);
        m.0.insert(Row::Frames, frames_piped as f64);
        let t_sent = Instant::now();
        let mut frames_serial = 0;
        for &id in first {
            let seq = dap.send("stackTrace", stack_args(id))?;
            let (_, r) = dap.response(seq, deadline, "a `stackTrace` response")?;
            frames_serial += frames_of(&r).0;
        }
        m.0.insert(Row::FirstStacksSerial, ms(Instant::now() - t_sent));

        // Truthfulness checks, outside the timed phases.
        if peer == Peer::Latch {
            let others: Vec<&str> = resp["body"]["threads"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| t["id"].as_i64().is_some_and(|id| id < LATCH_GOROUTINE_BASE))
                .map(|t| t["name"].as_str().unwrap_or("?"))
                .collect();
            if others.len() == ids.len() {
                notes.push(
                    "**latch answered OS threads, not goroutines** (no goroutine view in this \
                     build): these rows are not the goroutine view's"
                        .into(),
                );
            } else if !others.is_empty() {
                // Named `PROGRAM (TID)`: counted, not named, so that runs add up.
                notes.push(format!(
                    "{} of the {} entries of `threads` are OS threads running no goroutine \
                     (ids below 1<<22)",
                    others.len(),
                    ids.len()
                ));
            }
        }
        if ids.len() < 1000 {
            notes.push(format!(
                "**`threads` listed only {} goroutines** (fewer than 1000)",
                ids.len()
            ));
        }
        let main_frame = names.iter().find(|n| n.starts_with("main."));
        match main_frame {
            Some(f) => notes.push(format!(
                "the parked goroutine (a middle id of the list, goroutine {}): {} frames, top \
                 `{}`, with `{f}`",
                goid(peer, parked),
                names.len(),
                names.first().map_or("", String::as_str)
            )),
            None => notes.push(format!(
                "**the parked goroutine's stack has no `main.` frame**: goroutine {}, frames {:?}",
                goid(peer, parked),
                names
            )),
        }
        if frames_serial != frames_piped {
            notes.push(format!(
                "the first {} stacks one at a time returned {frames_serial} frames, pipelined \
                 {frames_piped}",
                first.len()
            ));
        }
        // What the adapter said about the list (Delve: "Too many goroutines").
        for line in dap.seen.output.lines() {
            let l = line.trim();
            // Not latch's "attached to pid N (goroutines)": the target is named so.
            if l.to_lowercase().contains("goroutines") && !l.contains("attached to") {
                notes.push(format!("{} said: {l}", peer.name()));
            }
        }
        check_all_stopped(target.pid(), &mut notes)?;

        tree = measure_and_detach(&mut dap, pid, deadline, &mut m)?;
        lines_at_detach = target.lines();
        Ok(m)
    })();

    let ended = end_session(result, dap, pid, &tree, deadline, peer, &mut notes);
    timed_run(ended, t0, target, lines_at_detach, notes, version)
}
