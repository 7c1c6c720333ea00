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

/// The items on screen: `first..end`, with `first` hidden above and the rest below.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    first: usize,
    end: usize,
    /// Whether the list is paged: then a line above and a line below the items say how
    /// many are hidden there.
    paged: bool,
}

impl Window {
    /// Lines drawn below the prompt.
    fn lines(&self) -> usize {
        self.end - self.first + if self.paged { 2 } else { 0 }
    }
}

/// Which of `count` items to show on a terminal `height` rows high, below the prompt's
/// line, so that the list never scrolls the screen (a redraw moves up only within it).
/// `first` is the window's previous start: the window moves only as far as the selected
/// item needs.
fn window(count: usize, selected: usize, first: usize, height: usize) -> Window {
    let rows = height.saturating_sub(1).max(1);
    if count <= rows {
        return Window {
            first: 0,
            end: count,
            paged: false,
        };
    }
    let shown = rows.saturating_sub(2).max(1);
    let mut first = first.min(count - shown);
    if selected < first {
        first = selected;
    } else if selected >= first + shown {
        first = selected + 1 - shown;
    }
    Window {
        first,
        end: first + shown,
        paged: true,
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

const HINT: &str = "(↑/↓ and Enter, or type a number; Esc to go back)";

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
    // Lines drawn below the prompt's, to move back over at the next redraw.
    let mut drawn: Option<usize> = None;
    let mut view = window(items.len(), 0, 0, usize::MAX);
    let chosen = loop {
        let (width, height) = terminal::size()
            .map(|(w, h)| (w as usize, h as usize))
            .unwrap_or((80, 24));
        let width = width.max(20);
        if let Some(lines) = drawn {
            back_over(&mut out, lines)?;
        }
        view = window(items.len(), cursor, view.first, height);
        // One line, or the redraw would move up too little.
        let prompt_line = fit(prompt, width - 3);
        write!(out, "{} {}", p.green("?"), p.bold(&prompt_line))?;
        if prompt_line.chars().count() + HINT.chars().count() + 3 < width {
            write!(out, " {}", p.dim(HINT))?;
        }
        if view.paged {
            let above = match view.first {
                0 => String::new(),
                n => format!("↑ {n} more"),
            };
            write!(out, "\r\n  {}", p.dim(&above))?;
        }
        for (i, item) in items.iter().enumerate().take(view.end).skip(view.first) {
            let line = fit(&format!("{:>2}. {item}", i + 1), width - 3);
            if i == cursor {
                write!(out, "\r\n{} {}", p.cyan("❯"), p.cyan(&line))?;
            } else {
                write!(out, "\r\n  {line}")?;
            }
        }
        if view.paged {
            let below = match items.len() - view.end {
                0 => String::new(),
                n => format!("↓ {n} more"),
            };
            write!(out, "\r\n  {}", p.dim(&below))?;
        }
        out.flush()?;
        drawn = Some(view.lines());

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
            KeyCode::Home => cursor = 0,
            KeyCode::End => cursor = n - 1,
            // A page is what the window shows.
            KeyCode::PageUp => cursor = cursor.saturating_sub(view.end - view.first),
            KeyCode::PageDown => cursor = (cursor + (view.end - view.first)).min(n - 1),
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
    back_over(&mut out, drawn.unwrap_or(0))?;
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

/// Moves to the start of the prompt's line, `lines` above, and clears from there down.
fn back_over(out: &mut impl Write, lines: usize) -> io::Result<()> {
    out.queue(MoveToColumn(0))?;
    // `MoveUp(0)` would still move one line up in most terminals.
    if lines > 0 {
        out.queue(MoveUp(u16::try_from(lines).unwrap_or(u16::MAX)))?;
    }
    out.queue(Clear(ClearType::FromCursorDown))?;
    Ok(())
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
    fn a_list_taller_than_the_terminal_is_paged() {
        // Everything fits: no paging.
        assert_eq!(
            window(6, 5, 0, 24),
            Window {
                first: 0,
                end: 6,
                paged: false
            }
        );
        // 30 items on 10 rows: the prompt, "↑ more", 7 items, "↓ more".
        let w = window(30, 0, 0, 10);
        assert_eq!((w.first, w.end, w.paged), (0, 7, true));
        assert_eq!(w.lines(), 9);
        // The window follows the selection one item at a time...
        let w = window(30, 7, w.first, 10);
        assert_eq!((w.first, w.end), (1, 8));
        // ...stays put while the selection moves inside it...
        let w = window(30, 3, w.first, 10);
        assert_eq!((w.first, w.end), (1, 8));
        // ...and jumps to either end (wrapping from the last item to the first).
        let w = window(30, 29, w.first, 10);
        assert_eq!((w.first, w.end), (23, 30));
        let w = window(30, 0, w.first, 10);
        assert_eq!((w.first, w.end), (0, 7));
        // A terminal that shrank: the old start is pulled back into range.
        let w = window(30, 29, 25, 6);
        assert_eq!((w.first, w.end), (27, 30));
    }

    #[test]
    fn the_paged_list_always_fits_and_shows_the_selection() {
        for height in 4..30 {
            for count in 1..40 {
                let mut first = 0;
                for selected in (0..count).chain((0..count).rev()) {
                    let w = window(count, selected, first, height);
                    assert!(
                        (w.first..w.end).contains(&selected),
                        "{count} items, {height} rows: {selected} not in {w:?}"
                    );
                    // The prompt's line and the list's.
                    assert!(
                        w.lines() < height,
                        "{count} items, {height} rows: {w:?} overflows"
                    );
                    assert_eq!(w.paged, count + 1 > height, "{count} items, {height} rows");
                    first = w.first;
                }
            }
        }
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
