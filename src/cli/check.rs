//! `crit check DIR [--json]`: validate a checkpoint before restoring it.
//!
//! Exit status: 0 when no errors were found (warnings may have been
//! printed), 1 when there are errors (a damaged or missing image included),
//! 2 when the checkpoint itself cannot be opened.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use clap::Args;

use crit::checkpoint::Checkpoint;

use super::Failure;

/// `crit check` arguments.
#[derive(Args)]
pub struct CheckArgs {
    /// The checkpoint directory
    pub dir: PathBuf,
    /// Print the findings as JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// Run the check and print the report on stdout.
pub fn run(a: CheckArgs) -> Result<(), Failure> {
    let cannot_open = |e: crit::Error| Failure { message: format!("crit: {e}"), code: 2 };
    let ck = Checkpoint::open(&a.dir).map_err(cannot_open)?;
    let report = crit::check::check(&ck).map_err(cannot_open)?;
    let what = a.dir.display().to_string();
    let stdout = io::stdout();
    let mut w = BufWriter::new(stdout.lock());
    let written = if a.json {
        crit::check::write_json(&report, &what, &mut w)
    } else {
        crit::check::write_text(&report, &what, &mut w)
    }
    .and_then(|_| w.flush().map_err(Into::into));
    match written {
        Err(e) if e.is_broken_pipe() => {}
        Err(e) => return Err(Failure { message: format!("crit: {e}"), code: 1 }),
        Ok(()) => {}
    }
    if report.ok() {
        Ok(())
    } else {
        let n = report.errors();
        Err(Failure { message: format!("crit check: {what}: {n} error{}", if n == 1 { "" } else { "s" }), code: 1 })
    }
}
