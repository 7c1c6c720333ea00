//! A one-line-per-item selection list for the terminal: arrow keys (or j/k) and Enter,
//! or the item's number. Typing a number jumps to the item and, when no longer number
//! could follow, selects it at once. Without a terminal it asks for a number on a line,
//! so the same program can be driven through a pipe.

use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossterm::cursor::{Hide, MoveToColumn, MoveUp, Show};
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::terminal::{self, Clear, ClearType};
use crossterm::{QueueableCommand, execute};

use crate::render::Palette;

/// Restores the terminal however the list is left (selection, Ctrl-C, an I/O error).
struct RawMode;

impl RawMode {
    fn enter() -> io::Result<RawMode> {
        terminal::enable_raw_mode()?;
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = execute!(io::stdout(), Show);
        let _ = terminal::disable_raw_mode();
    }
}

/// Whether the list can use the terminal keyboard; otherwise it reads numbers from stdin.
pub fn is_interactive() -> bool {
    io::stdin().is_terminal() && io::stdout().is_terminal()
}

/// Asks to pick one of `items`; `None` when the person backs out (Esc, q, Ctrl-C, Ctrl-D,
/// end of input) or `cancel` is set.
pub fn select(
    prompt: &str,
    items: &[String],
    palette: Palette,
    cancel: &Arc<AtomicBool>,
) -> io::Result<Option<usize>> {
    if items.is_empty() {
        return Ok(None);
    }
    if is_interactive() {
        select_on_terminal(prompt, items, palette, cancel)
    } else {
        select_by_line(prompt, items, &mut io::stdin().lock(), &mut io::stdout())
    }
}

/// What a typed digit does to the selection.
#[derive(Debug, PartialEq, Eq)]
enum Digit {
    /// Select this item now: no other item's number starts with what was typed.
    Choose(usize),
    /// Move to this item and wait for another digit or Enter.
    Jump(usize),
    /// No item has this number.
    Nothing,
}

/// `typed` holds the digits so far (the new one included).
fn on_digit(typed: &str, count: usize) -> Digit {
    match typed.parse::<usize>() {
        Ok(n) if (1..=count).contains(&n) => {
            if n.saturating_mul(10) > count {
                Digit::Choose(n - 1)
            } else {
                Digit::Jump(n - 1)
            }
        }
        _ => Digit::Nothing,
    }
}

fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

fn select_on_terminal(
    prompt: &str,
    items: &[String],
    p: Palette,
    cancel: &Arc<AtomicBool>,
) -> io::Result<Option<usize>> {
    let mut out = io::stdout();
    let _raw = RawMode::enter()?;
    out.queue(Hide)?;
    let mut cursor = 0usize;
    let mut typed = String::new();
    let mut drawn = false;
    let hint = p.dim("(↑/↓ and Enter, or type a number; Esc to go back)");
    let chosen = loop {
        let width = terminal::size()
            .map(|(w, _)| w as usize)
            .unwrap_or(80)
            .max(20);
        if drawn {
            out.queue(MoveToColumn(0))?;
            out.queue(MoveUp(items.len() as u16))?;
            out.queue(Clear(ClearType::FromCursorDown))?;
        }
        write!(out, "{} {} {}", p.green("?"), p.bold(prompt), hint)?;
        for (i, item) in items.iter().enumerate() {
            let line = fit(&format!("{:>2}. {item}", i + 1), width - 3);
            if i == cursor {
                write!(out, "\r\n{} {}", p.cyan("❯"), p.cyan(&line))?;
            } else {
                write!(out, "\r\n  {line}")?;
            }
        }
        out.flush()?;
        drawn = true;

        // Poll so that a cancellation from outside ends the list without a key press.
        let key = loop {
            if cancel.load(Ordering::SeqCst) {
                break None;
            }
            if event::poll(Duration::from_millis(100))? {
                match event::read()? {
                    Event::Key(k) if k.kind != KeyEventKind::Release => break Some(k),
                    Event::Resize(..) => break Some(KeyEvent::from(KeyCode::Null)),
                    _ => {}
                }
            }
        };
        let Some(KeyEvent {
            code, modifiers, ..
        }) = key
        else {
            break None;
        };
        let n = items.len();
        match code {
            KeyCode::Up | KeyCode::Char('k') | KeyCode::BackTab => {
                cursor = (cursor + n - 1) % n;
                typed.clear();
            }
            KeyCode::Down | KeyCode::Char('j') | KeyCode::Tab => {
                cursor = (cursor + 1) % n;
                typed.clear();
            }
            KeyCode::Home | KeyCode::PageUp => cursor = 0,
            KeyCode::End | KeyCode::PageDown => cursor = n - 1,
            KeyCode::Enter => break Some(cursor),
            KeyCode::Char('c') | KeyCode::Char('d')
                if modifiers.contains(KeyModifiers::CONTROL) =>
            {
                break None;
            }
            KeyCode::Esc | KeyCode::Char('q') => break None,
            KeyCode::Char(d) if d.is_ascii_digit() => {
                typed.push(d);
                let mut action = on_digit(&typed, n);
                if action == Digit::Nothing {
                    // Start a new number with this digit.
                    typed = d.to_string();
                    action = on_digit(&typed, n);
                }
                match action {
                    Digit::Choose(i) => break Some(i),
                    Digit::Jump(i) => cursor = i,
                    Digit::Nothing => typed.clear(),
                }
            }
            _ => {}
        }
    };
    // Collapse the list into one line saying what was chosen.
    out.queue(MoveToColumn(0))?;
    out.queue(MoveUp(items.len() as u16))?;
    out.queue(Clear(ClearType::FromCursorDown))?;
    match chosen {
        Some(i) => write!(
            out,
            "{} {} › {}\r\n",
            p.green("✔"),
            p.bold(prompt),
            p.cyan(&items[i])
        )?,
        None => write!(
            out,
            "{} {} › {}\r\n",
            p.dim("✘"),
            p.bold(prompt),
            p.dim("(back)")
        )?,
    }
    out.flush()?;
    Ok(chosen)
}

/// The list for a pipe: numbered lines, then one answer per line (a number, or an item's
/// exact text). An empty line, `q` or end of input backs out.
fn select_by_line(
    prompt: &str,
    items: &[String],
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> io::Result<Option<usize>> {
    writeln!(out, "{prompt}")?;
    for (i, item) in items.iter().enumerate() {
        writeln!(out, "  {}. {item}", i + 1)?;
    }
    loop {
        write!(out, "Choose 1-{}: ", items.len())?;
        out.flush()?;
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 {
            writeln!(out)?;
            return Ok(None);
        }
        let answer = line.trim();
        if answer.is_empty() || answer.eq_ignore_ascii_case("q") {
            return Ok(None);
        }
        if let Ok(n) = answer.parse::<usize>()
            && (1..=items.len()).contains(&n)
        {
            return Ok(Some(n - 1));
        }
        if let Some(i) = items.iter().position(|it| it == answer) {
            return Ok(Some(i));
        }
        writeln!(out, "'{answer}' is not one of 1-{}", items.len())?;
    }
}

/// Reads a password without echoing it, from the terminal.
pub fn prompt_password(prompt: &str) -> io::Result<String> {
    rpassword::prompt_password(prompt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digit_selects_when_nothing_longer_can_follow() {
        assert_eq!(on_digit("5", 6), Digit::Choose(4));
        assert_eq!(on_digit("1", 6), Digit::Choose(0));
        assert_eq!(on_digit("7", 6), Digit::Nothing);
        assert_eq!(on_digit("0", 6), Digit::Nothing);
        // With twelve items, "1" may become 10, 11 or 12.
        assert_eq!(on_digit("1", 12), Digit::Jump(0));
        assert_eq!(on_digit("12", 12), Digit::Choose(11));
        assert_eq!(on_digit("2", 12), Digit::Choose(1));
    }

    #[test]
    fn line_mode_takes_numbers_and_names() {
        let items = vec!["alpha".to_owned(), "beta".to_owned()];
        let mut out = Vec::new();
        let pick = |input: &str, out: &mut Vec<u8>| {
            select_by_line("Pick", &items, &mut io::Cursor::new(input.as_bytes()), out).unwrap()
        };
        assert_eq!(pick("2\n", &mut out), Some(1));
        assert_eq!(pick("alpha\n", &mut out), Some(0));
        assert_eq!(pick("9\n1\n", &mut out), Some(0));
        assert_eq!(pick("", &mut out), None);
        assert_eq!(pick("q\n", &mut out), None);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("  1. alpha\n  2. beta\n"));
        assert!(text.contains("'9' is not one of 1-2"));
    }
}
