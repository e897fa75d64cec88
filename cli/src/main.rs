//! The `tidemark` binary; everything it does lives in the library (`tidemark_cli::command`).

/// mimalloc: fewer cycles per allocation than glibc's malloc on the request path, and less
/// fragmentation under the store's many short-lived buffers.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tidemark_cli::command::main_entry()
}
