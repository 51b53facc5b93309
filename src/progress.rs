//! A one-line progress display for long commands, on stderr.
//!
//! A [`Meter`] counts files and bytes and redraws one line,
//! `\rcrit: convert: 12/340 files, 1.2 GiB`, at most ten times a second.
//! It draws only when the program has turned progress on ([`enable`]; the
//! `crit` binary does, library users get silence by default) and stderr is
//! a terminal; otherwise every call is a counter update and nothing more.
//! The line is erased when the meter finishes or is dropped, so the output
//! that follows starts on a clean line.

use std::io::{self, IsTerminal, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// The shortest time between two redraws.
pub const INTERVAL: Duration = Duration::from_millis(100);

/// Turn progress display on or off for the whole program (off at start).
pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether meters made now would draw: progress is enabled and stderr is
/// a terminal.
pub fn active() -> bool {
    ENABLED.load(Ordering::Relaxed) && io::stderr().is_terminal()
}

/// A byte count in binary units with one decimal: `512 B`, `1.5 KiB`,
/// `1.2 GiB`.
pub fn iec(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// A progress line: files done (of a total, when known) and bytes.
pub struct Meter {
    what: String,
    total: Option<u64>,
    files: u64,
    bytes: u64,
    out: Option<Box<dyn Write>>,
    last: Option<Instant>,
    drawn: usize,
}

impl Meter {
    /// A meter for `what` (`convert`, ...) over `total` files, drawing on
    /// stderr when [`active`].
    pub fn new(what: &str, total: Option<u64>) -> Meter {
        let out: Option<Box<dyn Write>> = if active() { Some(Box::new(io::stderr())) } else { None };
        Meter::with_output(what, total, out)
    }

    /// A meter drawing on `out` (None: counting only), whatever the
    /// terminal; for tests and for programs with their own display.
    pub fn with_output(what: &str, total: Option<u64>, out: Option<Box<dyn Write>>) -> Meter {
        Meter { what: what.to_string(), total, files: 0, bytes: 0, out, last: None, drawn: 0 }
    }

    /// Files counted so far.
    pub fn files(&self) -> u64 {
        self.files
    }

    /// Bytes counted so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// One more file done.
    pub fn file_done(&mut self) {
        self.files += 1;
        self.tick(Instant::now());
    }

    /// `n` more bytes done.
    pub fn add_bytes(&mut self, n: u64) {
        self.bytes += n;
        self.tick(Instant::now());
    }

    /// A reader that adds what it reads to this meter.
    pub fn reader<R: Read>(&mut self, inner: R) -> MeterReader<'_, R> {
        MeterReader { inner, meter: self }
    }

    /// The text of the line, without the carriage return.
    pub fn line(&self) -> String {
        let files = match self.total {
            Some(t) => format!("{}/{t} files", self.files),
            None => format!("{} files", self.files),
        };
        format!("crit: {}: {files}, {}", self.what, iec(self.bytes))
    }

    /// Redraw if the last draw is at least [`INTERVAL`] before `now`.
    fn tick(&mut self, now: Instant) {
        if self.out.is_none() || self.last.is_some_and(|t| now.duration_since(t) < INTERVAL) {
            return;
        }
        self.last = Some(now);
        let line = self.line();
        // Pad over a longer previous line.
        let pad = self.drawn.saturating_sub(line.len());
        self.drawn = line.len();
        if let Some(w) = self.out.as_mut() {
            // A display that cannot be written is not worth failing the
            // work for: stop drawing.
            if write!(w, "\r{line}{:pad$}", "").and_then(|_| w.flush()).is_err() {
                self.out = None;
            }
        }
    }

    /// Erase the line (if one was drawn) and stop drawing.
    pub fn finish(&mut self) {
        if let Some(mut w) = self.out.take() {
            if self.drawn > 0 {
                let _ = write!(w, "\r{:n$}\r", "", n = self.drawn).and_then(|_| w.flush());
            }
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A reader counting its bytes into a [`Meter`] (see [`Meter::reader`]).
pub struct MeterReader<'a, R> {
    inner: R,
    meter: &'a mut Meter,
}

impl<R: Read> Read for MeterReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.meter.add_bytes(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer whose bytes the test can read afterwards.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().map_err(|_| io::Error::other("poisoned"))?.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn units() {
        assert_eq!(iec(0), "0 B");
        assert_eq!(iec(1023), "1023 B");
        assert_eq!(iec(1024), "1.0 KiB");
        assert_eq!(iec(1536), "1.5 KiB");
        assert_eq!(iec(1288490189), "1.2 GiB");
        assert_eq!(iec(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn redraws_at_most_every_interval_and_erases() {
        let buf = Shared::default();
        let mut m = Meter::with_output("convert", Some(3), Some(Box::new(buf.clone())));
        let t0 = Instant::now();
        m.files = 1;
        m.bytes = 2048;
        m.tick(t0);
        // 50 ms later: counted, not drawn.
        m.files = 2;
        m.tick(t0 + Duration::from_millis(50));
        assert_eq!(buf.text(), "\rcrit: convert: 1/3 files, 2.0 KiB");
        // 100 ms after the first draw: drawn.
        m.bytes = 10;
        m.tick(t0 + Duration::from_millis(100));
        // The shorter line pads over the longer one.
        assert_eq!(buf.text(), "\rcrit: convert: 1/3 files, 2.0 KiB\rcrit: convert: 2/3 files, 10 B   ");
        m.finish();
        let blank = " ".repeat("crit: convert: 2/3 files, 10 B".len());
        assert!(buf.text().ends_with(&format!("\r{blank}\r")), "{:?}", buf.text());
        // Finished: nothing more is drawn.
        let before = buf.text();
        m.file_done();
        assert_eq!(buf.text(), before);
        assert_eq!(m.files(), 3);
    }

    #[test]
    fn counting_only_without_output() {
        let mut m = Meter::with_output("x", None, None);
        let data = [7u8; 5000];
        let mut r = m.reader(&data[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        m.file_done();
        assert_eq!((m.files(), m.bytes()), (1, 5000));
        assert_eq!(m.line(), "crit: x: 1 files, 4.9 KiB");
    }

    #[test]
    fn off_by_default() {
        // Tests never turn progress on, so library users see nothing.
        assert!(!ENABLED.load(Ordering::Relaxed));
    }
}

/// Counters that many threads add to, drawn as a [`Meter`] line by a
/// thread of its own (for `serve` and `capture`, whose files move in
/// parallel threads).
#[derive(Default)]
pub struct Shared {
    files: std::sync::atomic::AtomicU64,
    bytes: std::sync::atomic::AtomicU64,
    done: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// One more file done.
    pub fn file_done(&self) {
        self.files.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// `n` more bytes moved.
    pub fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Start drawing `what` (only when [`active`]); the returned guard stops
    /// the drawing thread and erases the line when dropped.
    pub fn draw(self: &std::sync::Arc<Self>, what: &str) -> Option<SharedGuard> {
        if !active() {
            return None;
        }
        let me = self.clone();
        let what = what.to_string();
        let t = std::thread::spawn(move || {
            use std::sync::atomic::Ordering::Relaxed;
            let mut m = Meter::new(&what, None);
            let (mut f, mut b) = (0, 0);
            while !me.done.load(Relaxed) {
                let (nf, nb) = (me.files.load(Relaxed), me.bytes.load(Relaxed));
                for _ in f..nf {
                    m.file_done();
                }
                if nb > b {
                    m.add_bytes(nb - b);
                }
                (f, b) = (nf, nb);
                std::thread::sleep(INTERVAL);
            }
            m.finish();
        });
        Some(SharedGuard { shared: self.clone(), thread: Some(t) })
    }
}

/// Stops a [`Shared`] display when dropped.
pub struct SharedGuard {
    shared: std::sync::Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for SharedGuard {
    fn drop(&mut self) {
        self.shared.done.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
