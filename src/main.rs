//! The `atlasfs` binary: command-line parsing and process concerns (daemonizing, signals,
//! logging). All product logic lives in the library; errors become messages here.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
