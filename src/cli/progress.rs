//! Progress bars on a terminal, silence elsewhere.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kdsled::index::BuildProgress;

/// A build's progress as an indicatif bar on stderr, hidden when stderr is not a terminal.
pub struct BarProgress {
    bar: ProgressBar,
}

impl BarProgress {
    /// A new bar.
    pub fn new() -> Self {
        let bar = ProgressBar::new_spinner();
        if !std::io::stderr().is_terminal() || crate::cli::quiet() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        BarProgress { bar }
    }
}

impl BuildProgress for BarProgress {
    fn phase(&self, name: &str, total: Option<u64>) {
        self.bar.reset();
        match total {
            Some(n) => {
                self.bar.set_length(n);
                self.bar.set_style(
                    ProgressStyle::with_template(
                        "{msg:>9} [{bar:40}] {human_pos}/{human_len} ({per_sec}, {eta})",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
            }
            None => {
                self.bar.set_style(
                    ProgressStyle::with_template("{msg:>9} {spinner} {human_pos} ({per_sec})")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
            }
        }
        self.bar.set_message(name.to_string());
    }

    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
