//! Messages written into the host's buffer, and gap causes on the wire.

use super::*;

#[test]
fn message_is_truncated_on_a_char_boundary() {
    let mut buf = [0u8; 4];
    let mut o = Outcome {
        struct_size: Outcome::SIZE,
        ack: RawPosition::default(),
        msg: buf.as_mut_ptr(),
        msg_cap: 4,
        msg_len: 0,
    };
    // SAFETY: `o` points at `buf`, alive here.
    unsafe { write_message(&mut o, "abcé") };
    assert_eq!(o.msg_len, 3);
    assert_eq!(&buf[..3], b"abc");
}

#[test]
fn gap_causes_round_trip_through_their_codes() {
    for c in [
        GapCause::Deleted,
        GapCause::Copytruncate,
        GapCause::Corrupt,
        GapCause::NulFill,
        GapCause::Operator,
        GapCause::Truncated,
    ] {
        assert_eq!(GapCause::from_u32(c as u32), Some(c));
    }
    assert_eq!(GapCause::from_u32(0), None);
    assert_eq!(GapCause::from_u32(99), None);
}
