//! A DAP client over the stdio of a `latch dap` child. Every message latch
//! writes is framed-checked and validated against the DAP schema by the reader
//! thread; any violation fails the test at the next client call or at drop.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::fixtures::tmp_dir;
use super::schema::{schema, Schema};

/// Default deadline of a request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub fn latch_bin() -> &'static str {
    env!("CARGO_BIN_EXE_latch")
}

enum Incoming {
    Message(Value),
    Eof,
}

pub struct Dap {
    /// The `latch dap` child this client talks to over stdio; `None` over a socket.
    child: Option<Child>,
    stdin: Option<Box<dyn Write + Send>>,
    rx: Receiver<Incoming>,
    reader: Option<JoinHandle<()>>,
    violations: Arc<Mutex<Vec<String>>>,
    /// Set once this client has closed its side: a socket then reports a reset rather
    /// than an end of input, which is not latch's fault.
    hung_up: Arc<std::sync::atomic::AtomicBool>,
    next_seq: i64,
    /// Every message received, in order.
    pub log: Vec<Value>,
    /// Events not yet taken by `next_event`.
    pending_events: VecDeque<Value>,
    /// Reverse requests (`runInTerminal`, `startDebugging`) not yet taken by
    /// `next_reverse_request`.
    pending_requests: VecDeque<Value>,
    responses: HashMap<i64, Value>,
    eof: bool,
    exit: Option<ExitStatus>,
    log_file: PathBuf,
}

static SESSIONS: AtomicUsize = AtomicUsize::new(0);

impl Dap {
    /// Starts `latch dap` with logging to a file in the test's temp dir.
    pub fn start() -> Dap {
        Dap::start_with(Vec::new(), &[], true)
    }

    /// Starts latch, initializes and attaches to `pid`: most tests' first three steps.
    pub fn attached(pid: i32, stop_on_entry: bool) -> Dap {
        let mut dap = Dap::start();
        dap.initialize();
        dap.attach_pid(pid, stop_on_entry);
        dap
    }

    /// Starts `[prefix...] latch dap [--log-file F --log latch=debug] [extra...]`.
    pub fn start_with(prefix: Vec<String>, extra: &[&str], log: bool) -> Dap {
        let dir = tmp_dir().join("logs");
        std::fs::create_dir_all(&dir).unwrap();
        let n = SESSIONS.fetch_add(1, Ordering::Relaxed);
        let log_file = dir.join(format!("latch-{}-{n}.log", std::process::id()));
        let mut cmd = match prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(latch_bin());
                c
            }
            None => Command::new(latch_bin()),
        };
        cmd.arg("dap");
        if log {
            cmd.arg("--log-file")
                .arg(&log_file)
                .args(["--log", "latch=debug,latch::dap=trace"]);
        }
        cmd.args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = super::target::spawn_retrying(&mut cmd);
        let stdout = child.stdout.take().unwrap();
        let stdin = Box::new(child.stdin.take().unwrap());
        let mut dap = Dap::over(stdout, stdin, log_file);
        dap.child = Some(child);
        dap
    }

    /// A client of a `latch dap --listen` server, over a connected socket.
    pub fn over_socket<S>(stream: S, server_log: PathBuf) -> Dap
    where
        S: Read + Write + Send + 'static + TryCloneStream,
    {
        let reader = stream.try_clone_stream();
        Dap::over(reader, Box::new(ClosesOnDrop(stream)), server_log)
    }

    /// A client of a session latch serves on a unix socket (a followed child's, named in
    /// `startDebugging`), logging to the file of the latch that serves it.
    pub fn connect_unix(socket: &std::path::Path, server_log: PathBuf) -> Dap {
        let stream = std::os::unix::net::UnixStream::connect(socket)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", socket.display()));
        Dap::over_socket(stream, server_log)
    }

    /// A client speaking through a child's stdin and stdout, e.g. a relay to a
    /// `latch dap --listen` server that runs as another user.
    pub fn over_child(mut child: Child, server_log: PathBuf) -> Dap {
        let stdout = child.stdout.take().unwrap();
        let stdin = Box::new(child.stdin.take().unwrap());
        let mut dap = Dap::over(stdout, stdin, server_log);
        dap.child = Some(child);
        dap
    }

    fn over(
        input: impl Read + Send + 'static,
        output: Box<dyn Write + Send>,
        log_file: PathBuf,
    ) -> Dap {
        let schema = schema().unwrap_or_else(|e| panic!("DAP schema unavailable: {e}"));
        let (tx, rx) = mpsc::channel();
        let violations = Arc::new(Mutex::new(Vec::new()));
        let v = violations.clone();
        let hung_up = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let h = hung_up.clone();
        let reader = std::thread::spawn(move || read_frames(input, tx, v, h, schema));
        Dap {
            hung_up,
            stdin: Some(output),
            child: None,
            rx,
            reader: Some(reader),
            violations,
            next_seq: 1,
            log: Vec::new(),
            pending_events: VecDeque::new(),
            pending_requests: VecDeque::new(),
            responses: HashMap::new(),
            eof: false,
            exit: None,
            log_file,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child
            .as_ref()
            .expect("a socket client has no latch child")
            .id() as i32
    }

    fn check_violations(&self) {
        let v = self.violations.lock().unwrap_or_else(|e| e.into_inner());
        if !v.is_empty() {
            panic!("latch wrote invalid DAP:\n{}", v.join("\n---\n"));
        }
    }

    /// Receives one message (or EOF) within `timeout`; false on timeout.
    fn pump(&mut self, timeout: Duration) -> bool {
        if self.eof {
            self.check_violations();
            return false;
        }
        let got = match self.rx.recv_timeout(timeout) {
            Ok(Incoming::Message(m)) => {
                match m["type"].as_str() {
                    Some("event") => self.pending_events.push_back(m.clone()),
                    Some("request") => self.pending_requests.push_back(m.clone()),
                    Some("response") => {
                        if let Some(rs) = m["request_seq"].as_i64() {
                            self.responses.insert(rs, m.clone());
                        }
                    }
                    _ => {}
                }
                self.log.push(m);
                true
            }
            Ok(Incoming::Eof) | Err(RecvTimeoutError::Disconnected) => {
                self.eof = true;
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
        };
        self.check_violations();
        got
    }

    /// Takes every message that has already arrived, without waiting.
    fn pump_available(&mut self) {
        while self.pump(Duration::ZERO) {}
    }

    pub fn recent(&self) -> String {
        let start = self.log.len().saturating_sub(8);
        self.log[start..]
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join("\n  ")
    }

    /// Sends a request; returns its seq.
    pub fn send(&mut self, command: &str, arguments: Value) -> i64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut msg = json!({"seq": seq, "type": "request", "command": command});
        if !arguments.is_null() {
            msg["arguments"] = arguments;
        }
        self.send_value(&msg);
        seq
    }

    pub fn send_value(&mut self, msg: &Value) {
        let body = msg.to_string();
        self.send_raw(format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
    }

    /// Writes bytes as they are (for malformed input).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("latch stdin already closed");
        stdin.write_all(bytes).expect("write to latch stdin");
        stdin.flush().expect("flush latch stdin");
    }

    /// Reserves a seq number without sending (for hand-written messages).
    pub fn take_seq(&mut self) -> i64 {
        self.next_seq += 1;
        self.next_seq - 1
    }

    pub fn close_stdin(&mut self) {
        self.hung_up.store(true, Ordering::Relaxed);
        self.stdin.take();
    }

    /// Waits for the response to request `seq`.
    pub fn response(&mut self, seq: i64, within: Duration) -> Value {
        self.try_response(seq, within).unwrap_or_else(|| {
            panic!(
                "no response to request {seq} within {within:?} (eof: {}); recent messages:\n  {}",
                self.eof,
                self.recent()
            )
        })
    }

    pub fn try_response(&mut self, seq: i64, within: Duration) -> Option<Value> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(r) = self.responses.remove(&seq) {
                return Some(r);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.pump_available();
                return self.responses.remove(&seq);
            }
            if !self.pump(left) && self.eof {
                return self.responses.remove(&seq);
            }
        }
    }

    /// Sends a request and waits for its response.
    pub fn request(&mut self, command: &str, arguments: Value) -> Value {
        let seq = self.send(command, arguments);
        let r = self.response(seq, REQUEST_TIMEOUT);
        assert_eq!(r["command"], command, "response to {command}: {r}");
        r
    }

    /// A request that must succeed; returns the response.
    pub fn ok(&mut self, command: &str, arguments: Value) -> Value {
        let r = self.request(command, arguments);
        assert_eq!(r["success"], true, "{command} failed: {r}");
        r
    }

    /// Takes the next not-yet-taken event called `name`.
    pub fn next_event(&mut self, name: &str, within: Duration) -> Value {
        self.try_next_event(name, within).unwrap_or_else(|| {
            panic!(
                "no {name:?} event within {within:?} (eof: {}); recent messages:\n  {}",
                self.eof,
                self.recent()
            )
        })
    }

    pub fn try_next_event(&mut self, name: &str, within: Duration) -> Option<Value> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(i) = self.pending_events.iter().position(|e| e["event"] == name) {
                return self.pending_events.remove(i);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.pump_available();
                let i = self
                    .pending_events
                    .iter()
                    .position(|e| e["event"] == name)?;
                return self.pending_events.remove(i);
            }
            if !self.pump(left) && self.eof {
                return None;
            }
        }
    }

    /// Takes the next not-yet-taken reverse request latch sent, called `command`.
    pub fn next_reverse_request(&mut self, command: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let at = self
                .pending_requests
                .iter()
                .position(|r| r["command"] == command);
            if let Some(i) = at {
                return self.pending_requests.remove(i).unwrap();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.pump_available();
                if let Some(i) = self
                    .pending_requests
                    .iter()
                    .position(|r| r["command"] == command)
                {
                    return self.pending_requests.remove(i).unwrap();
                }
            }
            if left.is_zero() || (!self.pump(left) && self.eof) {
                panic!(
                    "no {command:?} reverse request within {within:?} (eof: {}); recent \
                     messages:\n  {}",
                    self.eof,
                    self.recent()
                );
            }
        }
    }

    /// Answers a reverse request of latch's.
    pub fn answer(&mut self, request: &Value, success: bool, body: Value) {
        let seq = self.take_seq();
        let mut response = json!({
            "seq": seq, "type": "response", "request_seq": request["seq"],
            "command": request["command"], "success": success,
        });
        if !success {
            response["message"] = json!("refused by the test client");
        }
        if !body.is_null() {
            response["body"] = body;
        }
        self.send_value(&response);
    }

    /// The file latch logs to (for a socket client: the server's).
    pub fn log_file(&self) -> PathBuf {
        self.log_file.clone()
    }

    /// Receives messages until `cond` holds or `within` has passed; whether it held.
    pub fn wait_until(&mut self, within: Duration, mut cond: impl FnMut(&Dap) -> bool) -> bool {
        let deadline = Instant::now() + within;
        loop {
            self.pump_available();
            if cond(self) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || (!self.pump(left) && self.eof) {
                return cond(self);
            }
        }
    }

    /// Receives everything that arrives within `window` (for "nothing more
    /// happens" checks; never used to wait for something).
    pub fn drain_for(&mut self, window: Duration) {
        let deadline = Instant::now() + window;
        while Instant::now() < deadline && !self.eof {
            self.pump(deadline.saturating_duration_since(Instant::now()));
        }
    }

    /// All events of that name received so far (taken or not).
    pub fn events(&self, name: &str) -> Vec<Value> {
        self.log
            .iter()
            .filter(|m| m["type"] == "event" && m["event"] == name)
            .cloned()
            .collect()
    }

    /// Position in the log of the response to `seq`.
    pub fn position_of_response(&self, seq: i64) -> Option<usize> {
        self.log
            .iter()
            .position(|m| m["type"] == "response" && m["request_seq"] == seq)
    }

    pub fn position_of_event(&self, name: &str) -> Option<usize> {
        self.log
            .iter()
            .position(|m| m["type"] == "event" && m["event"] == name)
    }

    pub fn initialize(&mut self) -> Value {
        self.initialize_with(json!({}))
    }

    /// `initialize` as an editor sends it, plus `extra` fields.
    pub fn initialize_with(&mut self, extra: Value) -> Value {
        let mut args = json!({
            "clientID": "latch-e2e", "adapterID": "latch", "linesStartAt1": true,
            "columnsStartAt1": true, "pathFormat": "path",
        });
        if let (Some(a), Some(e)) = (args.as_object_mut(), extra.as_object()) {
            a.extend(e.clone());
        }
        let r = self.ok("initialize", args);
        r["body"].clone()
    }

    /// The whole attach handshake: attach, wait for `initialized` (or an early
    /// error response), configurationDone, then the attach response, checking
    /// that configurationDone was answered first. Returns the attach response.
    pub fn attach(&mut self, args: Value) -> Value {
        let seq = self.send("attach", args);
        self.finish_attach(seq, REQUEST_TIMEOUT)
    }

    pub fn finish_attach(&mut self, seq: i64, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            if self.responses.contains_key(&seq) {
                let r = self.responses.remove(&seq).unwrap();
                assert_eq!(
                    r["success"], false,
                    "attach answered before initialized/configurationDone: {r}"
                );
                return r;
            }
            if self
                .pending_events
                .iter()
                .any(|e| e["event"] == "initialized")
            {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero() && (self.pump(left) || !self.eof),
                "neither initialized nor an attach response within {within:?}; recent:\n  {}",
                self.recent()
            );
        }
        self.next_event("initialized", Duration::ZERO);
        let done = self.send("configurationDone", Value::Null);
        let done_response = self.response(done, REQUEST_TIMEOUT);
        assert_eq!(
            done_response["success"], true,
            "configurationDone failed: {done_response}"
        );
        let r = self.response(
            seq,
            deadline
                .saturating_duration_since(Instant::now())
                .max(REQUEST_TIMEOUT),
        );
        if r["success"] == true {
            assert!(
                self.position_of_response(done) < self.position_of_response(seq),
                "the attach response came before the configurationDone response"
            );
        }
        r
    }

    /// Attach by pid; must succeed.
    pub fn attach_pid(&mut self, pid: i32, stop_on_entry: bool) -> Value {
        let r = self.attach(json!({"pid": pid, "stopOnEntry": stop_on_entry}));
        assert_eq!(r["success"], true, "attach to {pid} failed: {r}");
        r
    }

    /// The `threads` response as (id, name) pairs.
    pub fn threads(&mut self) -> Vec<(i64, String)> {
        let r = self.ok("threads", json!({}));
        r["body"]["threads"]
            .as_array()
            .unwrap_or_else(|| panic!("threads response without threads: {r}"))
            .iter()
            .map(|t| {
                (
                    t["id"].as_i64().unwrap(),
                    t["name"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Sends disconnect, checks the response and that latch exits with 0.
    pub fn disconnect(&mut self, args: Value) -> Value {
        let r = self.ok("disconnect", args);
        let st = self.wait_exit(REQUEST_TIMEOUT);
        assert!(st.success(), "latch exited with {st} after disconnect");
        r
    }

    /// Waits for latch to exit.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        if let Some(st) = self.exit {
            return st;
        }
        let deadline = Instant::now() + within;
        loop {
            let child = self
                .child
                .as_mut()
                .expect("a socket client has no latch child");
            if let Some(st) = child.try_wait().expect("try_wait latch") {
                self.exit = Some(st);
                // Take (and validate) everything it wrote.
                while !self.eof && self.pump(Duration::from_secs(2)) {}
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "latch still running after {within:?}; recent:\n  {}",
                self.recent()
            );
            // Keep reading so latch never blocks on a full pipe.
            self.pump(Duration::from_millis(5));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.exit.is_none()
            && self
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Over a socket: waits until the server closes the connection.
    pub fn wait_closed(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.eof {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "latch kept the connection open for {within:?}; recent:\n  {}",
                self.recent()
            );
            self.pump(left);
        }
    }

    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }
}

impl Drop for Dap {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if self.exit.is_none() && matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // A socket client that goes away closes its connection, as a crashed editor would.
        self.close_stdin();
        if let Some(reader) = self.reader.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !reader.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "--- latch log ({}) tail ---\n{}",
                self.log_file.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        } else {
            self.check_violations();
        }
    }
}

/// The reading half of a socket, for the reader thread, and closing both halves.
pub trait TryCloneStream {
    fn try_clone_stream(&self) -> Box<dyn Read + Send>;
    fn shutdown_both(&self);
}

impl TryCloneStream for std::net::TcpStream {
    fn try_clone_stream(&self) -> Box<dyn Read + Send> {
        Box::new(self.try_clone().expect("cloning a TCP stream"))
    }
    fn shutdown_both(&self) {
        let _ = self.shutdown(std::net::Shutdown::Both);
    }
}

impl TryCloneStream for std::os::unix::net::UnixStream {
    fn try_clone_stream(&self) -> Box<dyn Read + Send> {
        Box::new(self.try_clone().expect("cloning a unix stream"))
    }
    fn shutdown_both(&self) {
        let _ = self.shutdown(std::net::Shutdown::Both);
    }
}

/// The writing half of a socket client: dropping it closes the connection, though the
/// reader thread still holds a clone of the socket.
struct ClosesOnDrop<S: Write + TryCloneStream>(S);

impl<S: Write + TryCloneStream> Write for ClosesOnDrop<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl<S: Write + TryCloneStream> Drop for ClosesOnDrop<S> {
    fn drop(&mut self) {
        self.0.shutdown_both();
    }
}

/// Reads `Content-Length` frames; validates each message; records violations.
fn read_frames(
    stdout: impl Read,
    tx: Sender<Incoming>,
    violations: Arc<Mutex<Vec<String>>>,
    hung_up: Arc<std::sync::atomic::AtomicBool>,
    schema: &Schema,
) {
    let violate = |s: String| violations.lock().unwrap_or_else(|e| e.into_inner()).push(s);
    let mut r = BufReader::new(stdout);
    loop {
        let mut length: Option<usize> = None;
        let mut header = String::new();
        loop {
            header.clear();
            match r.read_line(&mut header) {
                Ok(0) => {
                    if length.is_some() {
                        violate("latch's stdout ended inside a header".into());
                    }
                    let _ = tx.send(Incoming::Eof);
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    if !hung_up.load(Ordering::Relaxed) {
                        violate(format!("reading latch's stdout: {e}"));
                    }
                    let _ = tx.send(Incoming::Eof);
                    return;
                }
            }
            if !header.ends_with("\r\n") {
                violate(format!("header line not ended by CRLF: {header:?}"));
            }
            let line = header.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                break;
            }
            match line.split_once(':') {
                Some((k, v)) if k.eq_ignore_ascii_case("Content-Length") => {
                    match v.trim().parse() {
                        Ok(n) => length = Some(n),
                        Err(_) => violate(format!("bad Content-Length header: {line:?}")),
                    }
                }
                Some(_) => {}
                None => violate(format!(
                    "not a header (something else on stdout?): {line:?}"
                )),
            }
        }
        let Some(n) = length else {
            violate("frame without Content-Length".into());
            continue;
        };
        let mut body = vec![0; n];
        if let Err(e) = r.read_exact(&mut body) {
            if !hung_up.load(Ordering::Relaxed) {
                violate(format!("stdout ended inside a {n}-byte body: {e}"));
            }
            let _ = tx.send(Incoming::Eof);
            return;
        }
        let msg: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                violate(format!(
                    "body is not JSON ({e}): {}",
                    String::from_utf8_lossy(&body)
                ));
                continue;
            }
        };
        if let Err(e) = schema.check_message(&msg) {
            violate(format!("{msg}\n{e}"));
        }
        if tx.send(Incoming::Message(msg)).is_err() {
            return;
        }
    }
}
