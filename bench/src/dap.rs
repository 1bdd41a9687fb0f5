//! A minimal DAP client over a child's stdio (or a TCP socket: Delve), with a deadline on
//! every wait.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

/// A message from the adapter, stamped when the reader thread had read its
/// last byte, before parsing it: phases end when the bytes arrived, not when
/// this client had parsed them or the main thread got round to looking.
struct Incoming {
    at: Instant,
    msg: Result<Message, String>,
}

/// A message as it arrived: what routing needs, read at once, and the rest
/// parsed only when asked for. Building a `Value` of every `stackTrace`
/// answer as it came made this client, not the adapter, the slowest part
/// of a 1000-thread burst (about 12 us an answer on two shared cores).
pub struct Message {
    pub kind: String,
    pub request_seq: Option<i64>,
    pub event: Option<String>,
    pub success: Option<bool>,
    raw: Vec<u8>,
    parsed: std::cell::OnceCell<Value>,
}

/// The fields of a message `Message` reads at once; serde skips the rest
/// (the body) without building anything.
#[derive(serde::Deserialize)]
struct Head {
    #[serde(rename = "type")]
    kind: String,
    request_seq: Option<i64>,
    event: Option<String>,
    success: Option<bool>,
}

impl Message {
    fn read(raw: Vec<u8>) -> Result<Message, String> {
        let head: Head = serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
        Ok(Message {
            kind: head.kind,
            request_seq: head.request_seq,
            event: head.event,
            success: head.success,
            raw,
            parsed: std::cell::OnceCell::new(),
        })
    }

    /// The whole message (Null if only its head was valid JSON).
    pub fn value(&self) -> &Value {
        self.parsed
            .get_or_init(|| serde_json::from_slice(&self.raw).unwrap_or(Value::Null))
    }
}

/// Raised when a wait runs past its deadline; the caller reports a timeout
/// (and kills the peer) instead of a failure.
#[derive(Debug)]
pub struct Timeout(pub String);

impl std::fmt::Display for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "timed out waiting for {}", self.0)
    }
}

impl std::error::Error for Timeout {}

/// Everything seen so far that the phases need to know about.
#[derive(Default)]
pub struct Seen {
    /// Responses by request seq, with their arrival time.
    pub responses: HashMap<i64, (Instant, Message)>,
    /// Events by name: arrival time of the first one and how many came.
    pub events: HashMap<String, (Instant, usize)>,
    /// Arrival of the first `stopped` event that says all threads stopped.
    pub all_stopped: Option<Instant>,
    /// Every `stopped` event: its arrival and its body.
    pub stops: Vec<(Instant, Value)>,
    /// stderr-category `output` events, kept for the report.
    pub stderr: String,
    /// Every `output` event's text, whatever its category: the waitFor
    /// driver starts the target once the adapter said it waits.
    pub output: String,
}

/// What the reader thread has done so far, for the running-target scenario.
#[derive(Default)]
pub struct ReaderStats {
    /// Bytes read from the adapter: headers and bodies.
    pub bytes: AtomicU64,
    /// The reader thread's own CPU clock after its latest message, in ns.
    pub cpu_ns: AtomicU64,
    /// Parse every message in full as it arrives, as an editor does (otherwise only
    /// the head, see [`Message`]).
    pub parse_all: AtomicBool,
}

/// CPU time of the calling thread, in ns.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a local timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub struct Dap {
    /// Where requests go: the adapter's stdin, or its socket.
    stdin: Box<dyn Write + Send>,
    pub stats: Arc<ReaderStats>,
    rx: mpsc::Receiver<Incoming>,
    seq: i64,
    pub seen: Seen,
    eof: bool,
}

impl Dap {
    pub fn new(stdin: impl Write + Send + 'static, stdout: impl Read + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(ReaderStats::default());
        let reader_stats = stats.clone();
        std::thread::spawn(move || read_loop(stdout, tx, &reader_stats));
        Dap {
            stdin: Box::new(stdin),
            stats,
            rx,
            seq: 0,
            seen: Seen::default(),
            eof: false,
        }
    }

    /// Send a request; returns its seq.
    pub fn send(&mut self, command: &str, arguments: Value) -> Result<i64> {
        self.seq += 1;
        let msg = json!({
            "seq": self.seq,
            "type": "request",
            "command": command,
            "arguments": arguments,
        });
        let body = serde_json::to_vec(&msg)?;
        let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        frame.extend_from_slice(&body);
        // One write per message, like an editor; a broken pipe means the
        // adapter died, which the following wait reports.
        self.stdin
            .write_all(&frame)
            .and_then(|_| self.stdin.flush())
            .with_context(|| format!("sending `{command}`"))?;
        Ok(self.seq)
    }

    /// Process one message, or fail at the deadline / EOF.
    fn pump(&mut self, deadline: Instant, what: &str) -> Result<()> {
        if self.eof {
            bail!("adapter closed its output while waiting for {what}");
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let Incoming { at, msg } = match self.rx.recv_timeout(left) {
            Ok(m) => m,
            Err(mpsc::RecvTimeoutError::Timeout) => return Err(Timeout(what.into()).into()),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.eof = true;
                bail!("adapter closed its output while waiting for {what}");
            }
        };
        let msg = msg.map_err(|e| anyhow!("bad message from adapter: {e}"))?;
        match msg.kind.as_str() {
            "response" => {
                let rs = msg.request_seq.unwrap_or(-1);
                self.seen.responses.insert(rs, (at, msg));
            }
            "event" => {
                let name = msg.event.clone().unwrap_or_default();
                if name == "stopped"
                    && self.seen.all_stopped.is_none()
                    && msg.value()["body"]["allThreadsStopped"].as_bool() == Some(true)
                {
                    self.seen.all_stopped = Some(at);
                }
                if name == "stopped" {
                    self.seen.stops.push((at, msg.value()["body"].clone()));
                }
                if name == "output" {
                    let body = &msg.value()["body"];
                    if let Some(s) = body["output"].as_str() {
                        if body["category"] == "stderr" {
                            self.seen.stderr.push_str(s);
                        }
                        self.seen.output.push_str(s);
                    }
                }
                self.seen
                    .events
                    .entry(name)
                    .and_modify(|e| e.1 += 1)
                    .or_insert((at, 1));
            }
            // Reverse requests (runInTerminal, startDebugging) are not part
            // of an attach; ignoring them would stall the adapter, so fail.
            "request" => bail!("unexpected reverse request: {}", msg.value()),
            _ => bail!("message without a known type: {}", msg.value()),
        }
        Ok(())
    }

    /// Pump messages until `until`; not an error when it passes (a window of running).
    pub fn drain_until(&mut self, until: Instant) -> Result<()> {
        loop {
            match self.pump(until, "the end of the window") {
                Ok(()) => {}
                Err(e) if e.downcast_ref::<Timeout>().is_some() => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Pump messages until `done(seen)` holds.
    pub fn wait_until(
        &mut self,
        deadline: Instant,
        what: &str,
        mut done: impl FnMut(&Seen) -> bool,
    ) -> Result<()> {
        while !done(&self.seen) {
            self.pump(deadline, what)?;
        }
        Ok(())
    }

    /// When the response to `seq`, already received, arrived; an unsuccessful
    /// response is an error carrying the adapter's message.
    pub fn answered_at(&self, seq: i64) -> Result<Instant> {
        let (at, resp) = self
            .seen
            .responses
            .get(&seq)
            .ok_or_else(|| anyhow!("no response to request {seq}"))?;
        check_success(resp.value())?;
        Ok(*at)
    }

    /// Wait for the response to `seq`; an unsuccessful response is an error
    /// carrying the adapter's message.
    pub fn response(
        &mut self,
        seq: i64,
        deadline: Instant,
        what: &str,
    ) -> Result<(Instant, Value)> {
        self.wait_until(deadline, what, |s| s.responses.contains_key(&seq))?;
        let (at, resp) = &self.seen.responses[&seq];
        check_success(resp.value())?;
        Ok((*at, resp.value().clone()))
    }
}

pub fn check_success(resp: &Value) -> Result<()> {
    if resp["success"].as_bool() != Some(true) {
        let message = resp["body"]["error"]["format"]
            .as_str()
            .or(resp["message"].as_str())
            .unwrap_or("no message");
        bail!(
            "`{}` failed: {message}",
            resp["command"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}

fn read_loop(stdout: impl Read, tx: mpsc::Sender<Incoming>, stats: &ReaderStats) {
    let mut r = BufReader::new(stdout);
    loop {
        let (at, msg) = match read_frame(&mut r) {
            Ok(Some((body, header))) => {
                let at = Instant::now();
                stats
                    .bytes
                    .fetch_add((header + body.len()) as u64, Ordering::Relaxed);
                let msg = Message::read(body);
                if let (Ok(m), true) = (&msg, stats.parse_all.load(Ordering::Relaxed)) {
                    m.value();
                }
                stats.cpu_ns.store(thread_cpu_ns(), Ordering::Relaxed);
                (at, msg)
            }
            Ok(None) => return, // EOF: dropping tx tells the client.
            Err(e) => (Instant::now(), Err(e.to_string())),
        };
        let fatal = msg.is_err();
        if fatal || tx.send(Incoming { at, msg }).is_err() {
            break;
        }
    }
    // Nobody listens any more (or the stream is garbage), but keep reading
    // until EOF as an editor would: closing the pipe early would kill an
    // adapter that still writes (e.g. `terminated`, `exited`) with SIGPIPE
    // and we would time and report that death instead of its real exit.
    let _ = std::io::copy(&mut r, &mut std::io::sink());
}

/// Read one `Content-Length`-framed message's body and the size of its header;
/// Ok(None) on clean EOF.
fn read_frame(r: &mut impl BufRead) -> Result<Option<(Vec<u8>, usize)>> {
    let mut len = None;
    let mut line = String::new();
    let mut header = 0;
    loop {
        line.clear();
        let n = r.read_line(&mut line)?;
        if n == 0 {
            return Ok(None);
        }
        header += n;
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("Content-Length:") {
            len = Some(v.trim().parse::<usize>().context("bad Content-Length")?);
        }
    }
    let len = len.ok_or_else(|| anyhow!("header without Content-Length"))?;
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok(Some((body, header)))
}
