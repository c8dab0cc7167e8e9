//! Message framing on a stream: a 2-byte big-endian length, then the message body.
//!
//! Used by CUP-style hosts and most ISO 8583 TCP links. `decode` follows the mini-redis
//! `check`/`parse` habit: "not enough bytes yet" is `Ok(None)`, never an error.

use crate::error::FrameError;

/// Prefixes a body with its 2-byte big-endian length.
pub fn encode(body: &[u8]) -> Result<Vec<u8>, FrameError> {
    let len = u16::try_from(body.len()).map_err(|_| FrameError::TooLong { len: body.len() })?;
    let mut out = Vec::with_capacity(body.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

/// Reads one frame from the start of `buf`: `Ok(None)` if more bytes are needed, otherwise the
/// body and the number of bytes consumed (2 + body length). Any 2-byte prefix is valid, so this
/// never fails today; the `Result` leaves room for dialect frame rules (maximum sizes).
pub fn decode(buf: &[u8]) -> Result<Option<(&[u8], usize)>, FrameError> {
    let Some(prefix) = buf.get(..2) else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
    Ok(buf.get(2..2 + len).map(|body| (body, 2 + len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_partial() {
        let framed = encode(b"abc").unwrap();
        assert_eq!(framed, b"\x00\x03abc");
        assert_eq!(decode(&framed).unwrap(), Some((&b"abc"[..], 5)));
        assert_eq!(decode(&framed[..4]).unwrap(), None);
        assert_eq!(decode(&framed[..1]).unwrap(), None);
        assert_eq!(decode(&[]).unwrap(), None);
        let mut two = framed.clone();
        two.extend_from_slice(&framed);
        assert_eq!(decode(&two).unwrap(), Some((&b"abc"[..], 5)));
        assert_eq!(decode(b"\x00\x00").unwrap(), Some((&b""[..], 2)));
    }

    #[test]
    fn too_long() {
        assert_eq!(
            encode(&vec![0; 65536]),
            Err(FrameError::TooLong { len: 65536 })
        );
        assert_eq!(encode(&vec![0; 65535]).map(|v| v.len()), Ok(65537));
    }
}
