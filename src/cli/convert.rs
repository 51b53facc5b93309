//! `crit convert` and `crit info --criu-version`.

use std::path::{Path, PathBuf};

use clap::Args;

use crit::convert::{self, Options, Safety, Version};

use super::Failure;

/// `crit convert` arguments.
#[derive(Args)]
pub struct ConvertArgs {
    /// The CRIU version whose image layout to write (e.g. 4.1, 4.2)
    #[arg(long = "to", value_name = "X.Y")]
    to: String,
    /// Do the steps that are refused by default (each is reported)
    #[arg(long)]
    force: bool,
    /// The checkpoint to read (never modified)
    src: PathBuf,
    /// The directory to write (must not exist, or be empty)
    dst: PathBuf,
}

fn fail(e: crit::Error) -> Failure {
    Failure::new(format!("crit: {e}"))
}

/// Run `crit convert`.
pub fn run(a: ConvertArgs) -> Result<(), Failure> {
    let to: Version = a.to.parse().map_err(fail)?;
    let r = convert::convert(&a.src, &a.dst, &Options { to, force: a.force, link: false }).map_err(fail)?;
    println!(
        "{} (written by CRIU {} or later) -> {} in the CRIU {} layout",
        a.src.display(),
        r.from,
        a.dst.display(),
        r.to
    );
    if r.steps.is_empty() {
        println!("  nothing to change: the images were copied as they are");
    }
    for s in &r.steps {
        let tag = match s.safety {
            Safety::Lossless => "lossless",
            Safety::Lossy => "LOSSY",
            Safety::Refused => "FORCED",
        };
        println!("  [{tag}] {}: {}: {}", s.transform, s.image, s.what);
    }
    Ok(())
}

/// Run `crit info --criu-version DIR`.
pub fn criu_version(dir: &Path) -> Result<(), Failure> {
    let ck = crit::checkpoint::Checkpoint::open(dir).map_err(fail)?;
    let (v, ev) = convert::criu_version_bound(&ck).map_err(fail)?;
    println!("written by CRIU {v} or later");
    for e in ev {
        println!("  >= {}: {}", e.since, e.what);
    }
    Ok(())
}
