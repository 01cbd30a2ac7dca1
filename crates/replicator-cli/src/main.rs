//! `replicator`: see the crate documentation for the commands.

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut stdout = std::io::stdout();
    let code = replicator_cli::run(args, None, &mut stdout).await;
    std::process::exit(code);
}
