//! The documentation cannot drift from the program:
//!
//! - `--help` of `crit` and of every subcommand against goldens in
//!   `tests/golden/help/` (`CRIT_BLESS=1 cargo test` rewrites them);
//! - every subcommand, argument, flag and value has help text, and every
//!   subcommand an `Examples:` section;
//! - `--version` names the CRIU schema version;
//! - colour only on a terminal and never with `NO_COLOR`; the progress line
//!   only on a terminal;
//! - the programs in `examples/` run on bundled dumps and agree with the
//!   binary;
//! - every `<!-- crit-example: crit ... -->` block of README.md is what the
//!   binary prints.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::*;

/// Help as a person without a terminal sees it: 100 columns, no colour.
fn help_of(args: &[&str]) -> String {
    let o = Command::new(crit_bin()).args(args).env("COLUMNS", "100").env_remove("NO_COLOR").output().unwrap();
    assert!(o.status.success(), "crit {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stderr.is_empty(), "crit {args:?} wrote to stderr: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// One entry of a help section: `Commands:`, `Arguments:`, `Options:`.
#[derive(Debug)]
struct Entry {
    section: String,
    /// `decode`, `<DIR>`, `-i, --in <IN>`.
    spec: String,
    /// Everything after the spec: on its line and the indented lines below.
    text: Vec<String>,
}

/// The sections of a help text (clap's layout: a heading at column 0 ending
/// in `:`, entries indented by 2, their continuation lines by more).
fn sections(help: &str) -> (Vec<Entry>, Vec<String>) {
    let mut entries: Vec<Entry> = Vec::new();
    let mut headings = Vec::new();
    let mut section = String::new();
    for line in help.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if indent == 0 {
            if let Some(h) = line.strip_suffix(':') {
                section = h.to_string();
                headings.push(section.clone());
            } else {
                section.clear();
            }
            continue;
        }
        if !matches!(section.as_str(), "Commands" | "Arguments" | "Options") {
            continue;
        }
        let body = line.trim_start();
        // Entries start at column 2 (`-i, --in`, `<DIR>`, `decode`) or 6
        // (long-only options, `      --json`); their help continues
        // further right.
        if indent == 2 || (indent == 6 && body.starts_with("--")) {
            let (spec, rest) = match body.find("  ") {
                Some(i) => (&body[..i], body[i..].trim()),
                None => (body, ""),
            };
            let text = if rest.is_empty() { vec![] } else { vec![rest.to_string()] };
            entries.push(Entry { section: section.clone(), spec: spec.to_string(), text });
        } else if let Some(e) = entries.last_mut() {
            e.text.push(body.to_string());
        }
    }
    (entries, headings)
}

/// The subcommands a help text lists.
fn subcommands(help: &str) -> Vec<String> {
    sections(help).0.into_iter().filter(|e| e.section == "Commands").map(|e| e.spec).collect()
}

/// Every command path: `[]`, `["decode"]`, ... (nested ones too).
fn command_paths() -> Vec<Vec<String>> {
    let mut all = vec![];
    let mut todo = vec![Vec::<String>::new()];
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        for sub in subcommands(&help_of(&args)) {
            let mut p = path.clone();
            p.push(sub);
            todo.push(p);
        }
        all.push(path);
    }
    all.sort();
    all
}

fn golden_name(path: &[String]) -> String {
    std::iter::once("crit").chain(path.iter().map(String::as_str)).collect::<Vec<_>>().join("-") + ".txt"
}

#[test]
fn help_goldens() {
    let dir = root().join("tests/golden/help");
    let mut failures = Vec::new();
    let paths = command_paths();
    assert!(paths.len() >= 15, "only {} commands found: {paths:?}", paths.len());
    let mut names = BTreeSet::new();
    for path in &paths {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let name = golden_name(path);
        crate::views::golden(&dir.join(&name), &help_of(&args), &mut failures);
        names.insert(name);
    }
    // No golden of a command that is gone.
    if std::env::var_os("CRIT_BLESS").is_none() {
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().file_name().to_string_lossy().into_owned();
            if !names.contains(&f) {
                failures.push(format!("tests/golden/help/{f}: no such command any more"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The help of an entry with what clap adds itself taken out:
/// `[default: ..]`, `[possible values: ..]` and the `Possible values:` list.
fn own_text(e: &Entry) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut values = Vec::new();
    let mut in_values = false;
    for t in &e.text {
        if t == "Possible values:" {
            in_values = true;
        } else if in_values && t.starts_with("- ") {
            values.push(t.clone());
        } else {
            in_values = false;
            text.push_str(t);
            text.push(' ');
        }
    }
    let bracket = regex::Regex::new(r"\[(default|possible values|aliases?): [^\]]*\]").unwrap();
    (bracket.replace_all(&text, "").trim().to_string(), values)
}

#[test]
fn every_command_argument_flag_and_value_has_help() {
    let mut missing = Vec::new();
    let mut seen = 0;
    for path in command_paths() {
        let cmd = format!("crit {}", path.join(" "));
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = help_of(&args);
        // The first line is the command's own description.
        if help.lines().next().is_none_or(|l| l.trim().is_empty() || l.starts_with("Usage:")) {
            missing.push(format!("{cmd}: no description"));
        }
        let (entries, headings) = sections(&help);
        for e in &entries {
            seen += 1;
            let (text, values) = own_text(e);
            if text.is_empty() {
                missing.push(format!("{cmd}: {} {}: no help text", e.section, e.spec));
            }
            for v in values {
                // `- name: what it is`
                if v.split_once(": ").is_none_or(|(_, t)| t.trim().is_empty()) {
                    missing.push(format!("{cmd}: {}: value {v:?} has no help text", e.spec));
                }
            }
        }
        if !path.is_empty() {
            let sub = &path[path.len() - 1];
            let examples: Vec<&str> =
                help.split("\nExamples:\n").nth(1).map(|s| s.lines().map(str::trim).collect()).unwrap_or_default();
            if !headings.iter().any(|h| h == "Examples")
                || !examples.iter().any(|l| l.starts_with(&format!("crit {sub} ")) || *l == format!("crit {sub}"))
            {
                missing.push(format!("{cmd}: no `Examples:` section with a `crit {sub} ...` line"));
            }
        }
    }
    assert!(seen > 60, "the help parser found only {seen} entries: it no longer understands clap's layout");
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// The parser above does see a missing help text (it would be useless if
/// it accepted anything).
#[test]
fn help_parser_sees_what_is_missing() {
    let help = "About\n\nUsage: crit x\n\nArguments:\n  <DIR>\n  <WHAT>\n          what\n\n          Possible values:\n          - ps\n          - fds: files\n\nOptions:\n      --json  [default: false]\n  -h, --help  Print help\n";
    let (entries, _) = sections(help);
    let specs: Vec<(&str, String)> = entries.iter().map(|e| (e.spec.as_str(), own_text(e).0)).collect();
    assert_eq!(
        specs,
        [
            ("<DIR>", String::new()),
            ("<WHAT>", "what".into()),
            ("--json", String::new()),
            ("-h, --help", "Print help".into())
        ]
    );
    assert_eq!(own_text(&entries[1]).1, ["- ps", "- fds: files"]);
}

#[test]
fn version_names_the_schema() {
    let v = help_of(&["--version"]);
    assert_eq!(
        v,
        format!("crit {} (CRIU image schema {})\n", env!("CARGO_PKG_VERSION"), crit::convert::Version::LATEST)
    );
}

/// Run `crit ARGS` under a pseudo-terminal (util-linux `script`), with
/// the environment given; None where `script` is missing.
fn on_terminal(args: &[&str], env: &[(&str, &str)]) -> Option<Vec<u8>> {
    let line: Vec<String> = std::iter::once(crit_bin().display().to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let mut c = Command::new("script");
    // A terminal that has colours (clap asks TERM too), whatever CI sets.
    c.args(["-qec", &line.join(" "), "/dev/null"]).env_remove("NO_COLOR").env("TERM", "xterm").stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    match c.output() {
        Ok(o) if o.status.success() => Some(o.stdout),
        Ok(o) => {
            panic!("script {line:?}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
        }
        Err(e) => {
            eprintln!("SKIP: no `script` to make a terminal: {e}");
            None
        }
    }
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let esc = |b: &[u8]| b.contains(&0x1b);
    // Piped: never.
    let o = Command::new(crit_bin()).args(["x", "--bogus"]).env_remove("NO_COLOR").output().unwrap();
    assert!(!esc(&o.stderr) && !esc(&help_of(&["x", "--help"]).into_bytes()));
    let Some(tty) = on_terminal(&["x", "--help"], &[]) else {
        return;
    };
    assert!(esc(&tty), "no colour in help on a terminal: clap's styling is gone?");
    let Some(tty) = on_terminal(&["x", "--help"], &[("NO_COLOR", "1")]) else {
        return;
    };
    assert!(!esc(&tty), "colour with NO_COLOR: {}", String::from_utf8_lossy(&tty));
    // Our own output has no colour, terminal or not.
    let pipes = root().join("tests/fixtures/criu41-pipes");
    for args in [&["x", pipes.to_str().unwrap(), "files"][..], &["stats", pipes.to_str().unwrap()]] {
        let Some(tty) = on_terminal(args, &[]) else { return };
        assert!(!esc(&tty), "crit {args:?} printed escapes on a terminal");
    }
}

#[test]
fn progress_line_only_on_a_terminal() {
    let src = root().join("tests/fixtures/criu42-tcp");
    let n = std::fs::read_dir(&src).unwrap().filter(|e| e.as_ref().unwrap().path().is_file()).count();
    let tmp = TempDir::new("progress");
    // Not a terminal: stderr stays empty.
    let piped = tmp.path().join("piped");
    let o = crit(&["convert", "--to", "4.1", src.to_str().unwrap(), piped.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stderr.is_empty(), "progress without a terminal: {:?}", String::from_utf8_lossy(&o.stderr));
    // A terminal: the line is drawn (the first file is drawn at once) and
    // erased before the report.
    let tty = tmp.path().join("tty");
    let Some(out) = on_terminal(&["convert", "--to", "4.1", src.to_str().unwrap(), tty.to_str().unwrap()], &[]) else {
        return;
    };
    let out = String::from_utf8_lossy(&out).into_owned();
    let re = regex::Regex::new(&format!(r"\rcrit: convert: \d+/{n} files, [0-9.]+ (B|KiB|MiB)")).unwrap();
    assert!(re.is_match(&out), "no progress line in {out:?}");
    let report = out.find(&format!("{} (written by CRIU", src.display())).expect("the report");
    let erased = out[..report].rfind('\r').map(|i| out[..i].ends_with(' ')).unwrap_or(false);
    assert!(erased, "the progress line is not erased before the report: {out:?}");
}

// ---------------------------------------------------------------------------
// examples/

#[allow(dead_code)]
#[path = "../../examples/process_tree.rs"]
mod process_tree;
#[allow(dead_code)]
#[path = "../../examples/read_memory.rs"]
mod read_memory;
#[allow(dead_code)]
#[path = "../../examples/rename_file.rs"]
mod rename_file;

/// The examples this file runs (each `examples/NAME.rs` must be here).
const EXAMPLES: &[&str] = &["process_tree", "read_memory", "rename_file"];

/// The `run` function of an example: arguments, stdout.
type ExampleRun = fn(&[String], &mut dyn std::io::Write) -> Result<(), Box<dyn std::error::Error>>;

fn run_example(f: ExampleRun, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let mut out = Vec::new();
    f(&args, &mut out).unwrap_or_else(|e| panic!("example {args:?}: {e}"));
    String::from_utf8(out).unwrap()
}

#[test]
fn every_example_is_run_here() {
    let have: BTreeSet<String> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let run: BTreeSet<String> = EXAMPLES.iter().map(|s| s.to_string()).collect();
    assert_eq!(have, run, "examples/ and the examples tests/integration/docs.rs runs differ");
}

/// The example binaries `cargo test` built, when they are up to date: run
/// them as a user would, and compare with the same code run in process.
fn check_built_example(name: &str, args: &[&str], expect: &str) {
    let exe = std::env::current_exe().unwrap();
    let Some(bin) = exe.parent().and_then(Path::parent).map(|d| d.join("examples").join(name)) else {
        return;
    };
    let src = root().join("examples").join(format!("{name}.rs"));
    let fresh = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (fresh(&bin), fresh(&src)) {
        (Some(b), Some(s)) if b >= s => {
            let o = Command::new(&bin).args(args).current_dir(root()).output().unwrap();
            assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
            assert_eq!(String::from_utf8_lossy(&o.stdout), expect, "{name} {args:?}");
        }
        _ => eprintln!("note: examples/{name} not built or older than its source: run in process only"),
    }
}

/// `process_tree` against `crit x DIR ps` (a separate implementation) and
/// `crit x DIR tree` (which tells the dead), on every dump.
#[test]
fn example_process_tree() {
    let pid_re = regex::Regex::new(r"(\d+) \S+ \(dead").unwrap();
    for dir in fixtures() {
        let d = dir.to_str().unwrap();
        let got = run_example(process_tree::run, &[d]);
        let ps = String::from_utf8(crit(&["x", d, "ps"]).stdout).unwrap();
        let mut lines = ps.lines();
        let head = lines.next().unwrap();
        let col = head.find("COMM").unwrap();
        let dead: BTreeSet<String> = pid_re
            .captures_iter(&String::from_utf8(crit(&["x", d, "tree"]).stdout).unwrap())
            .map(|c| c[1].to_string())
            .collect();
        let expect: Vec<(usize, String, String, bool)> = lines
            .map(|l| {
                let depth = (l.len() - l[col..].trim_start().len() - col) / 4;
                let f: Vec<&str> = l.split_whitespace().collect();
                (depth, f[0].to_string(), f[3..].join(" "), dead.contains(f[0]))
            })
            .collect();
        let ours: Vec<(usize, String, String, bool)> = got
            .lines()
            .map(|l| {
                let depth = (l.len() - l.trim_start().len()) / 2;
                let (pid, rest) = l.trim_start().split_once(' ').unwrap();
                let rest = rest.split(", ").next().unwrap();
                let zombie = rest.ends_with(" (zombie)");
                (depth, pid.to_string(), rest.trim_end_matches(" (zombie)").to_string(), zombie)
            })
            .collect();
        assert_eq!(ours, expect, "{d}:\n{got}");
        if dir.ends_with("criu41-tree") {
            assert!(got.contains("  681 fx-z (zombie)\n"), "{got}");
            check_built_example("process_tree", &[d], &got);
        }
        if dir.ends_with("criu41-threads") {
            assert!(got.contains(", 5 threads\n"), "{got}");
        }
    }
}

/// `rename_file`: the path changes where it was, and only there; any other
/// image (payloads included) is copied byte for byte.
#[test]
fn example_rename_file() {
    let tmp = TempDir::new("rename");
    let src = root().join("tests/fixtures/criu41-pipes/files.img");
    let (old, new) = ("/tmp/crit-fixtures/criu41-pipes/fifo1", "/srv/renamed fifo");
    let out = tmp.path().join("files.img");
    let args = [src.to_str().unwrap(), out.to_str().unwrap(), old, new];
    let said = run_example(rename_file::run, &args);
    let before = String::from_utf8(decode_bytes(&std::fs::read(&src).unwrap(), false, false).unwrap()).unwrap();
    let after = String::from_utf8(decode_bytes(&std::fs::read(&out).unwrap(), false, false).unwrap()).unwrap();
    let (o, n) = (format!("\"name\": \"{old}\""), format!("\"name\": \"{new}\""));
    let count = before.matches(&o).count();
    assert!(count > 0, "the fixture has regular-file entries for the fifo");
    assert_eq!(said, format!("{count} entries renamed\n"));
    assert_eq!(after, before.replace(&o, &n));
    // In place (IN = OUT): the atomic output reads back the same.
    let again = [out.to_str().unwrap(), out.to_str().unwrap(), new, old];
    assert_eq!(run_example(rename_file::run, &again), said);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&src).unwrap());
    check_built_example(
        "rename_file",
        &[src.to_str().unwrap(), tmp.path().join("b.img").to_str().unwrap(), old, new],
        &said,
    );
    // Every other image, with its payloads, unchanged.
    for dir in ["criu41-pipes", "criu41-ipc", "criu41-ghost", "criu42-tcp"] {
        for img in images(&root().join("tests/fixtures").join(dir)).into_iter().filter(|p| !is_raw_image(p)) {
            let copy = tmp.path().join("copy.img");
            let r = rename_file::rename(&img, &copy, "/nothing/here", "x");
            match r {
                Ok(0) => assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&img).unwrap(), "{}", img.display()),
                Ok(n) => panic!("{}: {n} renames of a path that is not there", img.display()),
                // Images the codec does not stream (stats-dump has no
                // entry framing crit knows, ...) are refused the same way
                // by `crit decode`.
                Err(e) => {
                    assert!(!crit(&["decode", "-i", img.to_str().unwrap()]).status.success(), "{}: {e}", img.display())
                }
            }
        }
    }
}

/// `read_memory` against `crit mem --addr`, at the heap marker that
/// `crit mem --search` finds.
#[test]
fn example_read_memory() {
    let dir = root().join("tests/fixtures/core-threads/images");
    let d = dir.to_str().unwrap();
    let pid = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.strip_prefix("mm-")?.strip_suffix(".img").map(String::from))
        .next()
        .unwrap();
    let found = crit(&["mem", d, &pid, "--search", "crit-heap-marker"]);
    assert!(found.status.success());
    let addr = format!("0x{}", String::from_utf8(found.stdout).unwrap().split_whitespace().next().unwrap());
    let (bytes, pieces) =
        read_memory::read(d, pid.parse().unwrap(), u64::from_str_radix(&addr[2..], 16).unwrap()).unwrap();
    assert_eq!(bytes.len(), 4096);
    assert!(bytes.starts_with(b"crit-heap-marker: the quick brown fox jumps over the lazy dog\0"));
    let cli = crit(&["mem", d, &pid, "--addr", &addr, "--len", "4096"]);
    assert!(cli.status.success());
    assert_eq!(bytes, cli.stdout);
    // The pieces cover the 4 KiB exactly, in order.
    assert_eq!(pieces.first().unwrap().addr, u64::from_str_radix(&addr[2..], 16).unwrap());
    assert!(pieces.windows(2).all(|w| w[0].end() == w[1].addr));
    assert_eq!(pieces.last().unwrap().end() - pieces[0].addr, 4096);
    let text = run_example(read_memory::run, &[d, &pid, &addr]);
    assert!(text.starts_with(&format!("process {pid}, 4096 bytes at {addr}:\n  {addr}-")), "{text}");
    assert!(text.contains("|crit-heap-marker|\n"), "{text}");
    check_built_example("read_memory", &[d, &pid, &addr], &text);
    // Memory CRIU never dumps is said to be unknown.
    let vvar = crit(&["mem", d, &pid, "--kind", "special"]);
    let vvar = String::from_utf8(vvar.stdout).unwrap();
    let start = vvar.lines().find(|l| l.ends_with("[vvar]")).unwrap().split('-').next().unwrap().to_string();
    let text = run_example(read_memory::run, &[d, &pid, &format!("0x{start}")]);
    assert!(text.contains("unknown: never dumped"), "{text}");
}

// ---------------------------------------------------------------------------
// README.md

/// One `<!-- crit-example: crit ARGS [| head -n N] [&& crit ...] -->` and
/// the ```text block after it (`$ crit ARGS`, then what it prints).
struct ReadmeExample {
    line: usize,
    command: String,
    expect: String,
}

fn readme_examples(readme: &str) -> Vec<ReadmeExample> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if let Some(cmd) = lines[i].trim().strip_prefix("<!-- crit-example:").and_then(|c| c.strip_suffix("-->")) {
            let mut j = i + 1;
            while j < lines.len() && lines[j].trim().is_empty() {
                j += 1;
            }
            assert_eq!(
                lines.get(j).copied(),
                Some("```text"),
                "README.md:{}: a crit-example must be followed by a ```text block",
                i + 1
            );
            let end = (j + 1..lines.len())
                .find(|&k| lines[k] == "```")
                .unwrap_or_else(|| panic!("README.md:{}: unclosed block", j + 1));
            let expect: String = lines[j + 1..end].iter().map(|l| format!("{l}\n")).collect();
            out.push(ReadmeExample { line: i + 1, command: cmd.trim().to_string(), expect });
            i = end;
        }
        i += 1;
    }
    out
}

/// Split a command line as a POSIX shell does for plain words, '...' and "...".
fn shell_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur: Option<String> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => words.extend(cur.take()),
            '\'' => cur.get_or_insert_with(String::new).extend(chars.by_ref().take_while(|&c| c != '\'')),
            '"' => cur.get_or_insert_with(String::new).extend(chars.by_ref().take_while(|&c| c != '"')),
            c => cur.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(cur);
    words
}

/// Where README commands write: replaced by a scratch directory.
const README_SCRATCH: &str = "/tmp/crit-readme";

/// Run a README command: `crit ARGS`, optionally `| head -n N`, and
/// several of them joined by `&&`; each as `$ COMMAND` and its output, as
/// on a terminal.
fn run_readme_command(line: &str, scratch: &Path) -> String {
    let scratch_s = scratch.display().to_string();
    let mut all = String::new();
    for cmd in line.split(" && ") {
        all.push_str(&format!("$ {cmd}\n"));
        let (cmd, head) = match cmd.split_once(" | head -n ") {
            Some((c, n)) => (c, Some(n.trim().parse::<usize>().expect("head -n N"))),
            None => (cmd, None),
        };
        let words = shell_words(cmd);
        assert_eq!(words.first().map(String::as_str), Some("crit"), "{cmd}: README examples run crit");
        let args: Vec<String> = words[1..].iter().map(|w| w.replace(README_SCRATCH, &scratch_s)).collect();
        let o = Command::new(crit_bin()).args(&args).current_dir(root()).env("COLUMNS", "100").output().unwrap();
        assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8(o.stdout).unwrap().replace(&scratch_s, README_SCRATCH);
        match head {
            Some(n) => all.extend(out.lines().take(n).map(|l| format!("{l}\n"))),
            None => all.push_str(&out),
        }
    }
    all
}

#[test]
fn readme_examples_are_what_crit_prints() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let examples = readme_examples(&readme);
    assert!(examples.len() >= 15, "README.md has only {} checked examples", examples.len());
    // One scratch directory for the whole README, in order: a command may
    // read what an earlier one wrote.
    let tmp = TempDir::new("readme");
    let mut failures = Vec::new();
    let mut blessed = readme.clone();
    let mut cursor = 0;
    for ex in &examples {
        let got = run_readme_command(&ex.command, tmp.path());
        if std::env::var_os("CRIT_BLESS").is_some() {
            let marker = format!("<!-- crit-example: {} -->", ex.command);
            let at = cursor + blessed[cursor..].find(&marker).unwrap();
            let open = at + blessed[at..].find("```text\n").unwrap() + "```text\n".len();
            let close = if blessed[open..].starts_with("```") {
                open
            } else {
                open + blessed[open..].find("\n```").unwrap() + 1
            };
            blessed.replace_range(open..close, &got);
            cursor = open + got.len();
            continue;
        }
        if got != ex.expect {
            let n = got
                .lines()
                .zip(ex.expect.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(got.lines().count().min(ex.expect.lines().count()));
            failures.push(format!(
                "README.md:{}: `{}` prints something else from line {}:\n  crit:   {:?}\n  README: {:?}",
                ex.line,
                ex.command,
                n + 1,
                got.lines().nth(n).unwrap_or("<end>"),
                ex.expect.lines().nth(n).unwrap_or("<end>")
            ));
        }
    }
    if std::env::var_os("CRIT_BLESS").is_some() {
        std::fs::write(root().join("README.md"), &blessed).unwrap();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The tour shows every command.
    for path in command_paths().into_iter().filter(|p| p.len() == 1) {
        assert!(readme.contains(&format!("crit {}", path[0])), "README.md does not show `crit {}`", path[0]);
    }
    // The two commands of a fresh machine.
    assert!(readme.contains("\ncargo run --release -- show tests/fixtures/criu41-pipes/pipes-data.img\n"));
    assert!(readme.contains("\ncargo test\n"));
}

#[test]
fn readme_parsing() {
    let r = "x\n<!-- crit-example: crit info 'a b' | head -n 2 -->\n\n```text\n1\n2\n```\n";
    let ex = readme_examples(r);
    assert_eq!(ex.len(), 1);
    assert_eq!(
        (ex[0].line, ex[0].command.as_str(), ex[0].expect.as_str()),
        (2, "crit info 'a b' | head -n 2", "1\n2\n")
    );
    assert_eq!(
        shell_words(r#"crit serve D --set 'core-1.img:a.b="x y"' "c d"e"#),
        ["crit", "serve", "D", "--set", r#"core-1.img:a.b="x y""#, "c de"]
    );
}

// ---------------------------------------------------------------------------
// crit completions, crit man

/// Every subcommand with its long flags, from `--help`.
fn commands_and_flags() -> Vec<(String, Vec<String>)> {
    let re = regex::Regex::new(r"--[a-z][a-z0-9-]*").unwrap();
    command_paths()
        .into_iter()
        .filter(|p| p.len() == 1)
        .map(|p| {
            let help = help_of(&[&p[0], "--help"]);
            let flags = sections(&help)
                .0
                .iter()
                .filter(|e| e.section == "Options")
                .filter_map(|e| re.find(&e.spec).map(|m| m.as_str().to_string()))
                .collect();
            (p[0].clone(), flags)
        })
        .collect()
}

#[test]
fn completions_know_every_command_and_flag() {
    let all = commands_and_flags();
    for shell in ["bash", "zsh", "fish"] {
        let o = crit(&["completions", shell]);
        assert!(o.status.success(), "{shell}: {}", String::from_utf8_lossy(&o.stderr));
        let script = String::from_utf8(o.stdout).unwrap();
        for (sub, flags) in &all {
            assert!(script.contains(sub.as_str()), "{shell} completion lacks `{sub}`");
            for f in flags {
                // fish writes `-l files-root`, the others `--files-root`.
                let bare = f.trim_start_matches('-');
                assert!(
                    script.contains(f.as_str()) || script.contains(&format!("-l {bare}")),
                    "{shell}: no {f} of {sub}"
                );
            }
        }
        // The script parses in its shell, where that shell is here.
        let tmp = TempDir::new("completion");
        let file = tmp.path().join("crit.sh");
        std::fs::write(&file, &script).unwrap();
        match Command::new(shell).arg("-n").arg(&file).output() {
            Ok(o) => assert!(o.status.success(), "{shell} -n: {}", String::from_utf8_lossy(&o.stderr)),
            Err(_) => eprintln!("SKIP: no {shell} here to parse its completion script"),
        }
    }
}

#[test]
fn man_page_has_every_command_flag_and_example() {
    let o = crit(&["man"]);
    assert!(o.status.success());
    let man = String::from_utf8(o.stdout).unwrap();
    assert!(man.starts_with(".ie") || man.starts_with(".TH"), "not roff: {}", &man[..man.len().min(80)]);
    let all = commands_and_flags();
    for (sub, flags) in &all {
        let head = format!(".SH \"CRIT {}\"", sub.to_uppercase());
        let at = man.find(&head).unwrap_or_else(|| panic!("no section for {sub}"));
        // Up to the next subcommand's heading (each has its own SYNOPSIS,
        // DESCRIPTION and OPTIONS headings).
        let end = man[at + 1..].find("\n.SH \"CRIT ").map(|i| at + 1 + i).unwrap_or(man.len());
        let section = &man[at..end];
        for f in flags {
            assert!(section.contains(&f.replace('-', "\\-")), "man: no {f} under {sub}");
        }
        assert!(
            section.contains(".SS EXAMPLES\n.nf\n") && section.contains(&format!("crit {sub}")),
            "man: no examples for {sub}"
        );
    }
    // groff reads it without a warning, where groff is here.
    let mut child = match Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(_) => return eprintln!("SKIP: no groff here to check the man page"),
    };
    use std::io::Write;
    child.stdin.take().unwrap().write_all(man.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success() && o.stderr.is_empty(), "groff: {}", String::from_utf8_lossy(&o.stderr));
}
