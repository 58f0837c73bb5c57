//! The process log's writer: every line `sluice serve`, `sluice run` or a runner logs passes the
//! sensitive-data detector on its way to stderr, and what it finds (keys, tokens, card numbers,
//! e-mail addresses, …) is written as `*`. Task logs are masked by the runner the same way, and
//! also of the task's known secret values.

use std::io::{IsTerminal, Write};

use tracing_subscriber::fmt::MakeWriter;

/// Access key ids identify a caller (CloudTrail records them too) and are not secrets: the
/// server's request log names them so an operator can trace a request.
const KEPT: &[&str] = &["AWS_ACCESS_KEY_ID"];

/// Makes one `MaskedEvent` per log event.
pub struct MaskedStderr;

impl MaskedStderr {
    pub fn is_terminal(&self) -> bool {
        std::io::stderr().is_terminal()
    }
}

impl<'a> MakeWriter<'a> for MaskedStderr {
    type Writer = MaskedEvent<std::io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        MaskedEvent::new(std::io::stderr())
    }
}

/// Gathers one formatted event, masks it and writes it whole when dropped.
pub struct MaskedEvent<W: Write> {
    buffer: Vec<u8>,
    out: W,
}

impl<W: Write> MaskedEvent<W> {
    pub fn new(out: W) -> MaskedEvent<W> {
        MaskedEvent {
            buffer: Vec::with_capacity(256),
            out,
        }
    }
}

impl<W: Write> Write for MaskedEvent<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for MaskedEvent<W> {
    fn drop(&mut self) {
        if let Some(detector) = sluice_detect::managed() {
            for line in self.buffer.split_mut(|byte| *byte == b'\n') {
                sluice_detect::mask_line(detector, line, KEPT);
            }
        }
        let _ = self.out.write_all(&self.buffer);
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_detector_finds_in_a_log_line_is_masked_and_the_rest_is_kept() {
        let mut out = Vec::new();
        {
            let mut event = MaskedEvent::new(&mut out);
            write!(event, "WARN request failed: key AKIAQWERTYUIOPASDFGH for ").expect("write");
            writeln!(event, "ada@corp.com, token ghp_Zx9kQ2vLmN4pR7sT1uW3yB5dF8hJ0kL2nP4r").expect("write");
            writeln!(event, "INFO next line 42").expect("write");
        }
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            text,
            "WARN request failed: key AKIAQWERTYUIOPASDFGH for ************, token ****************************************\nINFO next line 42\n"
        );
    }
}
