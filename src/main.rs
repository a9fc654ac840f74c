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

// Parsed once per run; boxing the larger arguments would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    Assemble(cli::assemble::AssembleArgs),
    Build(cli::build::BuildArgs),
    Create(cli::create::CreateArgs),
    Detail(cli::detail::DetailArgs),
    Examine(cli::examine::ExamineArgs),
    Explain(cli::explain::ExplainArgs),
    Grow(cli::manage::GrowArgs),
    Manage(cli::manage::ManageArgs),
    Monitor(cli::monitor::MonitorArgs),
    Mount(cli::mount::MountArgs),
    Status(cli::status::StatusArgs),
    Stop(cli::manage::StopArgs),
    Watch(cli::status::WatchArgs),
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let parsed = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // The daemon's kernel-style messages go to stderr at info; the other
    // commands print their own text and log only warnings.
    let default_level = if matches!(parsed.command, Command::Mount(_)) {
        "info"
    } else {
        "warn"
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .init();
    let sub = matches
        .subcommand()
        .map(|(_, m)| m)
        .expect("clap requires a subcommand");
    match parsed.command {
        Command::Assemble(args) => cli::assemble::run(args),
        Command::Build(args) => cli::build::run(args, sub),
        Command::Create(args) => cli::create::run(args, sub),
        Command::Detail(args) => cli::detail::run(args),
        Command::Examine(args) => cli::examine::run(args),
        Command::Explain(args) => cli::explain::run(args),
        Command::Grow(args) => cli::manage::run_grow(args),
        Command::Manage(args) => cli::manage::run(args),
        Command::Monitor(args) => cli::monitor::run(args),
        Command::Mount(args) => cli::mount::run(args),
        Command::Status(args) => cli::status::run_status(args),
        Command::Stop(args) => cli::manage::run_stop(args),
        Command::Watch(args) => cli::status::run_watch(args),
    }
}
