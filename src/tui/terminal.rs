//! The terminal: raw mode and the alternate screen (given back on every
//! exit path, on panic, and around Ctrl-Z), and frames drawn no more often
//! than every `FRAME`, with what was written counted for the benchmark.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::{cursor, execute, terminal};

use super::action::Binding;
use super::model::Model;
use super::theme::Theme;
use super::view;

/// Shortest time between two frames.
const FRAME: Duration = Duration::from_millis(33);

/// Counts what we write to the terminal (for the idle-bytes benchmark).
struct Counting<W> {
    inner: W,
    bytes: Arc<AtomicU64>,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub(super) fn enter() -> io::Result<()> {
    terminal::enable_raw_mode()?;
    execute!(io::stdout(), terminal::EnterAlternateScreen, cursor::Hide)
}

/// Puts the terminal back as we found it. Safe to call more than once.
pub fn restore() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(io::stdout(), terminal::LeaveAlternateScreen, cursor::Show);
}

/// Ctrl-Z: give the terminal back, stop; SIGCONT brings us back.
pub(super) fn suspend() {
    restore();
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::TSTP);
    // Execution continues here after `fg`.
    let _ = enter();
}

/// Restores the terminal when dropped (every exit path, including `?`).
struct Guard;
impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

/// The console's screen, from raw mode on to the terminal given back.
pub(super) struct Screen {
    term: Terminal<CrosstermBackend<Counting<io::Stdout>>>,
    _guard: Guard,
    bytes: Arc<AtomicU64>,
    last_frame: Instant,
    frames: u64,
    /// `AUTONOMOS_CONSOLE_STATS`: where to write bytes and frames so far.
    stats: Option<String>,
}

impl Screen {
    /// Raw mode, the alternate screen, and a restore on panic.
    pub fn open() -> Result<Screen, String> {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            hook(info);
        }));
        if let Err(e) = enter() {
            restore();
            return Err(format!("cannot set up the terminal: {e}"));
        }
        let guard = Guard;
        let bytes = Arc::new(AtomicU64::new(0));
        let backend = CrosstermBackend::new(Counting {
            inner: io::stdout(),
            bytes: bytes.clone(),
        });
        let term =
            Terminal::new(backend).map_err(|e| format!("cannot set up the terminal: {e}"))?;
        Ok(Screen {
            term,
            _guard: guard,
            bytes,
            last_frame: Instant::now() - FRAME,
            frames: 0,
            stats: std::env::var("AUTONOMOS_CONSOLE_STATS").ok(),
        })
    }

    /// Draws the model if it changed and a frame is due.
    pub fn draw_due(&mut self, m: &mut Model, theme: &Theme, keymap: &[Binding]) -> io::Result<()> {
        if !m.dirty || !FRAME.saturating_sub(self.last_frame.elapsed()).is_zero() {
            return Ok(());
        }
        self.term.draw(|f| view::view(m, theme, keymap, f))?;
        self.frames += 1;
        self.last_frame = Instant::now();
        m.dirty = false;
        self.write_stats();
        Ok(())
    }

    /// How long until the next frame may be drawn (an hour when nothing changed).
    pub fn redraw_in(&self, m: &Model) -> Duration {
        if m.dirty {
            FRAME.saturating_sub(self.last_frame.elapsed())
        } else {
            Duration::from_secs(3600)
        }
    }

    pub fn clear(&mut self) {
        let _ = self.term.clear();
    }

    pub fn resized(&mut self) {
        let _ = self.term.autoresize();
    }

    /// For the idle-output benchmark: what has been written so far.
    pub fn write_stats(&self) {
        if let Some(path) = &self.stats {
            let _ = std::fs::write(
                path,
                format!(
                    "{{\"bytes\":{},\"frames\":{}}}\n",
                    self.bytes.load(Ordering::Relaxed),
                    self.frames
                ),
            );
        }
    }
}
