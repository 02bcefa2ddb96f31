//! The tympan room server: `cargo run --example sfu`, then open the printed URL in two
//! browser tabs. Flags, `TYMPAN_*` variables and `--config file.toml` are described in
//! `crates/sfu/README.md` (`cargo run --example sfu -- --help`).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match tympan_sfu::run_from_cli().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tympan-sfu: {e}");
            ExitCode::FAILURE
        }
    }
}
