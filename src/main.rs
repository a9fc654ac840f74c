//! `mdfuse`: dispatch to one subcommand module per verb (see `mdfuse::cli`).

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use mdfuse::cli;

/// Linux md software RAID in userspace.
#[derive(Parser, Debug)]
#[command(name = "mdfuse", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Examine(cli::examine::ExamineArgs),
}

fn main() -> ExitCode {
    env_logger::init();
    let matches = Cli::command().get_matches();
    let parsed = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match parsed.command {
        Command::Examine(args) => cli::examine::run(args),
    }
}
