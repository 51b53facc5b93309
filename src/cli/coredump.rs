//! `crit core DIR [-p PID] [-o OUTDIR]`: ELF core files from a checkpoint.

use std::path::PathBuf;

use clap::Args;

use crit::checkpoint::Checkpoint;
use crit::coredump::{self, CoreOptions};
use crit::mem::view::size_text;

use super::Failure;

/// `crit core` arguments.
#[derive(Args)]
pub struct CoreArgs {
    /// The checkpoint directory
    pub dir: PathBuf,
    /// Only this process (default: every process that has memory)
    #[arg(short = 'p', long = "pid", value_name = "PID")]
    pub pid: Option<u32>,
    /// Where to write core.PID (created if missing)
    #[arg(short = 'o', long = "out", value_name = "OUTDIR", default_value = ".")]
    pub out: PathBuf,
    /// Read mapped files' pages that were not dumped from this copy of the file system (default: /)
    #[arg(long, value_name = "DIR", conflicts_with = "no_files")]
    pub files_root: Option<PathBuf>,
    /// Do not read mapped files (gdb reads those pages from the binaries it loads)
    #[arg(long)]
    pub no_files: bool,
}

/// Run `crit core`.
pub fn run(a: CoreArgs) -> Result<(), Failure> {
    let fail = |e: crit::Error| Failure::new(format!("crit: {e}"));
    let ck = Checkpoint::open(&a.dir).map_err(fail)?;
    let opts = CoreOptions { files: super::mem::files_of(a.files_root.clone(), a.no_files) };
    let pids: Vec<u32> = match a.pid {
        Some(p) => vec![p],
        None => {
            let all = ck.tasks().map_err(fail)?;
            let with = coredump::processes_with_memory(&ck).map_err(fail)?;
            for t in all.iter().filter(|t| !with.iter().any(|w| w.pid == t.pid)) {
                eprintln!("crit: process {}: no memory image (a zombie): no core", t.pid);
            }
            with.iter().map(|t| t.pid).collect()
        }
    };
    std::fs::create_dir_all(&a.out).map_err(|e| Failure::new(format!("crit: {}: {e}", a.out.display())))?;
    let mut meter = crit::progress::Meter::new("core", Some(pids.len() as u64));
    for pid in pids {
        let path = a.out.join(coredump::core_name(pid));
        let r = coredump::write_core(&ck, pid, &path, &opts).map_err(fail)?;
        meter.add_bytes(r.size);
        meter.file_done();
        for w in &r.warnings {
            eprintln!("crit: process {pid}: {w}");
        }
        let unknown: u64 = r.unknown.iter().map(|u| u.1).sum();
        println!(
            "{}: {}, {} thread{}, {} segments, {} (dumped {}, from files {}), {} not known",
            r.path.display(),
            r.arch.name(),
            r.threads,
            if r.threads == 1 { "" } else { "s" },
            r.segments,
            size_text(r.size),
            size_text(r.copied.pages),
            size_text(r.copied.file),
            size_text(unknown)
        );
    }
    meter.finish();
    Ok(())
}
