//! The `basalt` binary.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    basalt::cli::run(basalt::cli::Cli::parse())
}
