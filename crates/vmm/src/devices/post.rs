//! Port 0x80, the POST diagnostic port: firmware writes progress codes to
//! it and Linux uses writes to it as a short I/O delay (`outb_p`). Writes
//! are kept (the last one is [`PostPort::last`]); reads return all ones, as
//! on QEMU's PC.

use super::bus::{DeviceAction, PortDevice};

/// The port.
pub const POST_PORT: u16 = 0x80;

/// Port 0x80.
#[derive(Debug, Default)]
pub struct PostPort {
    last: Option<u8>,
}

impl PostPort {
    /// The port, nothing written yet.
    pub fn new() -> PostPort {
        PostPort::default()
    }

    /// The last byte written.
    pub fn last(&self) -> Option<u8> {
        self.last
    }
}

impl PortDevice for PostPort {
    fn name(&self) -> &str {
        "post"
    }

    fn read(&mut self, _offset: u16, data: &mut [u8]) {
        data.fill(0xFF);
    }

    fn write(&mut self, _offset: u16, data: &[u8]) -> DeviceAction {
        if let Some(&v) = data.first() {
            self.last = Some(v);
        }
        DeviceAction::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_kept_reads_are_ones() {
        let mut p = PostPort::new();
        assert_eq!(p.last(), None);
        assert_eq!(p.write(0, &[0x42]), DeviceAction::None);
        assert_eq!(p.last(), Some(0x42));
        let mut v = [0; 2];
        p.read(0, &mut v);
        assert_eq!(v, [0xFF, 0xFF]);
    }
}
