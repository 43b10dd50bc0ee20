//! The `wsauth` command-line tool: see `wsauth --help`.

fn main() {
    std::process::exit(wsauth_smol::cli::main());
}
