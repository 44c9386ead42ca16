//! The `kdsled` command.

mod cli;

// glibc's malloc showed up as the largest single cost when serving small answers; mimalloc's
// thread-local free lists cut it to a fraction (asked as `kdsled::Allocator` explains).
#[global_allocator]
static GLOBAL: kdsled::Allocator = kdsled::Allocator;

fn main() -> std::process::ExitCode {
    cli::main()
}
