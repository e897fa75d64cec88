//! The `tidemark` binary; everything it does lives in the library (`tidemark_cli::command`).

/// mimalloc: fewer cycles per allocation than glibc's malloc on the request path, and less
/// fragmentation under the store's many short-lived buffers. Built without transparent huge
/// pages (`no_thp`): they cost 57 MiB of RSS at 10M items (15 %) for 2–6 % of GetItem
/// (docs/benchmarks.md, "Scale, history and change feeds").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tidemark_cli::command::main_entry()
}
