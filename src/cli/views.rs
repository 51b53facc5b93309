//! `crit x` and `crit stats`: open the checkpoint (a directory or an
//! archive), print a view to stdout, and report problems met on the way.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use crit::checkpoint::Checkpoint;
use crit::explore::Notes;

use super::{describe, Failure};

/// Open `dir` and run one view on it.  The view's output goes to stdout;
/// problems it noted go to stderr after it, with exit status 1.
pub fn run(
    dir: &Path,
    view: impl FnOnce(&Checkpoint, &mut dyn Write, &mut Notes) -> crit::Result<()>,
) -> Result<(), Failure> {
    let ck = Checkpoint::open(dir).map_err(|e| describe(&e, None))?;
    let mut notes = Notes::default();
    let stdout = io::stdout();
    let mut w = BufWriter::with_capacity(1 << 16, stdout.lock());
    let r = view(&ck, &mut w, &mut notes).and_then(|_| w.flush().map_err(Into::into));
    match r {
        Err(e) if e.is_broken_pipe() => return Ok(()),
        Err(e) => {
            let _ = w.flush();
            return Err(describe(&e, None));
        }
        Ok(()) => {}
    }
    if notes.problems.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(notes.problems.iter().map(|p| format!("crit: {p}")).collect::<Vec<_>>().join("\n")))
    }
}
