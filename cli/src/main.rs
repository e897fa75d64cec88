//! The `tidemark` binary; everything it does lives in the library (`tidemark_cli::command`).

fn main() -> std::process::ExitCode {
    tidemark_cli::command::main_entry()
}
