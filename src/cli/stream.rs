//! `crit serve` and `crit capture`: the image streamer for `criu --stream`.

use std::io::{self, IsTerminal, Write};
use std::os::fd::FromRawFd;
use std::path::{Path, PathBuf};

use clap::Args;

use crit::stream::{self, CaptureOptions, Edit, Progress, ServeOptions, Summary};

use super::Failure;

/// Options shared by both sides.
#[derive(Args)]
pub struct Common {
    /// Write progress lines (`socket-init`, ...) to this file descriptor
    /// instead of stdout
    #[arg(long, value_name = "FD")]
    progress_fd: Option<i32>,
    /// Return as soon as the socket listens and go on in the background
    /// (for CRIU's pre-stream action script)
    #[arg(long)]
    detach: bool,
    /// With --detach: where the background process writes its messages
    #[arg(long, value_name = "FILE", requires = "detach")]
    log: Option<PathBuf>,
}

/// `crit serve` arguments.
#[derive(Args)]
pub struct ServeArgs {
    /// The images directory (binary or JSON images); CRIU's -D
    pub dir: PathBuf,
    /// Change a value as the image is served: IMAGE:PATH=JSON, PATH being
    /// dot-separated keys and list indices (repeatable), e.g.
    /// 'core-42.img:entries.0.tc.comm="edited"'
    #[arg(long = "set", value_name = "IMAGE:PATH=JSON")]
    sets: Vec<String>,
    /// Apply a JSON Patch (RFC 6902) file to an image: IMAGE=FILE (repeatable)
    #[arg(long = "patch", value_name = "IMAGE=FILE")]
    patches: Vec<String>,
    /// Serve the images converted to the layout of this CRIU version
    /// (see `crit convert`), e.g. a 4.2 dump to a CRIU 4.1 restore
    #[arg(long = "convert-to", value_name = "X.Y")]
    convert_to: Option<String>,
    #[command(flatten)]
    common: Common,
}

/// `crit capture` arguments.
#[derive(Args)]
pub struct CaptureArgs {
    /// The images directory to write; CRIU's -D
    pub dir: PathBuf,
    /// Write the images as crit JSON (NAME.json); raw images stay binary
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    common: Common,
}

fn fail(e: crit::Error) -> Failure {
    Failure::new(format!("crit: {e}"))
}

fn progress_writer(c: &Common) -> Option<Box<dyn Write + Send>> {
    match c.progress_fd {
        // SAFETY: the caller passed us this descriptor to write to.
        Some(fd) => Some(Box::new(unsafe { std::fs::File::from_raw_fd(fd) })),
        None => Some(Box::new(io::stdout())),
    }
}

/// Fork into the background once the socket listens: the parent returns
/// (exit 0), the child goes on with stdio on /dev/null or the log file.
fn detach(c: &Common) -> Result<bool, Failure> {
    use nix::unistd::{fork, setsid, ForkResult};
    // SAFETY: no other thread runs yet (threads start after accept).
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => Ok(true),
        Ok(ForkResult::Child) => {
            let _ = setsid();
            let null = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null");
            let log = c.log.as_ref().and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok());
            use std::os::fd::AsRawFd;
            // SAFETY: plain dup2 calls on descriptors we hold open.
            unsafe {
                if let Ok(n) = &null {
                    nix::libc::dup2(n.as_raw_fd(), 0);
                }
                let out = log.as_ref().map(|f| f.as_raw_fd()).or(null.as_ref().ok().map(|n| n.as_raw_fd()));
                if let Some(fd) = out {
                    nix::libc::dup2(fd, 1);
                    nix::libc::dup2(fd, 2);
                }
            }
            Ok(false)
        }
        Err(e) => Err(Failure::new(format!("crit: fork: {e}"))),
    }
}

fn report(what: &str, s: &Summary, always: bool) -> Result<(), Failure> {
    let mut problems: Vec<String> = Vec::new();
    for f in &s.files {
        if let Some(p) = &f.problem {
            problems.push(format!("crit: {}: {p}", f.name));
        }
        if f.closed_early {
            eprintln!("crit: note: CRIU closed {} before its end", f.name);
        }
    }
    for r in &s.refused {
        problems.push(format!("crit: refused a request for {r:?}: not a plain file name"));
    }
    if always || io::stderr().is_terminal() {
        let bytes: u64 = s.files.iter().map(|f| f.bytes).sum();
        eprintln!("crit: {what} {} files, {bytes} bytes; {} not found", s.files.len(), s.missing.len());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(problems.join("\n")))
    }
}

/// The images directory by its real path: CRIU's action scripts get it as
/// `/proc/<criu>/fd/<n>`, which stops working when CRIU exits, while files
/// may still be arriving.
fn real_dir(dir: &Path) -> Result<PathBuf, Failure> {
    match std::fs::canonicalize(dir) {
        Ok(p) if p.is_dir() => Ok(p),
        _ => Err(Failure::new(format!("crit: {}: not a directory", dir.display()))),
    }
}

/// Run `crit serve`.
pub fn serve(mut a: ServeArgs) -> Result<(), Failure> {
    a.dir = real_dir(&a.dir)?;
    let mut edits = Vec::new();
    for s in &a.sets {
        edits.push(Edit::parse_set(s).map_err(fail)?);
    }
    for p in &a.patches {
        edits.push(Edit::parse_patch(p).map_err(fail)?);
    }
    let opts = ServeOptions { edits };
    // With --convert-to, the images are converted first into a private
    // directory beside them (unchanged files hard-linked, not copied), and
    // served from there; CRIU still connects in the images directory.
    let converted = match &a.convert_to {
        Some(v) => Some(convert_for_serving(&a.dir, v)?),
        None => None,
    };
    let serve_dir = converted.as_ref().map(|c| c.0.clone()).unwrap_or_else(|| a.dir.clone());
    stream::check_edits(&serve_dir, &opts).map_err(fail)?;
    let (listener, sock) = stream::listen(&a.dir, stream::SERVE_SOCKET).map_err(fail)?;
    Progress::new(progress_writer(&a.common)).line_public("socket-init");
    if a.common.detach && detach(&a.common)? {
        return Ok(());
    }
    let s = stream::serve_on(listener, &sock, &serve_dir, &opts).map_err(fail);
    drop(converted);
    report("served", &s?, a.common.log.is_some())
}

/// A converted copy of the images, removed when dropped.
struct Converted(PathBuf);

impl Drop for Converted {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn convert_for_serving(dir: &Path, version: &str) -> Result<Converted, Failure> {
    use crit::convert::{self, Options, Safety};
    let to = version.parse().map_err(fail)?;
    // Beside the images directory (the same file system, so unchanged
    // images are hard links), else in the temporary directory.
    let name = format!(
        ".crit-serve-{}-{}",
        dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id()
    );
    let beside = dir.parent().map(|p| p.join(&name)).filter(|p| std::fs::create_dir(p).is_ok());
    let out = Converted(beside.unwrap_or_else(|| std::env::temp_dir().join(&name)));
    let _ = std::fs::remove_dir_all(&out.0);
    let r = convert::convert(dir, &out.0, &Options { to, force: false, link: true }).map_err(fail)?;
    for s in &r.steps {
        let tag = if s.safety == Safety::Lossless { "" } else { " (lossy)" };
        eprintln!("crit: convert to {to}: {}: {}: {}{tag}", s.transform, s.image, s.what);
    }
    Ok(out)
}

/// Run `crit capture`.
pub fn capture(mut a: CaptureArgs) -> Result<(), Failure> {
    a.dir = real_dir(&a.dir)?;
    let (listener, sock) = stream::listen(&a.dir, stream::CAPTURE_SOCKET).map_err(fail)?;
    let mut progress = Progress::new(progress_writer(&a.common));
    progress.line_public("socket-init");
    if a.common.detach && detach(&a.common)? {
        return Ok(());
    }
    let s = stream::capture_on(listener, &sock, &a.dir, &CaptureOptions { json: a.json }, progress).map_err(fail)?;
    report("captured", &s, a.common.log.is_some())
}
