//! The `tidemark` command line under another name, so this crate's tests can run a node as a
//! child process (cargo builds a package's own binaries for its tests, not other packages').

fn main() -> std::process::ExitCode {
    tidemark_cli::command::main_entry()
}
