//! `nambari-admin --help`.

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = nambari_admin::Cli::parse();
    match nambari_admin::run(cli).await {
        Ok(out) => println!("{out}"),
        Err(e) => {
            eprintln!("nambari-admin: {e}");
            std::process::exit(1);
        }
    }
}
