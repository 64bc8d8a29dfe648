//! `command`: a user program as the array->bytes codec, so that neural or experimental codecs
//! plug in without recompiling photonqa.
//!
//! Per chunk, `encode` runs with `{input}` replaced by a `.npy` file holding the chunk and
//! `{output}` by the file it must write (the compressed bytes, any format); `decode` runs with
//! `{input}` replaced by those bytes and `{output}` by the `.npy` it must write, of the chunk's
//! shape and dtype. Both run through `sh -c` in photonqa's working directory (a shell, so that
//! wrappers can use pipes and redirections), with the placeholders replaced by single-quoted
//! paths (write `{input}`, not `'{input}'`). A scenario with this stage runs only with the
//! user's consent (`--allow-commands`, see `scenario::Scenario::commands`). A non-zero
//! exit, a missing or malformed output, or a run longer than `timeout` seconds (the program's
//! whole process group is then killed, see [`crate::data::shell`]) is an error of that working
//! point, with the command's last line of stderr; the sweep goes on.
//!
//! A learned codec's decoder needs more than the stream: its model, a codebook, a prior.
//! `side_files = ["model.onnx", "prior.bin"]` declares them (paths relative to the scenario
//! file, like its input; each must be a readable regular file, checked when the scenario is
//! validated) and `amortize_over = N` (default 1) how many arrays share them. `{side_files}` in
//! a command is replaced by their single-quoted paths, separated by spaces, in the order
//! declared. The rate then charges each array `side bytes / N` on top of its stream (`ratio`,
//! `bits_per_value`) and reports the stream alone as `ratio_payload` (see
//! [`crate::pipeline::side`]).

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::data::npy::write_npy;
use crate::data::shell::{self, quoted};
use crate::data::source::RawSource;
use crate::data::{DType, NdArray, VolumeSource};
use crate::pipeline::params::Default;
use crate::pipeline::side::SideFiles;
use crate::pipeline::{
    ArrayToBytes, CodecError, ParamDef, ParamKind, Stage, StageConfig, StageDef, StageInput,
    StageKind,
};

/// Registry entry.
pub static DEF: StageDef = StageDef {
    id: "command",
    aliases: &[],
    kind: StageKind::ArrayToBytes,
    summary: "a user program as codec: encode .npy -> bytes, decode bytes -> .npy (see `{input}`, `{output}`)",
    lossless: false,
    params: &[
        ParamDef {
            name: "encode",
            kind: ParamKind::Command,
            default: Default::Derived("required"),
            doc: "shell command writing {output} (bytes) from {input} (.npy of one chunk)",
        },
        ParamDef {
            name: "decode",
            kind: ParamKind::Command,
            default: Default::Derived("required"),
            doc: "shell command writing {output} (.npy, the chunk's shape and dtype) from {input} (bytes)",
        },
        ParamDef {
            name: "timeout",
            kind: ParamKind::Float {
                min: 0.001,
                max: 86_400.0,
            },
            default: Default::Float(60.0),
            doc: "seconds one call may take before it is killed",
        },
        ParamDef {
            name: "side_files",
            kind: ParamKind::Files,
            default: Default::Derived("none"),
            doc: "files the decoder needs besides the stream (model, codebook), in {side_files}; counted in the rate",
        },
        ParamDef {
            name: "amortize_over",
            kind: ParamKind::Int {
                min: 1,
                max: i64::MAX,
            },
            default: Default::Derived("1 (with side_files)"),
            doc: "how many arrays share the side files: each pays side bytes / amortize_over",
        },
    ],
    create,
};

fn create(config: &StageConfig, input: StageInput) -> Result<Stage, String> {
    let paths = config.list("side_files");
    let side = match (paths.is_empty(), config.opt_int("amortize_over")) {
        (true, Some(_)) => return Err("amortize_over needs side_files".into()),
        (true, None) => None,
        (false, n) => Some(SideFiles::open(
            paths,
            n.unwrap_or(1).max(1) as u64,
            "side_files",
        )?),
    };
    let command = |name: &str| -> Result<String, String> {
        match config.params.iter().find(|(n, _)| *n == name) {
            None => Err(format!("{name} is required")),
            Some(_) => {
                let text = config.str(name).to_string();
                for placeholder in ["{input}", "{output}"] {
                    if !text.contains(placeholder) {
                        return Err(format!("{name} must use {placeholder}"));
                    }
                }
                if side.is_none() && text.contains(SIDE_FILES) {
                    return Err(format!(
                        "{name} uses {SIDE_FILES} but side_files is not set"
                    ));
                }
                Ok(text)
            }
        }
    };
    Ok(Stage::ArrayToBytes(Box::new(External {
        encode: command("encode")?,
        decode: command("decode")?,
        timeout: Duration::from_secs_f64(config.float("timeout")),
        dtype: input.dtype,
        side_words: side.as_ref().map_or(String::new(), |side| {
            let words: Vec<String> = side.files.iter().map(|(p, _)| quoted(p)).collect();
            words.join(" ")
        }),
        side,
    })))
}

/// The placeholder of the side files' paths.
const SIDE_FILES: &str = "{side_files}";

struct External {
    encode: String,
    decode: String,
    timeout: Duration,
    dtype: DType,
    side: Option<SideFiles>,
    /// The side files' quoted paths, separated by spaces (what `{side_files}` becomes).
    side_words: String,
}

impl External {
    /// Runs `template` in a fresh temporary directory: `write` makes its input file `input`,
    /// `read` turns its output file `output` into the result.
    fn run<T>(
        &self,
        (what, template): (&str, &str),
        (input, write): (&str, impl FnOnce(&Path) -> Result<(), String>),
        (output, read): (&str, impl FnOnce(&Path) -> Result<T, String>),
    ) -> Result<T, CodecError> {
        let fail = |m: String| CodecError::new(DEF.id, format!("{what}: {m}"));
        let dir = tempfile::tempdir().map_err(|e| fail(format!("temporary directory: {e}")))?;
        let (input_path, output_path) = (dir.path().join(input), dir.path().join(output));
        write(&input_path).map_err(fail)?;
        let line = template
            .replace("{input}", &quoted(&input_path))
            .replace("{output}", &quoted(&output_path))
            .replace(SIDE_FILES, &self.side_words);
        shell::run(&line, template, self.timeout, None, dir.path()).map_err(fail)?;
        if !output_path.is_file() {
            return Err(fail(format!("`{template}` wrote no {{output}}")));
        }
        read(&output_path).map_err(fail)
    }
}

impl ArrayToBytes for External {
    fn side_files(&self) -> Option<&SideFiles> {
        self.side.as_ref()
    }

    fn encode(&self, input: &NdArray) -> Result<Vec<u8>, CodecError> {
        self.run(
            ("encode", &self.encode),
            ("chunk.npy", |path: &Path| {
                write_npy(path, input).map_err(|e| e.to_string())
            }),
            ("encoded.bin", |path: &Path| {
                fs::read(path).map_err(|e| e.to_string())
            }),
        )
    }

    fn decode(&self, bytes: &[u8], shape: &[usize]) -> Result<NdArray, CodecError> {
        let read = |path: &Path| -> Result<NdArray, String> {
            let source =
                RawSource::open_npy(path).map_err(|e| format!("not a .npy: {}", e.message))?;
            if source.shape() != shape || source.dtype() != self.dtype {
                return Err(format!(
                    "wrote {} {:?}, expected {} {shape:?}",
                    source.dtype(),
                    source.shape(),
                    self.dtype
                ));
            }
            source.read_slab(0..shape[0]).map_err(|e| e.to_string())
        };
        self.run(
            ("decode", &self.decode),
            ("encoded.bin", |path: &Path| {
                fs::write(path, bytes).map_err(|e| e.to_string())
            }),
            ("decoded.npy", read),
        )
    }
}
