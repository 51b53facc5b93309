//! Print the process tree of a dump, with each process's command name.
//!
//! ```sh
//! cargo run --example process_tree -- tests/fixtures/criu41-tree
//! ```
//!
//! `pstree.img` lists the processes (pid, parent, group, session,
//! threads); each task's `core-PID.img` holds its command name
//! (`tc.comm`) and state.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::process::ExitCode;

use crit::checkpoint::{Checkpoint, Task};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args, &mut io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("process_tree: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `process_tree DIR`: one line per process, children indented under
/// their parent.
pub fn run(args: &[String], out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    let [dir] = args else {
        return Err("usage: process_tree DIR".into());
    };
    let ck = Checkpoint::open(dir)?;
    let tasks = ck.tasks()?;

    // Children of each pid, in pstree.img order.
    let mut children: BTreeMap<u32, Vec<&Task>> = BTreeMap::new();
    for t in &tasks {
        children.entry(t.ppid).or_default().push(t);
    }
    // The roots: tasks whose parent is not in the dump (normally one, ppid 0).
    let roots: Vec<&Task> = tasks.iter().filter(|t| !tasks.iter().any(|p| p.pid == t.ppid)).collect();
    for root in roots {
        print_task(&ck, root, 0, &children, out)?;
    }
    Ok(())
}

fn print_task(
    ck: &Checkpoint,
    t: &Task,
    depth: usize,
    children: &BTreeMap<u32, Vec<&Task>>,
    out: &mut dyn Write,
) -> Result<(), Box<dyn std::error::Error>> {
    let core = ck.core(t.pid)?;
    let tc = core.msg("tc");
    let comm = tc.and_then(|tc| tc.str("comm")).unwrap_or_default();
    // task_state 2 is a zombie (CRIU's TASK_DEAD).
    let zombie = if tc.and_then(|tc| tc.u64("task_state")) == Some(2) { " (zombie)" } else { "" };
    let threads = if t.threads.len() > 1 { format!(", {} threads", t.threads.len()) } else { String::new() };
    writeln!(out, "{:indent$}{} {comm}{zombie}{threads}", "", t.pid, indent = 2 * depth)?;
    for c in children.get(&t.pid).map(Vec::as_slice).unwrap_or_default() {
        print_task(ck, c, depth + 1, children, out)?;
    }
    Ok(())
}
