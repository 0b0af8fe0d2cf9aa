//! `cargo xtask gen [--check]`, `cargo xtask bench memory`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = xtask::repo_root();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["gen"] => match xtask::write(&root) {
            Ok(paths) => {
                for p in paths {
                    println!("wrote {}", p.strip_prefix(&root).unwrap_or(&p).display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("xtask gen: {e:#}");
                ExitCode::FAILURE
            }
        },
        ["gen", "--check"] => match xtask::check(&root) {
            Ok(stale) if stale.is_empty() => {
                println!("openapi.yaml and the generated client are up to date");
                ExitCode::SUCCESS
            }
            Ok(stale) => {
                for s in stale {
                    eprintln!("{s}\n");
                }
                eprintln!("generated files are stale: run `cargo xtask gen` and commit the result");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("xtask gen --check: {e:#}");
                ExitCode::FAILURE
            }
        },
        ["bench", "memory"] => {
            // Benchmarks need an optimized build: hand over to `cargo bench`.
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            match std::process::Command::new(cargo)
                .current_dir(&root)
                .args(["bench", "-p", "mcpgate-server", "--bench", "memory"])
                .status()
            {
                Ok(status) if status.success() => ExitCode::SUCCESS,
                Ok(_) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("xtask bench: cannot run cargo: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!("usage: cargo xtask gen [--check] | cargo xtask bench memory");
            ExitCode::from(2)
        }
    }
}
