//! The producer's status line on a terminal: per-topic rates redrawn in place on stderr.
//!
//! Log lines reach the same terminal. [`log_writer`], the writer of the binary's log
//! layer, clears a drawn status line before a log line and draws it again after, so a
//! log line never glues onto it. The line is cut to the terminal's width: a line longer
//! than that would wrap, and each redraw (which only returns to the start of the last
//! row) would leave another copy of it on the screen.

use std::io::{self, Write};
use std::sync::{Mutex, MutexGuard};

/// Returns to the start of the row and erases it.
const ERASE: &[u8] = b"\r\x1b[2K";

/// The status line drawn on stderr now; empty when none is.
static DRAWN: Mutex<String> = Mutex::new(String::new());

fn drawn() -> MutexGuard<'static, String> {
    DRAWN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Draws `text` as the status line on stderr, in place of the previous one. Call it only
/// when stderr is a terminal.
pub fn draw(text: &str) {
    let width = console::Term::stderr()
        .size_checked()
        .map_or(80, |(_, cols)| usize::from(cols));
    let mut drawn = drawn();
    let mut err = io::stderr().lock();
    let _ = draw_on(&mut err, &mut drawn, text, width);
}

/// Erases the status line, if one is drawn.
pub fn clear() {
    let mut drawn = drawn();
    if !drawn.is_empty() {
        let mut err = io::stderr().lock();
        let _ = err.write_all(ERASE).and_then(|()| err.flush());
        drawn.clear();
    }
}

/// The log layer's writer: stderr, with the status line put aside around each log line.
pub fn log_writer() -> LogWriter<io::Stderr> {
    LogWriter::new(drawn(), io::stderr())
}

/// Writes the line, cut to one column less than `width` (a full row would make some
/// terminals wrap), and remembers it in `drawn`.
fn draw_on(out: &mut impl Write, drawn: &mut String, text: &str, width: usize) -> io::Result<()> {
    let line = console::truncate_str(text, width.saturating_sub(1).max(1), "…");
    out.write_all(ERASE)?;
    out.write_all(line.as_bytes())?;
    out.flush()?;
    drawn.clear();
    drawn.push_str(&line);
    Ok(())
}

/// One log line's writer. Holding the status line's lock, it erases the line before the
/// first byte and draws it again when dropped, after the log line's newline.
pub struct LogWriter<W: Write> {
    drawn: MutexGuard<'static, String>,
    out: W,
    erased: bool,
}

impl<W: Write> LogWriter<W> {
    fn new(drawn: MutexGuard<'static, String>, out: W) -> Self {
        Self {
            drawn,
            out,
            erased: false,
        }
    }
}

impl<W: Write> Write for LogWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.erased && !self.drawn.is_empty() {
            self.out.write_all(ERASE)?;
            self.erased = true;
        }
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl<W: Write> Drop for LogWriter<W> {
    fn drop(&mut self) {
        if self.erased {
            let _ = self.out.write_all(self.drawn.as_bytes());
            let _ = self.out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A status line of its own, so that tests do not share the global one.
    fn with_line<T>(f: impl FnOnce(MutexGuard<'static, String>) -> T) -> T {
        static LINE: Mutex<String> = Mutex::new(String::new());
        f(LINE.lock().unwrap_or_else(|e| e.into_inner()))
    }

    #[test]
    fn log_lines_do_not_glue_onto_the_status_line() {
        with_line(|mut drawn| {
            let mut screen = Vec::new();
            draw_on(&mut screen, &mut drawn, "orders 20/s (400 acked)", 80).unwrap();
            let mut log = LogWriter::new(drawn, &mut screen);
            log.write_all(b"WARN event stream lost\n").unwrap();
            drop(log);
            assert_eq!(
                String::from_utf8(screen).unwrap(),
                "\r\x1b[2Korders 20/s (400 acked)\r\x1b[2KWARN event stream lost\norders 20/s (400 acked)"
            );
        });
    }

    #[test]
    fn without_a_status_line_logs_are_written_as_they_are() {
        with_line(|mut drawn| {
            drawn.clear();
            let mut screen = Vec::new();
            let mut log = LogWriter::new(drawn, &mut screen);
            log.write_all(b"INFO starting\n").unwrap();
            drop(log);
            assert_eq!(screen, b"INFO starting\n");
        });
    }

    #[test]
    fn the_status_line_is_cut_to_the_terminal_width() {
        with_line(|mut drawn| {
            let long = format!("{} 20/s (400 acked) | other 1/s (3 acked)", "t".repeat(200));
            let mut screen = Vec::new();
            draw_on(&mut screen, &mut drawn, &long, 40).unwrap();
            assert_eq!(console::measure_text_width(&drawn), 39, "{drawn:?}");
            assert!(drawn.ends_with('…'));
            let shown = String::from_utf8(screen).unwrap();
            assert_eq!(shown, format!("\r\x1b[2K{}", *drawn));
            assert!(!shown.contains('\n'));
        });
    }
}
