//! DAP framing: `Content-Length: N\r\n\r\n` followed by N bytes of JSON.
//!
//! The decoder is a pure state machine over bytes so that it can be fed any split of the
//! input (a read may end mid-header or hold several messages) and be property-tested.
//! Bad input is reported and skipped; the decoder then resynchronises on the next
//! `Content-Length:` header, so one broken frame never takes the session down.

/// The largest body we accept. A real DAP message is far smaller; a bigger length is
/// far more likely a corrupt header than a message, and honouring it would make us
/// buffer an unbounded amount of input.
pub const MAX_CONTENT_LENGTH: usize = 16 * 1024 * 1024;

/// A header block longer than this without its blank line is garbage.
const MAX_HEADER_LENGTH: usize = 8 * 1024;

const HEADER_END: &[u8] = b"\r\n\r\n";
const CONTENT_LENGTH: &[u8] = b"Content-Length:";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a message header has no Content-Length")]
    MissingContentLength,
    #[error("invalid Content-Length {0:?}")]
    InvalidContentLength(String),
    #[error("Content-Length {0} is over the limit of {MAX_CONTENT_LENGTH} bytes")]
    TooLarge(usize),
    #[error("{0} bytes of input that are not a message header were skipped")]
    Garbage(usize),
}

#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Where the undecoded input starts in `buf`. Frames are consumed by moving this
    /// forward; the consumed bytes are dropped once per `push`, not once per frame, which
    /// made a read holding a thousand pipelined requests quadratic.
    start: usize,
    /// After an error: discard input until the next `Content-Length:`.
    resyncing: bool,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.drain(..self.start);
        self.start = 0;
        self.buf.extend_from_slice(bytes);
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
    }

    /// The next complete frame's body, an error for skipped input, or `None` when more
    /// bytes are needed.
    pub fn next_frame(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        if self.resyncing {
            match find(self.pending(), CONTENT_LENGTH) {
                Some(skip) => {
                    self.consume(skip);
                    self.resyncing = false;
                }
                None => {
                    // Keep a tail that could be the start of a split "Content-Length:".
                    let keep = CONTENT_LENGTH.len() - 1;
                    let len = self.pending().len();
                    if len > keep {
                        self.consume(len - keep);
                    }
                    return None;
                }
            }
        }

        let pending = self.pending();
        let Some(header_len) = find(pending, HEADER_END) else {
            if pending.len() > MAX_HEADER_LENGTH {
                return Some(Err(self.skip_garbage()));
            }
            return None;
        };
        let header = String::from_utf8_lossy(&pending[..header_len]).into_owned();
        let body_start = header_len + HEADER_END.len();
        let length = match parse_content_length(&header) {
            Ok(length) => length,
            Err(err) => {
                self.consume(body_start);
                self.resyncing = true;
                return Some(Err(err));
            }
        };
        if pending.len() < body_start + length {
            return None;
        }
        let body = pending[body_start..body_start + length].to_vec();
        self.consume(body_start + length);
        Some(Ok(body))
    }

    fn skip_garbage(&mut self) -> FrameError {
        // Drop everything before the next header (if one is in sight), else all of it.
        let pending = self.pending();
        let skip = find(&pending[1..], CONTENT_LENGTH).map_or(pending.len(), |i| i + 1);
        self.consume(skip);
        FrameError::Garbage(skip)
    }
}

fn parse_content_length(header: &str) -> Result<usize, FrameError> {
    // Junk before the header (e.g. left over from a broken frame) is tolerated as long
    // as a Content-Length line follows it.
    let line = header
        .split("\r\n")
        .filter_map(|line| line.find("Content-Length:").map(|i| &line[i..]))
        .last()
        .ok_or(FrameError::MissingContentLength)?;
    let value = line["Content-Length:".len()..].trim();
    let length: usize = value
        .parse()
        .map_err(|_| FrameError::InvalidContentLength(value.into()))?;
    if length > MAX_CONTENT_LENGTH {
        return Err(FrameError::TooLarge(length));
    }
    Ok(length)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub fn encode_frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn drain(decoder: &mut FrameDecoder) -> Vec<Result<Vec<u8>, FrameError>> {
        std::iter::from_fn(|| decoder.next_frame()).collect()
    }

    fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..300)
    }

    proptest! {
        #[test]
        fn any_split_of_a_stream_yields_the_same_messages(
            bodies in proptest::collection::vec(body_strategy(), 1..6),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let stream: Vec<u8> = bodies.iter().flat_map(|b| encode_frame(b)).collect();
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
            points.push(0);
            points.push(stream.len());
            points.sort_unstable();
            let mut decoder = FrameDecoder::new();
            let mut got = Vec::new();
            for pair in points.windows(2) {
                decoder.push(&stream[pair[0]..pair[1]]);
                got.extend(drain(&mut decoder));
            }
            let expected: Vec<_> = bodies.into_iter().map(Ok).collect();
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn garbage_never_panics_and_a_later_message_still_arrives(
            garbage in proptest::collection::vec(any::<u8>(), 0..20_000),
            body in "[a-z{}\":]{0,40}",
        ) {
            let mut decoder = FrameDecoder::new();
            decoder.push(&garbage);
            let _ = drain(&mut decoder);
            // Terminate whatever half-header the garbage left, then send a good frame.
            decoder.push(b"\r\n\r\n");
            let _ = drain(&mut decoder);
            decoder.push(&encode_frame(body.as_bytes()));
            let got = drain(&mut decoder);
            prop_assert!(got.contains(&Ok(body.into_bytes())), "{:?}", got);
        }
    }

    #[test]
    fn several_messages_in_one_read() {
        let mut decoder = FrameDecoder::new();
        let mut input = encode_frame(b"{\"a\":1}");
        input.extend(encode_frame(b"{\"b\":2}"));
        decoder.push(&input);
        assert_eq!(
            drain(&mut decoder),
            vec![Ok(b"{\"a\":1}".to_vec()), Ok(b"{\"b\":2}".to_vec())]
        );
    }

    #[test]
    fn missing_content_length_is_reported_and_skipped() {
        let mut decoder = FrameDecoder::new();
        decoder.push(b"Content-Type: json\r\n\r\n{}");
        decoder.push(&encode_frame(b"{}"));
        assert_eq!(
            drain(&mut decoder),
            vec![Err(FrameError::MissingContentLength), Ok(b"{}".to_vec())]
        );
    }

    #[test]
    fn huge_content_length_is_refused_not_buffered() {
        let mut decoder = FrameDecoder::new();
        decoder.push(b"Content-Length: 99999999999\r\n\r\n{\"x\":1}");
        decoder.push(&encode_frame(b"{}"));
        assert_eq!(
            drain(&mut decoder),
            vec![Err(FrameError::TooLarge(99999999999)), Ok(b"{}".to_vec())]
        );
    }

    #[test]
    fn non_numeric_length() {
        let mut decoder = FrameDecoder::new();
        decoder.push(b"Content-Length: ten\r\n\r\n");
        assert_eq!(
            drain(&mut decoder),
            vec![Err(FrameError::InvalidContentLength("ten".into()))]
        );
    }

    #[test]
    fn endless_header_is_garbage() {
        let mut decoder = FrameDecoder::new();
        decoder.push(&vec![b'x'; MAX_HEADER_LENGTH + 10]);
        assert_eq!(
            drain(&mut decoder),
            vec![Err(FrameError::Garbage(MAX_HEADER_LENGTH + 10))]
        );
    }
}
