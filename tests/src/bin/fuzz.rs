//! `fuzz [TARGET|all] [CASES] [SEED]`: runs CASES (default 1,000,000) generated inputs through
//! each target of [`tidemark_tests::fuzz`] (`request`, `expression`, `number`, `iterator`),
//! from SEED (default: random, printed). An input that panics is printed and saved under
//! `tests/fuzz/<target>/`, where the e2e test `fuzz_regressions` replays it; the run then
//! exits 1.

use tidemark_tests::fuzz::{Target, regressions_dir, run, subject};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let targets: Vec<Target> = match args.get(1).map(String::as_str) {
        None | Some("all") => Target::ALL.to_vec(),
        Some(name) => match Target::parse(name) {
            Some(target) => vec![target],
            None => {
                eprintln!("usage: fuzz [request|expression|number|iterator|all] [CASES] [SEED]");
                std::process::exit(2);
            }
        },
    };
    let cases: u64 = args
        .get(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let seed: u64 = args
        .get(3)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(rand::random);
    // Panics are caught and reported per input; the default hook would print each one. It is
    // set before the subject, whose own hook hands it the panics it does not record.
    std::panic::set_hook(Box::new(|_| {}));
    let dir = tempfile::tempdir().expect("temporary folder");
    let subject = subject(dir.path());
    let mut failed = false;
    for target in targets {
        let started = std::time::Instant::now();
        let failures = run(target, &subject, cases, seed);
        println!(
            "{}: {cases} cases from seed {seed} in {:.1} s, {} panics",
            target.name(),
            started.elapsed().as_secs_f64(),
            failures.len()
        );
        for (input, message) in failures.iter().take(20) {
            failed = true;
            println!("  panicked ({message}) on {input:?}");
            let folder = regressions_dir(target);
            let name = format!("{:016x}.txt", xxhash_rust::xxh3::xxh3_64(input.as_bytes()));
            if std::fs::create_dir_all(&folder)
                .and_then(|()| std::fs::write(folder.join(&name), input))
                .is_ok()
            {
                println!("  saved as tests/fuzz/{}/{name}", target.name());
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}
