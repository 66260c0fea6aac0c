//! The `mdelab` binary: parse the command line, set up logging, run, map the result to an
//! exit code (0 = every outcome as expected, 1 = some were not, 2 = error).

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match mdelab::cli::parse() {
        Ok(cli) => cli,
        Err(err) => {
            let Some(hint) = mdelab::cli::parse_hint(&err) else {
                err.exit()
            };
            let _ = err.print();
            eprintln!("{hint}");
            return ExitCode::from(2);
        }
    };
    mdelab::cli::init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: failed to start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(mdelab::cli::run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
