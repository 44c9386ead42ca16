//! The `kdsled` command.

mod cli;

// glibc's malloc showed up as the largest single cost when serving small answers; mimalloc's
// thread-local free lists cut it to a fraction.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
