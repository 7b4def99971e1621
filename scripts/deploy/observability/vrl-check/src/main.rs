//! `vrl-check PROGRAM.vrl < lines > events.jsonl`: compiles a VRL program
//! (failing on any compiler error, and printing warnings), then runs it on
//! each line of stdin as a Vector `file` source would hand it over, and
//! prints each resulting event as one JSON line.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::ExitCode;

use vrl::compiler::{Context, TargetValue, TimeZone, state::RuntimeState};
use vrl::diagnostic::Formatter;
use vrl::value::{Secrets, Value};

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: vrl-check PROGRAM.vrl < lines");
        return ExitCode::from(2);
    };
    let source = match std::fs::read_to_string(&path) {
        Ok(source) => source,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(2);
        }
    };
    let compiled = match vrl::compiler::compile(&source, &vrl::stdlib::all()) {
        Ok(compiled) => compiled,
        Err(diagnostics) => {
            eprintln!("{}", Formatter::new(&source, diagnostics));
            return ExitCode::FAILURE;
        }
    };
    if !compiled.warnings.is_empty() {
        eprintln!("{}", Formatter::new(&source, compiled.warnings.clone()));
    }
    let timezone = TimeZone::default();
    let mut out = std::io::stdout().lock();
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let Ok(line) = line else {
            eprintln!("line {}: not UTF-8", n + 1);
            return ExitCode::FAILURE;
        };
        // The fields Vector's `file` source sets.
        let event: BTreeMap<String, Value> = [
            ("message", Value::from(line.as_str())),
            ("timestamp", Value::from(chrono::Utc::now())),
            ("source_type", Value::from("file")),
            ("host", Value::from("node-1")),
            ("file", Value::from("/var/log/basalt/basalt.log")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut target = TargetValue {
            value: Value::Object(event.into_iter().map(|(k, v)| (k.into(), v)).collect()),
            metadata: Value::Object(BTreeMap::new()),
            secrets: Secrets::default(),
        };
        let mut state = RuntimeState::default();
        let mut ctx = Context::new(&mut target, &mut state, &timezone);
        if let Err(e) = compiled.program.resolve(&mut ctx) {
            eprintln!("line {}: runtime error: {e}", n + 1);
            return ExitCode::FAILURE;
        }
        let written = serde_json::to_string(&target.value)
            .map_err(|e| e.to_string())
            .and_then(|json| writeln!(out, "{json}").map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("line {}: {e}", n + 1);
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
