//! The `photonqa` binary; everything lives in the library (see `photonqa::cli`).

fn main() -> std::process::ExitCode {
    photonqa::cli::main()
}
