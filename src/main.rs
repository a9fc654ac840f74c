use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "mdfuse",
    version,
    about = "Linux md software RAID in userspace"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the md tree on MOUNTPOINT.
    Mount {
        mountpoint: std::path::PathBuf,
        #[arg(short = 'f', long)]
        foreground: bool,
    },
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Mount {
            mountpoint,
            foreground,
        } => {
            let opts = mdfuse::daemon::DaemonOptions {
                mountpoint,
                foreground,
                threads: 4,
                allow_other: false,
                md: Default::default(),
            };
            if let Err(e) = mdfuse::daemon::run(opts) {
                eprintln!("mdfuse: {e}");
                std::process::exit(1);
            }
        }
    }
}
