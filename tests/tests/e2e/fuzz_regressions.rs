//! Every input that once made a fuzzing target panic (`tests/fuzz/<target>/`, saved by
//! `scripts/fuzz.sh`) runs again, and must not panic; plus a short fuzzing run of each
//! target, and a check that the harness does catch a panic.

use tidemark_tests::fuzz::{Target, caught, regressions_dir, run, run_one, subject};

#[test]
fn saved_inputs_and_a_short_run_of_every_target_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let subject = subject(dir.path());
    for target in Target::ALL {
        let saved = std::fs::read_dir(regressions_dir(target))
            .into_iter()
            .flatten()
            .map(|entry| entry.unwrap().path());
        for path in saved {
            let input = std::fs::read_to_string(&path).unwrap();
            if let Err(message) = run_one(target, &subject, &input) {
                panic!(
                    "{} panics again ({message}): {}",
                    target.name(),
                    path.display()
                );
            }
        }
        let failures = run(target, &subject, 2_000, rand::random());
        assert!(failures.is_empty(), "{}: {failures:?}", target.name());
    }
}

#[test]
fn the_harness_reports_a_panicking_input() {
    let dir = tempfile::tempdir().unwrap();
    let subject = subject(dir.path());
    // An operation target that is not one: `run_operation` answers None, no panic.
    assert!(run_one(Target::Request, &subject, "Nothing.AtAll {}").is_ok());
    // A panic is reported with its message, whether formatted or static.
    assert_eq!(caught(|| panic!("boom {}", 1)), Err("boom 1".to_string()));
    assert_eq!(caught(|| panic!("boom")), Err("boom".to_string()));
}
