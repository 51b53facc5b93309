//! `crit completions SHELL` and `crit man`: generated from the same clap
//! definitions as `--help`, so they cannot drift from it.

use std::io::{self, Write};

use clap::{CommandFactory, ValueEnum};

use super::{Cli, Failure};

/// The shells we write completion scripts for.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// bash
    Bash,
    /// zsh
    Zsh,
    /// fish
    Fish,
}

/// Print the completion script for `shell`.
pub fn completions(shell: Shell) -> Result<(), Failure> {
    let mut cmd = Cli::command();
    let mut out = io::stdout().lock();
    let sh = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(sh, &mut cmd, "crit", &mut out);
    out.flush().map_err(|e| Failure::new(format!("crit: {e}")))
}

/// Print the roff man page: crit(1) with every subcommand in it.
pub fn man() -> Result<(), Failure> {
    let cmd = Cli::command();
    let mut buf: Vec<u8> = Vec::new();
    let m = clap_mangen::Man::new(cmd.clone());
    m.render_title(&mut buf).map_err(io_fail)?;
    m.render_name_section(&mut buf).map_err(io_fail)?;
    m.render_synopsis_section(&mut buf).map_err(io_fail)?;
    m.render_description_section(&mut buf).map_err(io_fail)?;
    m.render_options_section(&mut buf).map_err(io_fail)?;
    if let Some(examples) = cmd.get_after_help() {
        buf.extend_from_slice(roff_examples(&examples.to_string()).as_bytes());
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name().to_string();
        buf.extend_from_slice(format!(".SH \"CRIT {}\"\n", name.to_uppercase()).as_bytes());
        let sm = clap_mangen::Man::new(sub.clone().name(format!("crit {name}")));
        sm.render_synopsis_section(&mut buf).map_err(io_fail)?;
        sm.render_description_section(&mut buf).map_err(io_fail)?;
        sm.render_options_section(&mut buf).map_err(io_fail)?;
        if let Some(examples) = sub.get_after_help() {
            buf.extend_from_slice(roff_examples(&examples.to_string()).as_bytes());
        }
    }
    m.render_version_section(&mut buf).map_err(io_fail)?;
    let mut out = io::stdout().lock();
    out.write_all(&buf).and_then(|_| out.flush()).map_err(io_fail)
}

/// The `Examples:` text of `--help` as a man page subsection, lines kept
/// as they are (`.nf`), roff's special characters escaped.
fn roff_examples(text: &str) -> String {
    let mut out = String::from(".SS EXAMPLES\n.nf\n");
    for line in text.lines().skip_while(|l| l.trim_end().ends_with(':')) {
        let line = line.replace('\\', "\\e").replace('-', "\\-");
        if line.starts_with('.') || line.starts_with('\'') {
            out.push_str("\\&");
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(".fi\n");
    out
}

fn io_fail(e: io::Error) -> Failure {
    Failure::new(format!("crit: {e}"))
}
