//! The Debug Adapter Protocol on the wire: framing and message types. No OS, no tokio.

pub mod codec;
pub mod messages;

pub use codec::{encode_frame, FrameDecoder, FrameError};
pub use messages::*;
