//! The `mcpgate` binary.

fn main() -> std::process::ExitCode {
    mcpgate_server::cli::main()
}
