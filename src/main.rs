//! The `atlasfs` binary: command-line parsing and process concerns (daemonizing, signals,
//! logging, the allocator). All product logic lives in the library; errors become messages here.

mod cli;
mod recycling_allocator;

#[global_allocator]
pub(crate) static ALLOCATOR: recycling_allocator::RecyclingAllocator =
    recycling_allocator::RecyclingAllocator::new();

fn main() -> std::process::ExitCode {
    cli::run()
}
