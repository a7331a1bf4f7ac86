//! `completions SHELL` and `man`: generated from the clap definition, so
//! they list exactly the commands and flags the binary has.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::Error;
use crate::sink::dir::OutputError;

const BIN: &str = "insights-policy-render";

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN, &mut out);
    out
}

/// The man page (roff): the top-level page, followed by a section per
/// subcommand with its own flags.
pub fn man() -> Vec<u8> {
    render_man().expect("writing to memory does not fail")
}

fn render_man() -> std::io::Result<Vec<u8>> {
    let cmd = Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name();
        writeln!(
            out,
            ".SH \"{} {}\"",
            BIN.to_uppercase(),
            name.to_uppercase()
        )?;
        let man = clap_mangen::Man::new(sub.clone().bin_name(format!("{BIN} {name}")));
        let mut body = Vec::new();
        man.render_synopsis_section(&mut body)?;
        man.render_description_section(&mut body)?;
        man.render_options_section(&mut body)?;
        // The subcommand's sections become subsections of this one.
        let body = String::from_utf8_lossy(&body).replace(".SH ", ".SS ");
        out.extend_from_slice(body.as_bytes());
    }
    Ok(out)
}

/// Writes a man page per command into `dir` (`insights-policy-render.1`,
/// `insights-policy-render-render.1`, ...), for packagers.
pub fn man_to_dir(dir: &Path) -> Result<(), Error> {
    let to_err = |source| {
        Error::Output(OutputError {
            action: "write man pages to",
            path: dir.to_owned(),
            source,
        })
    };
    std::fs::create_dir_all(dir).map_err(to_err)?;
    clap_mangen::generate_to(Cli::command(), dir).map_err(to_err)
}

/// Writes generated text to stdout.
pub fn print(bytes: &[u8]) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|source| {
            Error::Output(OutputError {
                action: "write to",
                path: "stdout".into(),
                source,
            })
        })
}
