//! The report as JSON: the model exactly, for programs (data is not escaped: the encoder
//! writes every character exactly).

use std::io::{self, Write};

use super::Report;

pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()
}
