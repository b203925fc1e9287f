//! `hostile-corpus DIR`: writes the hostile corpus (see
//! `fidius_tests::hostile`) into `DIR`, from the fixtures' debug builds
//! (built first when needed), and lists what it wrote.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: hostile-corpus DIR");
        return ExitCode::from(2);
    };
    let corpus = fidius_tests::hostile::generate(
        std::path::Path::new(&dir),
        &fidius_tests::hostile::Sources::fixtures(),
    );
    for case in &corpus.cases {
        println!("{}", corpus.dir.join(case).display());
    }
    eprintln!(
        "wrote {} hostile files to `{}` (trusted key: `{}`)",
        corpus.cases.len(),
        corpus.dir.display(),
        corpus.public_key.display()
    );
    ExitCode::SUCCESS
}
