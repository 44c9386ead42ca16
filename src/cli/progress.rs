//! Progress bars on a terminal, silence elsewhere.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use kdsled::index::Progress;

/// Whole steps per second: indicatif's own `{per_sec}` prints four decimals.
fn rate(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(
        w,
        "{}/s",
        indicatif::HumanCount(state.per_sec().round() as u64)
    );
}

/// A bar for `total` steps. `wide_bar` takes what the line leaves, so the line never wraps
/// however narrow the terminal.
pub fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg} [{wide_bar}] {human_pos}/{human_len} {rate} {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("rate", rate)
        .progress_chars("=> ")
}

/// A spinner for work of unknown length; `counting` once it has counted steps.
fn spinner_style(counting: bool) -> ProgressStyle {
    let template = if counting {
        "{msg} {spinner} {human_pos} {rate} {elapsed}"
    } else {
        "{msg} {spinner} {elapsed}"
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .with_key("rate", rate)
}

/// A bar drawn on stderr, or hidden when stderr is not a terminal or under `--quiet`.
pub fn new_bar(total: Option<u64>) -> ProgressBar {
    let bar = match total {
        Some(n) => ProgressBar::new(n).with_style(bar_style()),
        None => ProgressBar::new_spinner().with_style(spinner_style(false)),
    };
    if !std::io::stderr().is_terminal() || crate::cli::quiet() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

/// A long operation's phases as one indicatif bar on stderr (see [`new_bar`]).
pub struct BarProgress {
    bar: ProgressBar,
    /// The current phase has no length and has counted steps: its spinner shows the count.
    counting: AtomicBool,
}

impl BarProgress {
    /// A new bar.
    pub fn new() -> Self {
        BarProgress {
            bar: new_bar(None),
            counting: AtomicBool::new(false),
        }
    }
}

impl Progress for BarProgress {
    fn phase(&self, name: &str, total: Option<u64>) {
        self.bar.reset();
        match total {
            Some(n) => {
                self.bar.set_length(n);
                self.bar.set_style(bar_style());
            }
            None => {
                self.bar.unset_length();
                self.bar.set_style(spinner_style(false));
            }
        }
        self.counting.store(false, Ordering::Relaxed);
        self.bar.set_message(name.to_string());
    }

    fn advance(&self, n: u64) {
        if self.bar.length().is_none() && !self.counting.swap(true, Ordering::Relaxed) {
            self.bar.set_style(spinner_style(true));
        }
        self.bar.inc(n);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A command that fails part-way must not leave a half-drawn bar above its error.
impl Drop for BarProgress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
