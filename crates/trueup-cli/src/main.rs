//! The `trueup` binary. Everything happens in the library: see `trueup_cli::run`.

fn main() -> std::process::ExitCode {
    trueup_cli::main()
}
