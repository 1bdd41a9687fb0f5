//! Moving DAP frames between a byte stream and the session: one reader thread that
//! decodes frames, one writer thread that numbers and writes messages. Both are generic
//! over `Read`/`Write`, so stdio and sockets share them.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::dap::{encode_frame, Event, FrameDecoder, FrameError, Outgoing, Response};

#[derive(Debug)]
pub enum Incoming {
    Frame(Vec<u8>),
    Malformed(FrameError),
    /// The client closed its side (or the stream failed).
    Closed,
}

/// Reads frames until end of input; the last thing sent is always `Closed`.
pub fn spawn_reader<R: Read + Send + 'static>(mut input: R) -> mpsc::UnboundedReceiver<Incoming> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("latch-dap-reader".into())
        .spawn(move || {
            let mut decoder = FrameDecoder::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match input.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(err) => {
                        tracing::warn!("reading DAP input failed: {err}");
                        break;
                    }
                };
                decoder.push(&buf[..n]);
                while let Some(frame) = decoder.next_frame() {
                    let message = match frame {
                        Ok(body) => Incoming::Frame(body),
                        Err(err) => Incoming::Malformed(err),
                    };
                    if tx.send(message).is_err() {
                        return;
                    }
                }
            }
            let _ = tx.send(Incoming::Closed);
        })
        .expect("spawning the reader thread");
    rx
}

/// The sending side of the writer: cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct Outbox {
    tx: std::sync::mpsc::Sender<Outgoing>,
    sent: Arc<AtomicI64>,
}

impl Outbox {
    pub fn send(&self, message: Outgoing) {
        let _ = self.tx.send(message);
    }

    pub fn respond(&self, response: Response) {
        self.send(Outgoing::Response(response));
    }

    pub fn event(&self, name: &str, body: Value) {
        self.send(Outgoing::Event(Event::new(name, body)));
    }

    /// A reverse request; the client's response comes back as a message of its own.
    pub fn request(&self, command: &str, arguments: Value) {
        self.send(Outgoing::Request(crate::dap::ReverseRequest {
            command: command.to_string(),
            arguments,
        }));
    }

    /// A line in the client's debug console.
    pub fn output(&self, category: &str, text: &str) {
        self.event(
            "output",
            serde_json::json!({ "category": category, "output": format!("{text}\n") }),
        );
    }

    pub fn messages_sent(&self) -> i64 {
        self.sent.load(Ordering::Relaxed)
    }
}

/// Starts the writer; joining the handle after dropping every `Outbox` flushes the rest.
pub fn spawn_writer<W: Write + Send + 'static>(
    mut output: W,
) -> (Outbox, std::thread::JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::channel::<Outgoing>();
    let sent = Arc::new(AtomicI64::new(0));
    let counter = sent.clone();
    let handle = std::thread::Builder::new()
        .name("latch-dap-writer".into())
        .spawn(move || {
            // seq is assigned here, in send order, so it is strictly increasing on the wire.
            let mut seq = 0i64;
            let mut batch = Vec::new();
            while let Ok(first) = rx.recv() {
                // Everything already queued goes out in one write: an attach announces a
                // thread event per thread, and a syscall per message adds up.
                batch.clear();
                for message in std::iter::once(first).chain(rx.try_iter()) {
                    seq += 1;
                    let body = message.encode(seq);
                    tracing::trace!(target: "latch::dap", "-> {}", String::from_utf8_lossy(&body));
                    batch.extend_from_slice(&encode_frame(&body));
                }
                if output
                    .write_all(&batch)
                    .and_then(|_| output.flush())
                    .is_err()
                {
                    tracing::warn!("the client stopped reading; dropping output");
                    break;
                }
                counter.store(seq, Ordering::Relaxed);
            }
        })
        .expect("spawning the writer thread");
    (Outbox { tx, sent }, handle)
}
