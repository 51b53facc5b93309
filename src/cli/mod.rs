//! Command-line parsing and exit-code policy.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crit::error::{Error, ErrorKind};
use crit::output::AtomicFile;
use crit::transcode::{self, DecodeOptions};

mod check;
mod convert;
mod coredump;
mod docs;
mod examples;
mod mem;
mod stream;
mod views;

/// Version text: ours and the CRIU image schema we speak.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (CRIU image schema 4.2)");

#[derive(Parser)]
#[command(name = "crit", version = VERSION, about = "CRiu Image Tool", disable_help_subcommand = true, after_help = examples::CRIT)]
pub(crate) struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One line, numbers as numbers (crit's default).
    Raw,
    /// Indented, with hex, flag names, devices and addresses (crit's --pretty).
    Nice,
}

#[derive(Subcommand)]
enum Cmd {
    /// convert criu image from binary type to json
    #[command(after_help = examples::DECODE)]
    Decode(DecodeArgs),
    /// convert criu image from json type to binary
    #[command(after_help = examples::ENCODE)]
    Encode(EncodeArgs),
    /// show info about image
    #[command(after_help = examples::INFO)]
    Info {
        /// the image (with --criu-version: the checkpoint directory)
        #[arg(value_name = "IN")]
        input: PathBuf,
        /// Tell the oldest CRIU version that could have written the checkpoint IN, and why
        #[arg(long)]
        criu_version: bool,
    },
    /// Print a shell completion script (bash, zsh or fish)
    #[command(after_help = examples::COMPLETIONS)]
    Completions {
        /// the shell
        #[arg(value_enum)]
        shell: docs::Shell,
    },
    /// Print the man page (roff)
    #[command(after_help = examples::MAN)]
    Man,
    /// Convert a checkpoint to the image layout of another CRIU version
    #[command(after_help = examples::CONVERT)]
    Convert(convert::ConvertArgs),
    /// Check a checkpoint: every image present, decodable and consistent (exit 1 on errors)
    #[command(after_help = examples::CHECK)]
    Check(check::CheckArgs),
    /// explore image dir
    #[command(after_help = examples::X)]
    X {
        /// the checkpoint directory
        dir: PathBuf,
        /// what to show
        #[arg(value_enum)]
        what: View,
        /// print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// show statistics of a checkpoint (a directory or a container checkpoint archive)
    #[command(after_help = examples::STATS)]
    Stats {
        /// the checkpoint directory or archive (.tar, .tar.gz, .tar.zst)
        dir: PathBuf,
        /// print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Serve images to `criu restore --stream`, converting JSON and applying edits on the fly
    #[command(after_help = examples::SERVE)]
    Serve(stream::ServeArgs),
    /// Receive images from `criu dump --stream`, as binary or JSON
    #[command(after_help = examples::CAPTURE)]
    Capture(stream::CaptureArgs),
    /// A dumped process's memory: mappings, bytes, search, extraction
    #[command(after_help = examples::MEM)]
    Mem(mem::MemArgs),
    /// Write an ELF core file of each process, for gdb
    #[command(after_help = examples::CORE)]
    Core(coredump::CoreArgs),
    /// convert criu image from binary to human-readable json
    #[command(after_help = examples::SHOW)]
    Show {
        /// the image
        #[arg(value_name = "IN")]
        input: PathBuf,
        /// do not show entry payload (if exists)
        #[arg(long)]
        nopl: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum View {
    /// the process tree
    Ps,
    /// open files of every process
    Fds,
    /// memory mappings of every process
    Mems,
    /// dumped pages against the mappings
    Rss,
    /// every socket: family, type, state, addresses, queued bytes, owners
    Sk,
    /// process tree with threads, state, credentials, command line and environment
    Tree,
    /// mount tree of each mount namespace
    Mounts,
    /// every open file: type, path, flags, position, owners
    Files,
}

#[derive(Args)]
struct DecodeArgs {
    /// criu image in binary format to be decoded (stdin by default)
    #[arg(short = 'i', long = "in", value_name = "IN")]
    input: Option<PathBuf>,
    /// where to put criu image in json format (stdout by default)
    #[arg(short = 'o', long = "out", value_name = "OUT")]
    output: Option<PathBuf>,
    /// Multiline with indents and some numerical fields in field-specific format
    #[arg(long)]
    pretty: bool,
    /// JSON format: raw by default for files and pipes, nice on a terminal
    #[arg(short = 'f', long = "format", value_enum)]
    format: Option<Format>,
}

#[derive(Args)]
struct EncodeArgs {
    /// criu image in json format to be encoded (stdin by default)
    #[arg(short = 'i', long = "in", value_name = "IN")]
    input: Option<PathBuf>,
    /// where to put criu image in binary format (stdout by default)
    #[arg(short = 'o', long = "out", value_name = "OUT")]
    output: Option<PathBuf>,
}

/// A failure of a command: the message is printed as is.
pub struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    pub(crate) fn new(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), code: 1 }
    }
}

fn describe(e: &Error, path: Option<&Path>) -> Failure {
    match &e.kind {
        // crit's own texts, so that scripts matching them keep working.
        ErrorKind::UnknownMagic(m) => Failure::new(format!(
            "Unknown magic {}.\nMaybe you are feeding me an image with raw data(i.e. pages.img)?",
            crit::error::py_hex(*m as i64)
        )),
        ErrorKind::NotJson => Failure::new(
            "Cannot read JSON.\nMaybe you are feeding me an image with protobuf data? Encode expects JSON input.",
        ),
        _ => {
            let mut e2 = Error { kind: ErrorKind::Other(e.kind.to_string()), loc: e.loc.clone() };
            if let Some(p) = path {
                e2 = e2.in_file(p);
            }
            Failure::new(format!("crit: {e2}"))
        }
    }
}

fn open_input(path: Option<&Path>) -> Result<Box<dyn Read>, Failure> {
    match path {
        Some(p) => File::open(p)
            .map(|f| Box::new(BufReader::with_capacity(1 << 16, f)) as Box<dyn Read>)
            .map_err(|e| Failure::new(format!("crit: {}: {e}", p.display()))),
        None => Ok(Box::new(io::stdin().lock())),
    }
}

/// Run `f` writing to OUT (atomically) or to stdout; `newline` adds the
/// trailing newline crit writes on stdout only.
fn with_output(
    out: Option<&Path>,
    input: Option<&Path>,
    newline: bool,
    f: impl FnOnce(&mut dyn Write) -> crit::Result<()>,
) -> Result<(), Failure> {
    match out {
        Some(p) => {
            let mut file = AtomicFile::create(p).map_err(|e| Failure::new(format!("crit: {}: {e}", p.display())))?;
            f(&mut file).map_err(|e| describe(&e, input))?;
            file.commit().map_err(|e| Failure::new(format!("crit: {}: {e}", p.display())))
        }
        None => {
            let stdout = io::stdout();
            let mut w = BufWriter::with_capacity(1 << 16, stdout.lock());
            let r = f(&mut w).and_then(|_| {
                if newline {
                    w.write_all(b"\n")?;
                }
                w.flush()?;
                Ok(())
            });
            match r {
                Err(e) if e.is_broken_pipe() => Ok(()),
                Err(e) => {
                    let _ = w.flush();
                    Err(describe(&e, input))
                }
                Ok(()) => Ok(()),
            }
        }
    }
}

fn decode_cmd(input: Option<&Path>, output: Option<&Path>, opts: DecodeOptions) -> Result<(), Failure> {
    // Nothing is written before the magic is known to be good (as crit):
    // `decode` reads the magic before its first write.
    let rd = open_input(input)?;
    with_output(output, input, output.is_none(), |w| transcode::decode(rd, w, opts).map(|_| ()))
}

fn run(cli: Cli) -> Result<(), Failure> {
    let Some(cmd) = cli.cmd else {
        return Err(Failure {
            message: "usage: crit [-h] [--version] {decode,encode,info,x,show} ...\ncrit: error: too few arguments"
                .into(),
            code: 1,
        });
    };
    match cmd {
        Cmd::Decode(a) => {
            let nice = match (a.format, a.pretty) {
                (Some(Format::Nice), _) | (None, true) => true,
                (Some(Format::Raw), _) => false,
                (None, false) => a.output.is_none() && io::stdout().is_terminal(),
            };
            decode_cmd(a.input.as_deref(), a.output.as_deref(), DecodeOptions { nice, no_payload: false })
        }
        Cmd::Show { input, nopl } => decode_cmd(Some(&input), None, DecodeOptions { nice: true, no_payload: nopl }),
        Cmd::Encode(a) => {
            let rd = open_input(a.input.as_deref())?;
            with_output(a.output.as_deref(), a.input.as_deref(), false, |w| transcode::encode(rd, w).map(|_| ()))
        }
        Cmd::X { dir, what, json } => views::run(&dir, |ck, w, notes| match what {
            View::Ps if json => crit::views::ps_json(ck, w, notes),
            View::Fds if json => crit::views::fds_json(ck, w, notes),
            View::Mems if json => crit::views::mems_json(ck, w, notes),
            View::Rss if json => crit::views::rss_json(ck, w, notes),
            View::Ps => crit::explore::ps(ck, w, notes),
            View::Fds => crit::explore::fds(ck, w, notes),
            View::Mems => crit::explore::mems(ck, w, notes),
            View::Rss => crit::explore::rss(ck, w, notes),
            View::Sk => crit::views::sk(ck, w, notes, json),
            View::Tree => crit::views::tree(ck, w, notes, json),
            View::Mounts => crit::views::mounts(ck, w, notes, json),
            View::Files => crit::views::files(ck, w, notes, json),
        }),
        Cmd::Stats { dir, json } => views::run(&dir, |ck, w, notes| crit::stats::stats(ck, w, notes, json)),
        Cmd::Serve(a) => stream::serve(a),
        Cmd::Capture(a) => stream::capture(a),
        Cmd::Check(a) => check::run(a),
        Cmd::Mem(a) => mem::run(a),
        Cmd::Core(a) => coredump::run(a),
        Cmd::Convert(a) => convert::run(a),
        Cmd::Completions { shell } => docs::completions(shell),
        Cmd::Man => docs::man(),
        Cmd::Info { input, criu_version: true } => convert::criu_version(&input),
        Cmd::Info { input, criu_version: false } => {
            let rd = open_input(Some(&input))?;
            let (kind, n) = transcode::info(rd).map_err(|e| describe(&e, Some(&input)))?;
            print!("{}", transcode::info_json(kind, n));
            Ok(())
        }
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("crit: internal error: {info}");
    }));
    let cli = Cli::parse();
    // Progress lines on stderr, where it is a terminal (crit::progress).
    crit::progress::enable(true);
    // Like other command-line tools, end quietly when the reader of our
    // output goes away (`crit x DIR ps | head`).  The streamer keeps
    // SIGPIPE ignored: CRIU closing one of its pipes early is not fatal.
    if !matches!(cli.cmd, Some(Cmd::Serve(_)) | Some(Cmd::Capture(_))) {
        // SAFETY: setting a signal disposition to its default at start-up.
        unsafe {
            nix::libc::signal(nix::libc::SIGPIPE, nix::libc::SIG_DFL);
        }
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("{}", f.message);
            ExitCode::from(f.code)
        }
    }
}
