//! Progress of the longer commands (`certify`, `scenario run`, `analyze`, `demo`), always on
//! stderr: stdout carries the report, which may be JSON or XML.
//!
//! On a terminal a spinner line (indicatif) shows the current step and its elapsed time; when
//! stderr is not a terminal (CI logs, pipes) each step is one plain line,
//! `certify: [7/8] CnC long poll: waiting for the end of its 30 s hold`. `mdelab --quiet`
//! silences both (errors still print).

use std::fmt::Display;
use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Set by `mdelab --quiet`: no progress and no announcements on stderr.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Silences (or restores) progress for the rest of the process.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether progress is silenced.
pub fn is_quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// The progress of one command's run: numbered steps out of a known total.
pub struct Progress {
    /// The command, prefixed to every plain line.
    command: &'static str,
    /// Steps in all.
    total: u64,
    /// Steps started so far.
    started: AtomicU64,
    /// How it is shown.
    view: View,
}

/// How progress is shown.
enum View {
    /// Nothing (`--quiet`).
    Silent,
    /// One plain line per step (stderr is not a terminal).
    Lines,
    /// A spinner line redrawn in place (stderr is a terminal).
    Bar(ProgressBar),
}

impl Progress {
    /// Progress of `command` over `total` steps; how it shows depends on stderr and `--quiet`.
    pub fn new(command: &'static str, total: u64) -> Self {
        let view = if is_quiet() {
            View::Silent
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} {prefix}: [{pos}/{len}] {wide_msg} {elapsed:>4}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.set_prefix(command);
            bar.enable_steady_tick(Duration::from_millis(120));
            View::Bar(bar)
        } else {
            View::Lines
        };
        Self {
            command,
            total,
            started: AtomicU64::new(0),
            view,
        }
    }

    /// Starts the next step, described by `message`.
    pub fn step(&self, message: impl Display) {
        let n = (self.started.fetch_add(1, Ordering::Relaxed) + 1).min(self.total);
        match &self.view {
            View::Silent => {}
            View::Lines => eprintln!("{}: [{n}/{}] {message}", self.command, self.total),
            View::Bar(bar) => {
                bar.set_position(n);
                bar.set_message(message.to_string());
                bar.reset_elapsed();
            }
        }
    }

    /// A line of information (the lab's coordinates, a warning), printed above a spinner.
    pub fn line(&self, text: impl Display) {
        match &self.view {
            View::Silent => {}
            View::Lines => eprintln!("{text}"),
            View::Bar(bar) => bar.println(text.to_string()),
        }
    }

    /// The steps started so far.
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let View::Bar(bar) = &self.view {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_count_up_to_the_total() {
        let progress = Progress::new("test", 2);
        progress.step("one");
        progress.step("two");
        progress.step("three (beyond the total: shown as the last)");
        assert_eq!(progress.started(), 3);
    }
}
