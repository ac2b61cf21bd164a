//! Every command in README.md and docs/*.md runs as written, from the documents' own text.
//!
//! Commands live in ```` ```console ```` blocks, in the shape `trycmd` reads: `$ ` starts a
//! command (a trailing `\` continues it), a trailing ` &` runs it in the background until
//! the block ends, and the lines after a command are output it must print, in order, each
//! matched whole (indentation aside), where `[..]` stands for any text within a line and `...` for lines left
//! out. Every command must exit 0. A block tagged ```` ```console px4 ```` needs real PX4
//! SITL from `../shared/px4-sitl/`. A block of `sh`, `bash` or `shell` is refused: a
//! command shown must be a command run.
//!
//! Each document's blocks run in order in one bash session per block, in a scratch
//! directory of its own (files made by one block are there for the next) that sees the
//! repository's `missions/`, `sim/` and `web/` and, one level up, `shared/`. `gridpatrol` and
//! `gridpatrol-sim` are this build's binaries; `cargo run --release -- ARGS` is
//! `gridpatrol ARGS`, and `cargo test --workspace` is this test itself, so it is not run.
//! The documents use fixed ports (14550, 14540, 8080) as a user would. The simulator's
//! blocks run in a network namespace of their own where the machine allows one (util-linux
//! `unshare`, iproute2 `ip`), so real PX4's blocks run beside them; elsewhere, and for a
//! block that needs the package registry (`npm`), one at a time.
//!
//! Each `--help` of the binary carries examples; every example must be one of the commands
//! run here, so it runs in the same test.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The documents share fixed ports, so no two blocks on the machine's network run at once.
static PORTS: Mutex<()> = Mutex::new(());

/// Where a block's sockets live.
#[derive(Clone, Copy)]
enum Net {
    /// The machine's network: the block holds `PORTS` while it runs.
    Shared,
    /// A network namespace of the block's own, made by `unshare` with these flags.
    Own(&'static [&'static str]),
}

/// A network namespace for a block, if this machine lets us make one: as root a plain
/// `unshare --net`, otherwise in a user namespace where we are root.
fn own_network() -> Net {
    const WAYS: [&[&str]; 2] = [&["--net"], &["--net", "--map-root-user"]];
    WAYS.into_iter()
        .find(|flags| {
            Command::new("unshare")
                .args(*flags)
                .args(["ip", "link", "set", "lo", "up"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map_or(Net::Shared, Net::Own)
}

/// The longest a block may take, as a guard against a command that never ends (s).
const BLOCK_LIMIT: Duration = Duration::from_secs(900);

#[derive(Debug, Clone)]
struct Step {
    cmd: String,
    background: bool,
    expect: Vec<String>,
    line: usize,
}

#[derive(Debug, Clone)]
struct Block {
    file: String,
    line: usize,
    px4: bool,
    steps: Vec<Step>,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md, then docs/*.md by name.
fn documents() -> Vec<(String, String)> {
    let mut names = vec!["README.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    names.extend(docs);
    names
        .into_iter()
        .map(|n| {
            let text = std::fs::read_to_string(repo().join(&n)).expect("read document");
            (n, text)
        })
        .collect()
}

/// The console blocks of one document. Panics, naming the line, on a shell block.
fn blocks(file: &str, text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, l)) = lines.next() {
        let Some(info) = l.trim_start().strip_prefix("```") else {
            continue;
        };
        let info: Vec<&str> = info.split_whitespace().collect();
        let fence_indent = l.len() - l.trim_start().len();
        let mut body = Vec::new();
        for (j, l) in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                break;
            }
            body.push((j + 1, l.get(fence_indent..).unwrap_or(l.trim_start())));
        }
        match info.first().copied() {
            Some("console") => {}
            Some("sh" | "bash" | "shell" | "zsh") => panic!(
                "{file}:{}: a ```{} block: show commands in ```console blocks, which this test runs",
                i + 1,
                info[0]
            ),
            _ => continue,
        }
        let mut steps: Vec<Step> = Vec::new();
        let mut cont: Option<Step> = None;
        for (n, l) in body {
            if let Some(mut s) = cont.take() {
                s.cmd.push(' ');
                s.cmd.push_str(l.trim());
                finish(&mut s, &mut cont, &mut steps);
                continue;
            }
            if let Some(c) = l.strip_prefix("$ ") {
                let mut s = Step {
                    cmd: c.trim().to_string(),
                    background: false,
                    expect: Vec::new(),
                    line: n,
                };
                finish(&mut s, &mut cont, &mut steps);
            } else if let Some(s) = steps.last_mut() {
                if !l.trim().is_empty() {
                    s.expect.push(l.trim_end().to_string());
                }
            } else if !l.trim().is_empty() {
                panic!("{file}:{n}: output before any `$ ` command");
            }
        }
        assert!(cont.is_none(), "{file}: a block ends inside a `\\` line");
        out.push(Block {
            file: file.to_string(),
            line: i + 1,
            px4: info.contains(&"px4"),
            steps,
        });
    }
    out
}

/// Ends a command line: continued when it ends in `\`, else a step (background when it
/// ends in ` &`).
fn finish(s: &mut Step, cont: &mut Option<Step>, steps: &mut Vec<Step>) {
    if let Some(c) = s.cmd.strip_suffix('\\') {
        s.cmd = c.trim_end().to_string();
        *cont = Some(s.clone());
        return;
    }
    if let Some(c) = s.cmd.strip_suffix(" &") {
        s.cmd = c.trim_end().to_string();
        s.background = true;
    }
    steps.push(s.clone());
}

/// One line of expected output against one of actual output: whole, `[..]` any text.
fn line_matches(pattern: &str, actual: &str) -> bool {
    let parts: Vec<&str> = pattern.split("[..]").collect();
    let (first, rest) = (parts[0], &parts[1..]);
    let Some(mut tail) = actual.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return tail.is_empty();
    };
    for p in middle {
        match tail.find(p) {
            Some(k) => tail = &tail[k + p.len()..],
            None => return false,
        }
    }
    tail.ends_with(last)
}

/// The expected lines, in order, among the actual ones; the first one missing otherwise.
fn output_matches<'a>(expect: &'a [String], actual: &str) -> Result<(), &'a str> {
    // Indentation is not compared: a document's lines may sit at the margin.
    let mut lines = actual.lines().map(str::trim);
    for e in expect.iter().filter(|e| e.trim() != "...") {
        if !lines.any(|a| line_matches(e.trim(), a)) {
            return Err(e);
        }
    }
    Ok(())
}

/// A scratch directory laid out as a user's clone: `work/` (the current directory) sees the
/// repository's `missions/`, `sim/` and `web/`, and `shared/` sits beside it.
fn scratch() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().expect("tempdir");
    let work = root.path().join("work");
    std::fs::create_dir(&work).expect("work dir");
    for d in ["missions", "sim", "web"] {
        std::os::unix::fs::symlink(repo().join(d), work.join(d)).expect("symlink");
    }
    let shared = repo().join("../shared");
    if shared.exists() {
        std::os::unix::fs::symlink(shared, root.path().join("shared")).expect("symlink");
    }
    (root, work)
}

/// A directory holding `gridpatrol` and `gridpatrol-sim` of this build (the latter built
/// when a plain `cargo test --test readme` did not build it).
fn bin_dir() -> PathBuf {
    let gp = PathBuf::from(env!("CARGO_BIN_EXE_gridpatrol"));
    let dir = gp.parent().expect("bin dir").to_path_buf();
    if !dir.join("gridpatrol-sim").exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "-p", "gridpatrol-sim", "--bin", "gridpatrol-sim"])
            .current_dir(repo())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "could not build gridpatrol-sim");
    }
    dir
}

/// Runs one block in `work` with bash, each command's output and exit code to files; for
/// each step, its output and exit code (None: it never ended).
fn run_block(block: &Block, work: &Path, bins: &Path, net: Net) -> Vec<(String, Option<i32>)> {
    let out = tempfile::tempdir().expect("tempdir");
    let mut script = String::new();
    if let Net::Own(_) = net {
        // A new namespace's loopback starts down.
        script.push_str("ip link set lo up || exit 97\n");
    }
    script.push_str(
        "set -u\n\
         export RUST_BACKTRACE=0\n\
         cargo() {\n\
           case \"$*\" in\n\
             'run --release -- '*) shift 3; gridpatrol \"$@\" ;;\n\
             'test --workspace') echo 'cargo test --workspace: the command running this test' ;;\n\
             *) echo \"the README test runs no cargo $*\" >&2; return 97 ;;\n\
           esac\n\
         }\n",
    );
    for (i, s) in block.steps.iter().enumerate() {
        let o = out.path().join(format!("{i}.out"));
        let rc = out.path().join(format!("{i}.rc"));
        if s.background {
            script.push_str(&format!(
                "{} > '{}' 2>&1 < /dev/null &\necho 0 > '{}'\n",
                s.cmd,
                o.display(),
                rc.display()
            ));
        } else {
            script.push_str(&format!(
                "{{ {}\n}} > '{}' 2>&1 < /dev/null\necho $? > '{}'\n",
                s.cmd,
                o.display(),
                rc.display()
            ));
        }
    }
    let path = format!(
        "{}:{}",
        bins.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = {
        use std::os::unix::process::CommandExt;
        let mut bash = match net {
            Net::Shared => Command::new("bash"),
            Net::Own(flags) => {
                let mut c = Command::new("unshare");
                c.args(flags).arg("bash");
                c
            }
        };
        bash.arg("-c")
            .arg(&script)
            .current_dir(work)
            .env("PATH", path)
            .stdin(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .expect("bash")
    };
    let pgid = child.id() as i32;
    let until = Instant::now() + BLOCK_LIMIT;
    while Instant::now() < until {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The block's background commands (and a command past the limit) end with it.
    // SAFETY: signalling our own child's process group.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    let _ = child.wait();
    (0..block.steps.len())
        .map(|i| {
            let text =
                std::fs::read_to_string(out.path().join(format!("{i}.out"))).unwrap_or_default();
            let rc = std::fs::read_to_string(out.path().join(format!("{i}.rc")))
                .ok()
                .and_then(|s| s.trim().parse().ok());
            (text, rc)
        })
        .collect()
}

/// Runs `block` and says, for the first step that failed, what went wrong.
fn check_block(block: &Block, work: &Path, bins: &Path, net: Net) -> Result<Vec<String>, String> {
    let t = Instant::now();
    let ran = run_block(block, work, bins, net);
    let mut done = Vec::new();
    for (s, (text, rc)) in block.steps.iter().zip(&ran) {
        let at = format!("{}:{}: $ {}", block.file, s.line, s.cmd);
        let tail: String = {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        match rc {
            None => {
                return Err(format!(
                    "{at}\nnever ended (block limit {BLOCK_LIMIT:?})\n{tail}"
                ))
            }
            Some(0) => {}
            Some(c) => return Err(format!("{at}\nexit code {c}\n{tail}")),
        }
        if !s.background {
            if let Err(missing) = output_matches(&s.expect, text) {
                return Err(format!(
                    "{at}\nmissing output line: {missing}\n--- got:\n{tail}"
                ));
            }
        }
        done.push(s.cmd.clone());
    }
    eprintln!(
        "{}:{}: {} commands ran as written in {:.0?}",
        block.file,
        block.line,
        block.steps.len(),
        t.elapsed()
    );
    Ok(done)
}

/// Whitespace collapsed, so a command split over lines compares with one on one line.
fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The binary and every subcommand of it, as paths (`[]`, `["events"]`, `["events",
/// "sign"]`), from its help.
fn subcommands(bin: &Path, path: Vec<String>) -> Vec<Vec<String>> {
    let out = Command::new(bin)
        .args(&path)
        .arg("--help")
        .output()
        .expect("help");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let subs: Vec<String> = text
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|n| n != "help")
        .collect();
    let mut all = vec![path.clone()];
    for s in subs {
        let mut p = path.clone();
        p.push(s);
        all.extend(subcommands(bin, p));
    }
    all
}

/// The examples in `gridpatrol PATH --help`: the `  gridpatrol …` lines under `Examples:`.
fn help_examples(bin: &Path, path: &[String]) -> Vec<String> {
    let out = Command::new(bin)
        .args(path)
        .arg("--help")
        .output()
        .expect("help");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip_while(|l| !l.starts_with("Examples:"))
        .skip(1)
        .map(str::trim)
        .filter(|l| l.starts_with("gridpatrol "))
        .map(normalise)
        .collect()
}

/// Every command's help has an example, and each example is a command one of the
/// documents' blocks runs (in `blocks`): the examples cannot drift from what is run.
fn examples_are_run(blocks: &[Block]) -> Result<usize, String> {
    let bin = Path::new(env!("CARGO_BIN_EXE_gridpatrol"));
    let commands: Vec<String> = blocks
        .iter()
        .flat_map(|b| &b.steps)
        .map(|s| normalise(&s.cmd).replace("cargo run --release -- ", "gridpatrol "))
        .collect();
    let mut problems = Vec::new();
    let mut n = 0;
    for path in subcommands(bin, Vec::new()) {
        let examples = help_examples(bin, &path);
        if examples.is_empty() {
            let name = ["gridpatrol"]
                .into_iter()
                .chain(path.iter().map(String::as_str));
            problems.push(format!(
                "`{} --help` has no example",
                name.collect::<Vec<_>>().join(" ")
            ));
        }
        for e in examples {
            n += 1;
            if !commands.iter().any(|c| c.contains(&e)) {
                problems.push(format!(
                    "`gridpatrol {} --help` shows `{e}`, which no ```console block of README.md or docs/ runs",
                    path.join(" ")
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(n)
    } else {
        Err(problems.join("\n"))
    }
}

fn all_blocks() -> Vec<Block> {
    documents()
        .iter()
        .flat_map(|(name, text)| blocks(name, text))
        .collect()
}

/// Runs the blocks of each document that `want` picks, one document's in one directory,
/// in a namespace of their own where `net` is one. A block that runs `npm` reaches the
/// registry, so it stays on the machine's network.
fn run_documents(want: impl Fn(&Block) -> bool, net: Net) -> usize {
    let bins = bin_dir();
    let mut ran = 0;
    for (name, text) in documents() {
        let chosen: Vec<Block> = blocks(&name, &text).into_iter().filter(&want).collect();
        if chosen.is_empty() {
            continue;
        }
        let (_root, work) = scratch();
        for b in &chosen {
            let net = match net {
                _ if b.steps.iter().any(|s| s.cmd.starts_with("npm ")) => Net::Shared,
                n => n,
            };
            let _ports = match net {
                Net::Shared => Some(PORTS.lock().unwrap_or_else(|e| e.into_inner())),
                Net::Own(_) => None,
            };
            match check_block(b, &work, &bins, net) {
                Ok(done) => ran += done.len(),
                Err(e) => panic!("{e}"),
            }
        }
    }
    ran
}

#[test]
fn every_command_in_the_documents_runs_on_the_simulator() {
    let all = all_blocks();
    assert!(
        all.iter().any(|b| !b.px4),
        "README.md and docs/ have no ```console block"
    );
    let examples = examples_are_run(&all).unwrap_or_else(|e| panic!("{e}"));
    let net = own_network();
    if let Net::Shared = net {
        eprintln!("no network namespace here (unshare, ip): the simulator's blocks wait for real PX4's ports");
    }
    let ran = run_documents(|b| !b.px4, net);
    eprintln!("{ran} commands ran as written, {examples} help examples among them");
}

#[test]
fn the_link_commands_in_the_documents_run_on_real_px4() {
    let Some(launcher) = common::px4::launcher() else {
        return;
    };
    // A block that fails before its own `px4-sitl stop` leaves no PX4 behind.
    struct StopAll(PathBuf);
    impl Drop for StopAll {
        fn drop(&mut self) {
            for i in 0..2 {
                let _ = Command::new(&self.0)
                    .args(["stop", "-i", &i.to_string()])
                    .output();
            }
        }
    }
    let _stop = StopAll(launcher);
    // PX4 sends to the machine's 14550 and 14540, so its blocks stay on its network.
    let ran = run_documents(|b| b.px4, Net::Shared);
    assert!(ran > 0, "no ```console px4 block in README.md or docs/");
    eprintln!("{ran} commands ran as written against real PX4 SITL");
}

/// The test's own teeth: a flag renamed in a document (or in the binary) fails its step.
#[test]
fn a_flag_the_binary_does_not_know_fails_the_step() {
    let _ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let doc = "```console\n$ gridpatrol grids check missions/wenqu.geojson --datum wgs84\n[..]cells[..]\n```\n";
    let good = blocks("t.md", doc);
    let (_root, work) = scratch();
    let bins = bin_dir();
    check_block(&good[0], &work, &bins, Net::Shared).unwrap_or_else(|e| panic!("{e}"));
    let renamed = doc.replace("--datum", "--coordinate-system");
    let bad = blocks("t.md", &renamed);
    let err =
        check_block(&bad[0], &work, &bins, Net::Shared).expect_err("an unknown flag must fail");
    assert!(err.contains("exit code 2"), "{err}");
    let wrong_output = doc.replace("[..]cells[..]", "no such line");
    let bad = blocks("t.md", &wrong_output);
    let err =
        check_block(&bad[0], &work, &bins, Net::Shared).expect_err("a missing line must fail");
    assert!(err.contains("missing output line: no such line"), "{err}");
}

#[test]
fn output_patterns_match_whole_lines() {
    assert!(line_matches(
        "vehicle [..] disarmed [..]",
        "vehicle 1 disarmed at 3"
    ));
    assert!(!line_matches("vehicle [..] armed", "vehicle 1 disarmed x"));
    assert!(line_matches("exact", "exact"));
    assert!(!line_matches("exact", "exactly"));
    assert!(line_matches("[..]", "anything"));
    let expect = vec!["a[..]".to_string(), "...".to_string(), "c".to_string()];
    assert!(output_matches(&expect, "a1\nb\nc\n").is_ok());
    assert_eq!(output_matches(&expect, "c\na1\n"), Err("c"));
    let parsed = blocks(
        "t.md",
        "```console\n$ a \\\n    --b 1 &\n$ c\nout\n```\n```text\nnot run\n```\n",
    );
    assert_eq!(parsed.len(), 1);
    assert_eq!(parsed[0].steps[0].cmd, "a --b 1");
    assert!(parsed[0].steps[0].background);
    assert_eq!(parsed[0].steps[1].expect, vec!["out".to_string()]);
}
