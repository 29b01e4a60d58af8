use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    identity_cli::run(identity_cli::Cli::parse()).await
}
