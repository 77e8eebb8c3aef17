//! How `harden predict` writes its answers: one per input, as JSON lines, CSV or TSV.
//!
//! Each answer has the input's position (`input`, from 0, in the order read), the label name,
//! the class index and the probability of each class. CSV and TSV have a header line
//! (`input,label,class,p_<class name>...`) and quote fields as the `csv` crate does.

use std::io::Write;

use anyhow::Result;
use harden_train::predict::Prediction;
use serde::Serialize;

/// The answer format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated, with a header line.
    Csv,
    /// Tab-separated, with a header line.
    Tsv,
}

/// One answer as the JSON object of `jsonl` (with `input`) and of `--serve-stdin` (without);
/// probabilities are written as the shortest decimals that read back as the same `f32`.
#[derive(Debug, Serialize)]
pub struct Answer<'a> {
    /// The input's position, from 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<usize>,
    /// The class name.
    pub label: String,
    /// The class index.
    pub class: usize,
    /// The probability of each class.
    pub probabilities: &'a [f32],
}

impl<'a> Answer<'a> {
    /// The answer `p` of a model of `classes`.
    pub fn of(p: &'a Prediction, classes: &[String], input: Option<usize>) -> Self {
        Self {
            input,
            label: label(p, classes),
            class: p.class,
            probabilities: &p.probabilities,
        }
    }
}

/// The class name of `p`, or its index when the classes have no name for it.
fn label(p: &Prediction, classes: &[String]) -> String {
    classes
        .get(p.class)
        .cloned()
        .unwrap_or_else(|| p.class.to_string())
}

/// Writes answers in one [`Format`], numbering inputs as they come.
pub struct Writer<W: Write> {
    classes: Vec<String>,
    out: Option<csv::Writer<W>>,
    plain: Option<W>,
    next: usize,
}

impl<W: Write> Writer<W> {
    /// A writer of `format` to `out` for a model of `classes`; CSV and TSV write their header.
    ///
    /// # Errors
    ///
    /// The I/O error of writing the header.
    pub fn new(format: Format, classes: Vec<String>, out: W) -> Result<Self> {
        let mut writer = Self {
            classes,
            out: None,
            plain: None,
            next: 0,
        };
        match format {
            Format::Jsonl => writer.plain = Some(out),
            Format::Csv | Format::Tsv => {
                let mut w = csv::WriterBuilder::new()
                    .delimiter(if format == Format::Csv { b',' } else { b'\t' })
                    .from_writer(out);
                let mut header = vec!["input".to_string(), "label".into(), "class".into()];
                header.extend(writer.classes.iter().map(|c| format!("p_{c}")));
                w.write_record(&header)?;
                writer.out = Some(w);
            }
        }
        Ok(writer)
    }

    /// Writes the answers of the next inputs.
    ///
    /// # Errors
    ///
    /// The I/O error of writing.
    pub fn write(&mut self, answers: &[Prediction]) -> Result<()> {
        for p in answers {
            let input = self.next;
            self.next += 1;
            if let Some(out) = &mut self.plain {
                serde_json::to_writer(&mut *out, &Answer::of(p, &self.classes, Some(input)))?;
                writeln!(out)?;
            } else if let Some(w) = &mut self.out {
                let mut record = vec![
                    input.to_string(),
                    label(p, &self.classes),
                    p.class.to_string(),
                ];
                record.extend(p.probabilities.iter().map(f32::to_string));
                w.write_record(&record)?;
            }
        }
        Ok(())
    }

    /// Flushes what was written and returns the underlying writer.
    ///
    /// # Errors
    ///
    /// The I/O error of flushing.
    pub fn finish(self) -> Result<W> {
        match (self.plain, self.out) {
            (Some(mut out), _) => {
                out.flush()?;
                Ok(out)
            }
            (None, Some(w)) => Ok(w.into_inner().map_err(|e| e.into_error())?),
            (None, None) => unreachable!("one of the writers is set"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answers() -> Vec<Prediction> {
        vec![
            Prediction {
                class: 1,
                probabilities: vec![0.25, 0.75],
            },
            Prediction {
                class: 0,
                probabilities: vec![0.5, 0.5],
            },
        ]
    }

    fn written(format: Format, classes: &[&str]) -> String {
        let classes = classes.iter().map(|s| s.to_string()).collect();
        let mut w = Writer::new(format, classes, Vec::new()).unwrap();
        w.write(&answers()[..1]).unwrap();
        w.write(&answers()[1..]).unwrap();
        String::from_utf8(w.finish().unwrap()).unwrap()
    }

    #[test]
    fn each_format_numbers_inputs_and_names_labels() {
        let jsonl = written(Format::Jsonl, &["neg", "pos"]);
        let lines: Vec<serde_json::Value> = jsonl
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["input"], 0);
        assert_eq!(lines[0]["label"], "pos");
        assert_eq!(lines[1]["input"], 1);
        assert_eq!(lines[1]["class"], 0);
        assert_eq!(lines[0]["probabilities"], json!([0.25, 0.75]));
        assert_eq!(
            written(Format::Csv, &["neg, really", "pos"]),
            "input,label,class,\"p_neg, really\",p_pos\n0,pos,1,0.25,0.75\n1,\"neg, really\",0,0.5,0.5\n"
        );
        assert_eq!(
            written(Format::Tsv, &["neg", "pos"]),
            "input\tlabel\tclass\tp_neg\tp_pos\n0\tpos\t1\t0.25\t0.75\n1\tneg\t0\t0.5\t0.5\n"
        );
    }
}
